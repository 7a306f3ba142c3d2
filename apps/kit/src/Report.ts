/**
 * The JSON report fed-server writes with `--report FILE`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { CleanupRecord } from "./Memory.ts"

/**
 * Why a client did not take part in a round.
 *
 * @since 0.1.0
 * @category models
 */
export const Exclusion = Schema.Struct({ id: Schema.String, reason: Schema.String })

/**
 * One round: who took part (`participants`: the clients whose update was
 * averaged), who was excluded and why (`offline`, `stalled`, `straggler`,
 * `send-failed: …`, `rejected: non-finite weights`, `rejected: stale round 3`,
 * …), how many updates `UpdateAdmission` refused (`rejectedUpdates`), whether
 * the global model changed (`modelUpdated`: false when no update was admitted,
 * so the previous model was kept), the global model's accuracy and loss on the
 * held-out test split after aggregation, wall time, and the weight bytes
 * received from and sent to clients.
 *
 * @since 0.1.0
 * @category models
 */
export const Round = Schema.Struct({
  round: Schema.Int,
  participants: Schema.Array(Schema.String),
  excluded: Schema.Array(Exclusion),
  rejectedUpdates: Schema.Int,
  modelUpdated: Schema.Boolean,
  testAccuracy: Schema.Number,
  testLoss: Schema.Number,
  /** SHA-256 (hex) of the global model after the round, as little-endian float32 bytes. */
  modelSha256: Schema.String,
  durationMs: Schema.Number,
  bytesIn: Schema.Int,
  bytesOut: Schema.Int,
})

/**
 * A client's final state. Times are epoch milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export const Client = Schema.Struct({
  id: Schema.String,
  state: Schema.String,
  joinedAt: Schema.NullOr(Schema.Number),
  lastSeenAt: Schema.NullOr(Schema.Number),
  offlineAt: Schema.optional(Schema.Number),
  reason: Schema.optional(Schema.String),
})

/**
 * One diagnostics report as the server keeps it: the collector that made
 * it, when (`at`, epoch milliseconds, the client's clock) and its JSON data.
 *
 * @since 0.4.0
 * @category models
 */
export const DiagnosticsEntry = Schema.Struct({
  collector: Schema.String,
  at: Schema.Number,
  data: Schema.Json,
})

/**
 * A client's latest diagnostics, as the server holds them at the end of the
 * run: the newest report of each collector (`reports`, sorted by collector,
 * bounded per client in count and bytes), when the last accepted message
 * arrived (`receivedAt`, epoch ms, the server's clock), how many messages
 * were accepted (`messages`) and refused as malformed (`rejected`, with
 * `lastRejection`), and how many reports the bounds dropped (`dropped`).
 *
 * @since 0.4.0
 * @category models
 */
export const ClientDiagnostics = Schema.Struct({
  id: Schema.String,
  receivedAt: Schema.NullOr(Schema.Number),
  messages: Schema.Int,
  rejected: Schema.Int,
  lastRejection: Schema.optionalKey(Schema.String),
  dropped: Schema.Int,
  reports: Schema.Array(DiagnosticsEntry),
})

/**
 * @since 0.4.0
 * @category models
 */
export type ClientDiagnostics = typeof ClientDiagnostics.Type

/**
 * The whole report: the settings the server ran with, every round, every
 * client, and the final test accuracy.
 *
 * @since 0.1.0
 * @category models
 */
export const Report = Schema.Struct({
  config: Schema.Record(Schema.String, Schema.Json),
  rounds: Schema.Array(Round),
  clients: Schema.Array(Client),
  finalAccuracy: Schema.Number,
  /** SHA-256 (hex) of the final global model: equal for two runs that trained the same model. */
  finalModelSha256: Schema.String,
  /** Each memory cleanup the server ran (`--memory-cleanup-rounds`, `--memory-threshold`), oldest first. */
  cleanups: Schema.optionalKey(Schema.Array(CleanupRecord)),
  /**
   * Each client's latest diagnostics (`@fedguard/diagnostics` reports sent over its session), by
   * client id; absent when the server refused diagnostics (`--accept-diagnostics false`) or none came.
   */
  diagnostics: Schema.optionalKey(Schema.Array(ClientDiagnostics)),
})

/**
 * @since 0.1.0
 * @category models
 */
export type Report = typeof Report.Type
