/**
 * The typed failures of the `LivenessTracker`.
 *
 * All are final for the request that caused them (the same beat would fail
 * the same way); `AwaitAliveTimedOut` is the caller's deadline, not a fault.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A heartbeat claimed to come from a client other than the identity the
 * connection authenticated as. The beat is dropped and no state changes: a
 * client cannot keep another one alive.
 *
 * @since 0.1.0
 * @category errors
 */
export class ImpersonationRejected extends Schema.TaggedError<ImpersonationRejected>()("ImpersonationRejected", {
  authenticated: Schema.String,
  claimed: Schema.String,
}) {
  override get message(): string {
    return `heartbeat claims to come from ${this.claimed} but the connection is authenticated as ${this.authenticated}`
  }
}

/**
 * A beat, touch or query named a client that was never registered with the
 * tracker. Register expected clients (`register(id)`) when they join.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownClient extends Schema.TaggedError<UnknownClient>()("UnknownClient", {
  id: Schema.String,
}) {
  override get message(): string {
    return `client ${this.id} is not registered with the liveness tracker`
  }
}

/**
 * `awaitAlive(wanted, timeout)` gave up: fewer than `wanted` clients were
 * alive when `timeout` elapsed.
 *
 * @since 0.1.0
 * @category errors
 */
export class AwaitAliveTimedOut extends Schema.TaggedError<AwaitAliveTimedOut>()("AwaitAliveTimedOut", {
  wanted: Schema.Number,
  alive: Schema.Number,
  timeoutMs: Schema.Number,
}) {
  override get message(): string {
    return `only ${this.alive} of the ${this.wanted} wanted clients were alive after ${this.timeoutMs} ms`
  }
}
