/**
 * The ways the client as a whole fails, besides a final `SessionEnd` error
 * (`Refused`, `Undecodable`): it cannot load its data, or it gave up
 * reconnecting.
 *
 * @since 0.2.0
 */
import { Schema } from "effect"

/**
 * The client's shard could not be loaded (MNIST files missing or corrupt, a
 * shard index the partition cannot cut). Final.
 *
 * @since 0.2.0
 * @category errors
 */
export class LocalDataUnavailable extends Schema.TaggedError<LocalDataUnavailable>()("LocalDataUnavailable", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `local training data unavailable: ${this.reason}`
  }
}

/**
 * `attempts` sessions in a row failed without a welcome (`maxRetries + 1`
 * attempts: `maxRetries` is a number of retries, as in `@fedguard/retry`);
 * `reason` is the last failure.
 *
 * @since 0.2.0
 * @category errors
 */
export class ReconnectGaveUp extends Schema.TaggedError<ReconnectGaveUp>()("ReconnectGaveUp", {
  server: Schema.String,
  attempts: Schema.Int,
  reason: Schema.String,
}) {
  override get message(): string {
    return `gave up on ${this.server} after ${this.attempts} attempts without a welcome: ${this.reason}`
  }
}
