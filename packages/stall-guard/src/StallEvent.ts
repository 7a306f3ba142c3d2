/**
 * What stall-guard reports happened: a byte stream whose ACKs stopped
 * (`AckStalled`), a connection whose sends stopped completing
 * (`StallDetected`, then `StallCleared`), and a receiver that gave up on a
 * transfer (`TransferIdle`, `TransferAbandoned`).
 *
 * Events are facts published once per change, never per byte. Times are
 * epoch milliseconds from the Effect `Clock`; durations are milliseconds.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A byte stream's acknowledged offset did not advance for `timeoutMs`: the
 * receiver stopped consuming (or its ACKs stopped arriving) while the
 * connection may still carry heartbeats. `offset` is the last acknowledged
 * byte count, `sinceMs` how long ago it last advanced (at least `timeoutMs`,
 * at most `timeoutMs` plus one check interval). The send was interrupted.
 *
 * @since 0.1.0
 * @category events
 */
export class AckStalled extends Schema.TaggedClass<AckStalled>()("AckStalled", {
  at: Schema.Number,
  offset: Schema.Number,
  sinceMs: Schema.Number,
  timeoutMs: Schema.Number,
}) {}

/**
 * The oldest send guarded by a `StallMonitor` was at least `stallTimeout` old
 * on `checks` consecutive checks. `pending` is how many guarded sends were in
 * flight; `closed` says whether the monitor closed the connection
 * (`closeStalled: true`) or only warned.
 *
 * @since 0.1.0
 * @category events
 */
export class StallDetected extends Schema.TaggedClass<StallDetected>()("StallDetected", {
  remote: Schema.String,
  at: Schema.Number,
  oldestPendingMs: Schema.Number,
  checks: Schema.Number,
  pending: Schema.Number,
  closed: Schema.Boolean,
}) {}

/**
 * A connection reported stalled had a healthy check again (no guarded send
 * older than `stallTimeout`), `stalledForMs` after `StallDetected`. Never
 * published for a connection the monitor closed.
 *
 * @since 0.1.0
 * @category events
 */
export class StallCleared extends Schema.TaggedClass<StallCleared>()("StallCleared", {
  remote: Schema.String,
  at: Schema.Number,
  stalledForMs: Schema.Number,
}) {}

/**
 * A receiver gave up on an incoming transfer: no byte within the idle timeout
 * after `bytes` bytes (`started: true`), or no first byte at all
 * (`started: false`, FlareAgent's did-not-start). `idleMs` is the silence
 * that decided it.
 *
 * @since 0.1.0
 * @category events
 */
export class TransferIdle extends Schema.TaggedClass<TransferIdle>()("TransferIdle", {
  at: Schema.Number,
  bytes: Schema.Number,
  idleMs: Schema.Number,
  started: Schema.Boolean,
}) {}

/**
 * A receiver stopped waiting for a transfer that was still in progress
 * (its reader was interrupted, e.g. because the round ended), after `bytes`
 * bytes.
 *
 * @since 0.1.0
 * @category events
 */
export class TransferAbandoned extends Schema.TaggedClass<TransferAbandoned>()("TransferAbandoned", {
  at: Schema.Number,
  bytes: Schema.Number,
  reason: Schema.String,
}) {}

/**
 * Any stall-guard event, as a Schema (to encode events for logs or export)
 * and as a type.
 *
 * @since 0.1.0
 * @category events
 */
export const StallEvent = Schema.Union([AckStalled, StallDetected, StallCleared, TransferIdle, TransferAbandoned])

/**
 * @since 0.1.0
 * @category events
 */
export type StallEvent = typeof StallEvent.Type
