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

/**
 * A round could not be trained because its training worker (`--trainer
 * thread`) went away on every attempt: it crashed, or it stopped answering
 * the task agent's heartbeats for the trainer timeout (a hung training
 * step), and each fresh worker did too. `attempts` workers tried round
 * `round`; `reason` is the last worker's end (`PeerGone`, the exit code).
 * Retryable for the client: this round is not uploaded (the server excludes
 * it at the round's timeout) and the next round gets a fresh worker.
 *
 * @since 0.5.0
 * @category errors
 */
export class TrainerLost extends Schema.TaggedError<TrainerLost>()("TrainerLost", {
  round: Schema.Int,
  attempts: Schema.Int,
  reason: Schema.String,
}) {
  override get message(): string {
    return `round ${this.round} not trained: the training worker was lost on ${this.attempts} attempt(s); last: ${this.reason}`
  }
}
