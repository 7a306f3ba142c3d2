/**
 * What diagnostics reports happened, as past-tense facts: data collected,
 * a collection that failed, reports dropped from the full buffer, a batch
 * reported, a batch the sink failed to take.
 *
 * Times are epoch milliseconds from the Effect `Clock`; durations are
 * milliseconds.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * Collector `collector` returned data at `at`, `bytes` long as JSON; the
 * report is now in the buffer. Not published for empty data.
 *
 * @since 0.1.0
 * @category events
 */
export class DiagnosticsCollected extends Schema.TaggedClass<DiagnosticsCollected>()("DiagnosticsCollected", {
  collector: Schema.String,
  at: Schema.Number,
  bytes: Schema.Number,
}) {}

/**
 * Collector `collector` failed or died at `at`; `reason` says how. Its next
 * run still comes.
 *
 * @since 0.1.0
 * @category events
 */
export class DiagnosticsCollectFailed extends Schema.TaggedClass<DiagnosticsCollectFailed>()(
  "DiagnosticsCollectFailed",
  {
    collector: Schema.String,
    at: Schema.Number,
    reason: Schema.String,
  },
) {}

/**
 * The buffer was full at `at`: its oldest report (collector `collector`,
 * collected at `collectedAt`) was dropped to make room. `totalDropped` counts
 * every report dropped so far by this `Diagnostics`.
 *
 * @since 0.1.0
 * @category events
 */
export class DiagnosticsDropped extends Schema.TaggedClass<DiagnosticsDropped>()("DiagnosticsDropped", {
  collector: Schema.String,
  collectedAt: Schema.Number,
  at: Schema.Number,
  totalDropped: Schema.Number,
}) {}

/**
 * Sink `sink` took a batch of `reports` reports at `at`, after `attempts`
 * attempts (1 when the first one succeeded) and `latencyMs` from the first
 * attempt's start.
 *
 * @since 0.1.0
 * @category events
 */
export class DiagnosticsReported extends Schema.TaggedClass<DiagnosticsReported>()("DiagnosticsReported", {
  sink: Schema.String,
  reports: Schema.Number,
  attempts: Schema.Number,
  latencyMs: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * Sink `sink` did not take a batch of `reports` reports: the last of
 * `attempts` attempts failed with `errorTag` (`reason` is its message), and
 * the error was final or the retries ran out. The reports are lost; the
 * caller's work and the collectors go on.
 *
 * @since 0.1.0
 * @category events
 */
export class DiagnosticsSinkFailed extends Schema.TaggedClass<DiagnosticsSinkFailed>()("DiagnosticsSinkFailed", {
  sink: Schema.String,
  reports: Schema.Number,
  attempts: Schema.Number,
  errorTag: Schema.String,
  reason: Schema.String,
  at: Schema.Number,
}) {}

/**
 * Any diagnostics event, as a Schema (to encode events for logs or export)
 * and as a type.
 *
 * @since 0.1.0
 * @category events
 */
export const DiagnosticsEvent = Schema.Union([
  DiagnosticsCollected,
  DiagnosticsCollectFailed,
  DiagnosticsDropped,
  DiagnosticsReported,
  DiagnosticsSinkFailed,
])

/**
 * @since 0.1.0
 * @category events
 */
export type DiagnosticsEvent = typeof DiagnosticsEvent.Type
