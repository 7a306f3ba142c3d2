/**
 * What a `HeartbeatSender` reports happened on the client side.
 *
 * Times are epoch milliseconds from the Effect `Clock`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A beat was handed to `send` and `send` succeeded.
 *
 * @since 0.1.0
 * @category events
 */
export class BeatSent extends Schema.TaggedClass<BeatSent>()("BeatSent", {
  seq: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * `send` failed (or did not complete within one interval) for a beat. The
 * loop goes on: the next beat is sent at the next interval.
 *
 * @since 0.1.0
 * @category events
 */
export class BeatSendFailed extends Schema.TaggedClass<BeatSendFailed>()("BeatSendFailed", {
  seq: Schema.Number,
  at: Schema.Number,
  error: Schema.String,
}) {}

/**
 * The server acknowledged beat `seq`. `roundTripMs` is set when the ack is
 * for the latest beat sent.
 *
 * @since 0.1.0
 * @category events
 */
export class AckReceived extends Schema.TaggedClass<AckReceived>()("AckReceived", {
  seq: Schema.Number,
  at: Schema.Number,
  roundTripMs: Schema.optionalKey(Schema.Number),
}) {}

/**
 * No ack arrived for `peerTimeout`: the server (or the path to it) is
 * considered lost. Emitted at most once per sender; the client should close
 * the session and reconnect with backoff. `lastAckAt` is the last ack's time,
 * or the sender's start when none arrived.
 *
 * @since 0.1.0
 * @category events
 */
export class PeerLost extends Schema.TaggedClass<PeerLost>()("PeerLost", {
  at: Schema.Number,
  lastAckAt: Schema.Number,
  lastAckSeq: Schema.optionalKey(Schema.Number),
}) {}

/**
 * Any sender event.
 *
 * @since 0.1.0
 * @category events
 */
export const SenderEvent = Schema.Union([BeatSent, BeatSendFailed, AckReceived, PeerLost])

/**
 * @since 0.1.0
 * @category events
 */
export type SenderEvent = typeof SenderEvent.Type
