/**
 * What a fed-client reports happened, as typed events. Its JSON log is only
 * their rendering (`{"event":"round-trained","round":3,…}`), and
 * {@link fromLine} turns such a line back into the event. Services publish
 * them through the `ClientEvents` hub.
 *
 * @since 0.2.0
 */
import { EventLog, Memory } from "@fedguard/app-kit"
import { Schema } from "effect"

/**
 * A connection attempt failed. `reconnectInMs` is the delay the reconnect
 * policy chose before the next attempt (absent when the client gives up
 * instead: a `GaveUp` follows).
 *
 * @since 0.2.0
 * @category events
 */
export class ConnectFailed extends Schema.TaggedClass<ConnectFailed>()("ConnectFailed", {
  server: Schema.String,
  reason: Schema.String,
  reconnectInMs: Schema.optionalKey(Schema.Number),
}) {}

/**
 * The server welcomed this client: training settings follow.
 *
 * @since 0.2.0
 * @category events
 */
export class Joined extends Schema.TaggedClass<Joined>()("Joined", {
  id: Schema.String,
  server: Schema.String,
  model: Schema.String,
}) {}

/**
 * A round's model was trained locally and its update uploaded.
 *
 * @since 0.2.0
 * @category events
 */
export class RoundTrained extends Schema.TaggedClass<RoundTrained>()("RoundTrained", {
  id: Schema.String,
  round: Schema.Int,
  samples: Schema.Int,
  trainLoss: Schema.Number,
  durationMs: Schema.Number,
}) {}

/**
 * A round's upload did not get through: it stopped moving (`AckStalled`, after
 * its retries on fresh streams) or the server gave up on it. Only this round
 * is lost; the session goes on.
 *
 * @since 0.2.0
 * @category events
 */
export class UploadFailed extends Schema.TaggedClass<UploadFailed>()("UploadFailed", {
  id: Schema.String,
  round: Schema.Int,
  reason: Schema.String,
}) {}

/**
 * A round's training was lost: its training worker (`--trainer thread`)
 * crashed or hung on every attempt (`TrainerLost`). The round is not
 * uploaded, so the server excludes this client from it at the round's
 * timeout; the session goes on and the next round gets a fresh worker.
 *
 * @since 0.5.0
 * @category events
 */
export class TrainingFailed extends Schema.TaggedClass<TrainingFailed>()("TrainingFailed", {
  id: Schema.String,
  round: Schema.Int,
  reason: Schema.String,
}) {}

/**
 * The training worker (`--trainer thread`) went away (`reason`: it exited,
 * or was silent for the trainer timeout) and a fresh one was started and
 * loaded the shard; `restarts` counts them since the client started.
 *
 * @since 0.5.0
 * @category events
 */
export class TrainerRestarted extends Schema.TaggedClass<TrainerRestarted>()("TrainerRestarted", {
  id: Schema.String,
  reason: Schema.String,
  restarts: Schema.Int,
}) {}

/**
 * The session ended before training completed, for a retryable reason
 * (`PeerLost`, connection ended, no welcome in time); the client reconnects
 * after `reconnectInMs` (from `@fedguard/retry`'s policy, with jitter).
 *
 * @since 0.2.0
 * @category events
 */
export class ServerLost extends Schema.TaggedClass<ServerLost>()("ServerLost", {
  id: Schema.String,
  reason: Schema.String,
  reconnectInMs: Schema.Number,
}) {}

/**
 * The server refused this client (wrong secret, unknown id, duplicate id):
 * final, the client exits with an error.
 *
 * @since 0.2.0
 * @category events
 */
export class Refused extends Schema.TaggedClass<Refused>()("Refused", {
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * The server sent something the client cannot use (an undecodable or
 * unexpected message, a malformed model): final, the client exits with an
 * error rather than retrying the same bytes.
 *
 * @since 0.2.0
 * @category events
 */
export class ServerMisbehaved extends Schema.TaggedClass<ServerMisbehaved>()("ServerMisbehaved", {
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * The client stopped reconnecting: its sessions failed `attempts` times in a
 * row without being welcomed.
 *
 * @since 0.2.0
 * @category events
 */
export class GaveUp extends Schema.TaggedClass<GaveUp>()("GaveUp", {
  id: Schema.String,
  attempts: Schema.Int,
  reason: Schema.String,
}) {}

/**
 * The server said training is complete.
 *
 * @since 0.2.0
 * @category events
 */
export class TrainingCompleted extends Schema.TaggedClass<TrainingCompleted>()("TrainingCompleted", {
  id: Schema.String,
  finalAccuracy: Schema.Number,
  rounds: Schema.Int,
}) {}

/**
 * The client ran a memory cleanup (`--memory-cleanup-rounds`,
 * `--memory-threshold`): its trigger, the round after which it ran, each
 * step, and the memory figures (bytes) before and after.
 *
 * @since 0.3.0
 * @category events
 */
export class MemoryCleaned extends Schema.TaggedClass<MemoryCleaned>()("MemoryCleaned", {
  id: Schema.String,
  ...Memory.CleanupRecord.fields,
}) {}

/**
 * Every client event.
 *
 * @since 0.2.0
 * @category events
 */
export const ClientEvent = Schema.Union([
  ConnectFailed,
  Joined,
  RoundTrained,
  UploadFailed,
  TrainingFailed,
  TrainerRestarted,
  ServerLost,
  Refused,
  ServerMisbehaved,
  GaveUp,
  TrainingCompleted,
  MemoryCleaned,
])

/**
 * @since 0.2.0
 * @category events
 */
export type ClientEvent = typeof ClientEvent.Type

/**
 * The log rendering of each event (line names as the client has always
 * logged them).
 *
 * @since 0.2.0
 * @category logging
 */
export const lines = EventLog.codec(ClientEvent, {
  ConnectFailed: { name: "connect-failed", level: "Warning" },
  Joined: { name: "joined", level: "Info" },
  RoundTrained: { name: "round-trained", level: "Info" },
  UploadFailed: { name: "upload-failed", level: "Warning" },
  TrainingFailed: { name: "training-failed", level: "Warning" },
  TrainerRestarted: { name: "trainer-restarted", level: "Warning" },
  ServerLost: { name: "server-lost", level: "Warning" },
  Refused: { name: "refused", level: "Error" },
  ServerMisbehaved: { name: "server-misbehaved", level: "Error" },
  GaveUp: { name: "gave-up", level: "Error" },
  TrainingCompleted: { name: "training-completed", level: "Info" },
  MemoryCleaned: { name: "memory-cleaned", level: "Info" },
})

/**
 * Decodes one JSON log line of a client into its event; `None` for any other
 * line.
 *
 * @since 0.2.0
 * @category logging
 */
export const fromLine = lines.fromLine
