/**
 * What the server reports happened, as typed events. The JSON log, the demo,
 * the report and the tests all read these; a log line is only their
 * rendering (`{"event":"round-completed","round":3,…}`), and
 * {@link fromLine} turns such a line back into the event.
 *
 * Times are not fields: the log line carries its own `time`.
 *
 * @since 0.2.0
 */
import { EventLog, Memory, Report } from "@fedguard/app-kit"
import { Schema } from "effect"

/**
 * The server bound its address (port 0 becomes the real port). Always the
 * first event.
 *
 * @since 0.2.0
 * @category events
 */
export class Listening extends Schema.TaggedClass<Listening>()("Listening", {
  host: Schema.String,
  port: Schema.Int,
}) {}

/**
 * A client proved the secret and was welcomed for the first time.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientJoined extends Schema.TaggedClass<ClientJoined>()("ClientJoined", {
  id: Schema.String,
  remote: Schema.String,
}) {}

/**
 * A known client joined again (after going offline, or replacing its own
 * older session).
 *
 * @since 0.2.0
 * @category events
 */
export class ClientRejoined extends Schema.TaggedClass<ClientRejoined>()("ClientRejoined", {
  id: Schema.String,
  remote: Schema.String,
}) {}

/**
 * A connection was refused during its handshake (`id` is `"?"` when it never
 * named one): wrong proof, unknown id, no join in time, a flapping duplicate
 * id, or garbage. The socket is closed.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientRefused extends Schema.TaggedClass<ClientRefused>()("ClientRefused", {
  id: Schema.String,
  remote: Schema.String,
  reason: Schema.String,
}) {}

/**
 * A new session of `id` replaced its older one; the old session's round slot
 * was released at once.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientReplaced extends Schema.TaggedClass<ClientReplaced>()("ClientReplaced", {
  id: Schema.String,
  remote: Schema.String,
}) {}

/**
 * An online client went offline: its connection ended, or its heartbeat
 * deadline passed. Published exactly once per transition, by `ClientLiveness`.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientWentOffline extends Schema.TaggedClass<ClientWentOffline>()("ClientWentOffline", {
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * A client named by `--client-ids` was not seen within `--join-timeout`.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientNeverJoined extends Schema.TaggedClass<ClientNeverJoined>()("ClientNeverJoined", {
  id: Schema.String,
}) {}

/**
 * A client disconnected after training completed (the plan, not a fault).
 *
 * @since 0.2.0
 * @category events
 */
