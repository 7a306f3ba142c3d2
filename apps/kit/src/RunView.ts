/**
 * What a person watching a run sees, as one value: the live status page
 * (fed-server's `--status-port`) streams it, and the HTML report
 * (`--report-html`) is the last one, rendered once. fed-server builds it by
 * folding its typed `ServerEvent`s with the time each arrived
 * (`RunRecorder`), never from log lines.
 *
 * Times are epoch milliseconds from the server's `Clock`.
 *
 * @since 0.4.0
 */
import { Schema } from "effect"
import { CleanupRecord } from "./Memory.ts"
import { ClientDiagnostics, Exclusion, Round } from "./Report.ts"

/**
 * A client's connection history: `spans` when it was online (`to` null:
 * still online), and `marks`, the moments something happened to it:
 * `offline` (with the liveness reason), `excluded` from a round (with the
 * round's reason), `never-joined`, `refused` (its handshake), `left`.
 *
 * @since 0.4.0
 * @category models
 */
export const ClientTimeline = Schema.Struct({
  id: Schema.String,
  /** `online`, `offline`, `never-joined`, `left`, or `waiting` (named by `--client-ids`, not joined yet). */
  state: Schema.String,
  /** Last sign of life the liveness tracker saw (heartbeat or any frame); null before any. */
  lastSeenAt: Schema.NullOr(Schema.Number),
  spans: Schema.Array(Schema.Struct({ from: Schema.Number, to: Schema.NullOr(Schema.Number) })),
  marks: Schema.Array(
    Schema.Struct({
      at: Schema.Number,
      kind: Schema.Literals(["offline", "excluded", "never-joined", "refused", "left"]),
      reason: Schema.String,
      round: Schema.NullOr(Schema.Int),
    }),
  ),
})

/**
 * @since 0.4.0
 * @category models
 */
export type ClientTimeline = typeof ClientTimeline.Type

/**
 * The round in progress: who it started with, who is still awaited
 * (`pending`), whose update was admitted (`accepted`) and who was excluded,
 * with the reason.
 *
 * @since 0.4.0
 * @category models
 */
export const CurrentRound = Schema.Struct({
  round: Schema.Int,
  startedAt: Schema.Number,
  participants: Schema.Array(Schema.String),
  pending: Schema.Array(Schema.String),
  accepted: Schema.Array(Schema.String),
  excluded: Schema.Array(Exclusion),
})

/**
 * A completed round (the report's record) and when it completed; `at` is
 * null for a round committed by an earlier server process (a resumed job).
 *
 * @since 0.4.0
 * @category models
 */
export const RoundPoint = Schema.Struct({ ...Round.fields, at: Schema.NullOr(Schema.Number) })

/**
 * A stalled connection (`StallDetected`), cleared at `clearedAt` (null: not
 * cleared).
 *
 * @since 0.4.0
 * @category models
 */
export const Stall = Schema.Struct({
  id: Schema.String,
  at: Schema.Number,
  oldestPendingMs: Schema.Number,
  checks: Schema.Int,
  closed: Schema.Boolean,
  clearedAt: Schema.NullOr(Schema.Number),
})

/**
 * A memory cleanup the server ran, and when.
 *
 * @since 0.4.0
 * @category models
 */
export const Cleanup = Schema.Struct({ ...CleanupRecord.fields, at: Schema.Number })

/**
 * The whole view of a run.
 *
 * - `quorum`: `waiting` (not reached yet), `reached`, or `lost`, with the
 *   latest counts the server reported (null before any);
 * - `paused`: the round that cannot start for lack of clients, if any;
 * - `settings`: the report's `config` (secrets redacted), once known;
 * - `diagnostics`: null when the server has no diagnostics receiver (the
 *   page says so), otherwise each client's latest (`Report.ClientDiagnostics`);
 * - `finished`: training completed (the report is final).
 *
 * @since 0.4.0
 * @category models
 */
export const RunView = Schema.Struct({
  title: Schema.String,
  startedAt: Schema.Number,
  now: Schema.Number,
  finished: Schema.Boolean,
  job: Schema.NullOr(Schema.Struct({ id: Schema.String, state: Schema.String, reason: Schema.String })),
  quorum: Schema.Struct({
    state: Schema.Literals(["waiting", "reached", "lost"]),
    alive: Schema.NullOr(Schema.Int),
    minClients: Schema.NullOr(Schema.Int),
  }),
  current: Schema.NullOr(CurrentRound),
  paused: Schema.NullOr(Schema.Struct({ round: Schema.Int, online: Schema.Int, minClients: Schema.Int })),
  rounds: Schema.Array(RoundPoint),
  clients: Schema.Array(ClientTimeline),
  stalls: Schema.Array(Stall),
  cleanups: Schema.Array(Cleanup),
  settings: Schema.NullOr(Schema.Record(Schema.String, Schema.Json)),
  diagnostics: Schema.NullOr(Schema.Array(ClientDiagnostics)),
  finalAccuracy: Schema.NullOr(Schema.Number),
})

/**
 * @since 0.4.0
 * @category models
 */
export type RunView = typeof RunView.Type

/**
 * The view of a run that has only started at `startedAt`: no client, no
 * round, the quorum not reached.
 *
 * @since 0.4.0
 * @category constructors
 */
export const empty = (title: string, startedAt: number): RunView => ({
  title,
  startedAt,
  now: startedAt,
  finished: false,
  job: null,
  quorum: { state: "waiting", alive: null, minClients: null },
  current: null,
  paused: null,
  rounds: [],
  clients: [],
  stalls: [],
  cleanups: [],
  settings: null,
  diagnostics: null,
  finalAccuracy: null,
})

/**
 * The JSON text of a view, safe to place inside an HTML `<script>` element:
 * `<`, `>`, `&` and the line separators are escaped as `\uXXXX`, so no
 * value (a client id, a reason) can close the element or start markup.
 *
 * @since 0.4.0
 * @category rendering
 */
export const toScriptJson = (view: RunView): string =>
  JSON.stringify(Schema.encodeSync(RunView)(view)).replace(
    /[<>&\u2028\u2029]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  )