export class ClientLeft extends Schema.TaggedClass<ClientLeft>()("ClientLeft", {
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * Fewer than `--expected-clients` joined within `--join-timeout`; training
 * starts with those present (at least `--min-clients`).
 *
 * @since 0.2.0
 * @category events
 */
export class JoinTimedOut extends Schema.TaggedClass<JoinTimedOut>()("JoinTimedOut", {
  online: Schema.Int,
  expected: Schema.Int,
}) {}

/**
 * A new job was created in the state file (`--state`); its rounds commit
 * there.
 *
 * @since 0.3.0
 * @category events
 */
export class JobCreated extends Schema.TaggedClass<JobCreated>()("JobCreated", {
  jobId: Schema.String,
  name: Schema.String,
  rounds: Schema.Int,
  state: Schema.String,
}) {}

/**
 * The server found its running job in the state file and resumes it after
 * its last committed round (`afterRound` 0: none was committed), from that
 * round's global model (`modelSha256`).
 *
 * @since 0.3.0
 * @category events
 */
export class JobResumed extends Schema.TaggedClass<JobResumed>()("JobResumed", {
  jobId: Schema.String,
  name: Schema.String,
  afterRound: Schema.Int,
  rounds: Schema.Int,
  modelSha256: Schema.String,
}) {}

/**
 * The job moved between states (`submitted → deploying → starting →
 * running ⇄ paused → completed | failed | aborted`), recorded in the state
 * file with its reason.
 *
 * @since 0.3.0
 * @category events
 */
export class JobStateChanged extends Schema.TaggedClass<JobStateChanged>()("JobStateChanged", {
  jobId: Schema.String,
  from: Schema.String,
  to: Schema.String,
  reason: Schema.String,
}) {}

/**
 * A client was left out of the job at its deploy or start phase (it had not
 * joined, or was gone again before the first round), with the reason.
 * Such a client may still join a later round.
 *
 * @since 0.3.0
 * @category events
 */
export class ClientNotStarted extends Schema.TaggedClass<ClientNotStarted>()("ClientNotStarted", {
  id: Schema.String,
  phase: Schema.String,
  reason: Schema.String,
}) {}

/**
 * The server ran a memory cleanup (`--memory-cleanup-rounds`,
 * `--memory-threshold`): its trigger, the round after which it ran, each
 * step, and the memory figures (bytes) before and after.
 *
 * @since 0.3.0
 * @category events
 */
export class MemoryCleaned extends Schema.TaggedClass<MemoryCleaned>()("MemoryCleaned", Memory.CleanupRecord.fields) {}

/**
 * A round started with these participants (sorted ids).
 *
 * @since 0.2.0
 * @category events
 */
export class RoundStarted extends Schema.TaggedClass<RoundStarted>()("RoundStarted", {
  round: Schema.Int,
  participants: Schema.Array(Schema.String),
}) {}

/**
 * No round starts: fewer than `--min-clients` clients are online.
 *
 * @since 0.2.0
 * @category events
 */
export class RoundPaused extends Schema.TaggedClass<RoundPaused>()("RoundPaused", {
  round: Schema.Int,
  online: Schema.Int,
  minClients: Schema.Int,
}) {}

/**
 * `UpdateAdmission` refused a client's update; the client is excluded from
 * the round at once and stays connected.
 *
 * @since 0.2.0
 * @category events
 */
export class UpdateRejected extends Schema.TaggedClass<UpdateRejected>()("UpdateRejected", {
  round: Schema.Int,
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * A participant was excluded from the running round, with the reason that
 * also appears in the report.
 *
 * @since 0.2.0
 * @category events
 */
export class ClientExcluded extends Schema.TaggedClass<ClientExcluded>()("ClientExcluded", {
  round: Schema.Int,
  id: Schema.String,
  reason: Schema.String,
}) {}

/**
 * A round finished and was committed to the state file (its record and the
 * new global model, in one transaction): the report's round record.
 *
 * @since 0.2.0
 * @category events
 */
export class RoundCompleted extends Schema.TaggedClass<RoundCompleted>()("RoundCompleted", Report.Round.fields) {}

/**
 * The stall monitor of `id`'s connection saw its oldest pending send blocked
 * longer than `--stall-timeout` on `checks` checks in a row (NVIDIA FLARE's
 * stalled-connection guard). With `--close-stalled true` the connection is
 * closed; otherwise this is a warning.
 *
 * @since 0.2.0
 * @category events
 */
export class StallDetected extends Schema.TaggedClass<StallDetected>()("StallDetected", {
  id: Schema.String,
  oldestPendingMs: Schema.Number,
  checks: Schema.Int,
  closed: Schema.Boolean,
}) {}

/**
 * The connection of `id` is moving again after a `StallDetected`.
 *
 * @since 0.2.0
 * @category events
 */
export class StallCleared extends Schema.TaggedClass<StallCleared>()("StallCleared", {
  id: Schema.String,
}) {}

/**
 * Fewer clients than `--min-clients` are alive (after the quorum was reached).
 *
 * @since 0.2.0
 * @category events
 */
export class QuorumLost extends Schema.TaggedClass<QuorumLost>()("QuorumLost", {
  alive: Schema.Int,
  minClients: Schema.Int,
}) {}

/**
 * The quorum is back after a `QuorumLost`.
 *
 * @since 0.2.0
 * @category events
 */
export class QuorumRestored extends Schema.TaggedClass<QuorumRestored>()("QuorumRestored", {
  alive: Schema.Int,
  minClients: Schema.Int,
}) {}

/**
 * Every round ran; the farewell went to the online clients.
 *
 * @since 0.2.0
 * @category events
 */
export class TrainingCompleted extends Schema.TaggedClass<TrainingCompleted>()("TrainingCompleted", {
  finalAccuracy: Schema.Number,
  rounds: Schema.Int,
}) {}

/**
 * The report was written to `path`.
 *
 * @since 0.2.0
 * @category events
 */
export class ReportWritten extends Schema.TaggedClass<ReportWritten>()("ReportWritten", {
  path: Schema.String,
}) {}

/**
 * A `diagnostics` message from the authenticated client `id` did not decode
 * (`reason` says what is wrong, `path` names the field when there is one,
 * e.g. `reports.0.collector`). The message is dropped and counted in the
 * report; the client's session and rounds go on.
 *
 * @since 0.4.0
 * @category events
 */
export class DiagnosticsRejected extends Schema.TaggedClass<DiagnosticsRejected>()("DiagnosticsRejected", {
  id: Schema.String,
  reason: Schema.String,
  path: Schema.optionalKey(Schema.String),
}) {}

/**
 * The server refuses diagnostics (`--accept-diagnostics false`) and dropped
 * the first message of `id` (`reports` reports). Published once per client;
 * later messages are dropped silently. The session goes on.
 *
 * @since 0.4.0
 * @category events
 */
export class DiagnosticsRefused extends Schema.TaggedClass<DiagnosticsRefused>()("DiagnosticsRefused", {
  id: Schema.String,
  reports: Schema.Int,
}) {}

/**
 * The Prometheus endpoint (`--metrics-port`) listens on `host:port` and
 * serves `GET /metrics`.
 *
 * @since 0.4.0
 * @category events
 */
export class MetricsListening extends Schema.TaggedClass<MetricsListening>()("MetricsListening", {
  host: Schema.String,
  port: Schema.Int,
}) {}

/**
 * `UpdateAdmission` admitted `id`'s update for the running round (`samples`
 * training samples): it will be averaged when the round ends.
 *
 * @since 0.4.0
 * @category events
 */
export class UpdateAccepted extends Schema.TaggedClass<UpdateAccepted>()("UpdateAccepted", {
  round: Schema.Int,
  id: Schema.String,
  samples: Schema.Int,
}) {}

/**
 * The live status page (`--status-port`) serves `url` (its bearer token,
 * if any, is never part of it). Published right after `Listening`.
 *
 * @since 0.4.0
 * @category events
 */
export class StatusPageListening extends Schema.TaggedClass<StatusPageListening>()("StatusPageListening", {
  url: Schema.String,
  authenticated: Schema.Boolean,
}) {}

/**
 * Every server event.
 *
 * @since 0.2.0
 * @category events
 */
export const ServerEvent = Schema.Union([
  Listening,
  ClientJoined,
  ClientRejoined,
  ClientRefused,
  ClientReplaced,
  ClientWentOffline,
  ClientNeverJoined,
  ClientLeft,
  JoinTimedOut,
  JobCreated,
  JobResumed,
  JobStateChanged,
  ClientNotStarted,
  MemoryCleaned,
  RoundStarted,
  RoundPaused,
  UpdateRejected,
  ClientExcluded,
  RoundCompleted,
  StallDetected,
  StallCleared,
  QuorumLost,
  QuorumRestored,
  TrainingCompleted,
  ReportWritten,
  DiagnosticsRejected,
  DiagnosticsRefused,
  MetricsListening,
  UpdateAccepted,
  StatusPageListening,
])

/**
 * @since 0.2.0
 * @category events
 */
export type ServerEvent = typeof ServerEvent.Type

/**
 * The log rendering of each event: line names are the ones the server has
 * always logged (`client-online` for a rejoin, `client-rejected` for a refused
 * handshake), so people who read the JSON log see the same lines.
 *
 * @since 0.2.0
 * @category logging
 */
export const lines = EventLog.codec(ServerEvent, {
  Listening: { name: "listening", level: "Info" },
  ClientJoined: { name: "client-joined", level: "Info" },
  ClientRejoined: { name: "client-online", level: "Info" },
  ClientRefused: { name: "client-rejected", level: "Warning" },
  ClientReplaced: { name: "client-replaced", level: "Warning" },
  ClientWentOffline: { name: "client-offline", level: "Warning" },
  ClientNeverJoined: { name: "client-never-joined", level: "Warning" },
  ClientLeft: { name: "client-left", level: "Info" },
  JoinTimedOut: { name: "join-timeout", level: "Warning" },
  JobCreated: { name: "job-created", level: "Info" },
  JobResumed: { name: "job-resumed", level: "Info" },
  JobStateChanged: { name: "job-state", level: "Info" },
  ClientNotStarted: { name: "client-not-started", level: "Warning" },
  MemoryCleaned: { name: "memory-cleaned", level: "Info" },
  RoundStarted: { name: "round-started", level: "Info" },
  RoundPaused: { name: "round-paused", level: "Warning" },
  UpdateRejected: { name: "update-rejected", level: "Warning" },
  ClientExcluded: { name: "client-excluded", level: "Warning" },
  RoundCompleted: { name: "round-completed", level: "Info" },
  StallDetected: { name: "stall-detected", level: "Warning" },
  StallCleared: { name: "stall-cleared", level: "Info" },
  QuorumLost: { name: "quorum-lost", level: "Warning" },
  QuorumRestored: { name: "quorum-restored", level: "Info" },
  TrainingCompleted: { name: "training-completed", level: "Info" },
  ReportWritten: { name: "report-written", level: "Info" },
  DiagnosticsRejected: { name: "diagnostics-rejected", level: "Warning" },
  DiagnosticsRefused: { name: "diagnostics-refused", level: "Info" },
  MetricsListening: { name: "metrics-listening", level: "Info" },
  UpdateAccepted: { name: "update-accepted", level: "Info" },
  StatusPageListening: { name: "status-page-listening", level: "Info" },
})

/**
 * Decodes one JSON log line of the server into its event; `None` for any
 * other line.
 *
 * @since 0.2.0
 * @category logging
 */
export const fromLine = lines.fromLine
