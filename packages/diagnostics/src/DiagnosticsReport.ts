/**
 * One piece of diagnostics data as it travels to a sink: which collector
 * produced it, when, and the data itself (any JSON value).
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A collector's name: 1 to 128 characters (`"log-tail"`, `"resource-usage"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const CollectorName = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128)).annotate({
  description: "the name of the collector that produced a report (1 to 128 characters)",
})

/**
 * One report: `collector` (its name), `at` (when it was collected, epoch
 * milliseconds from the Effect `Clock`) and `data` (the JSON value the
 * collector returned; never empty: empty data is not reported).
 *
 * @example
 * ```ts
 * import { DiagnosticsReport } from "@fedguard/diagnostics"
 * const report: DiagnosticsReport.DiagnosticsReport = { collector: "resource-usage", at: 1_700_000_000_000, data: { rss: 1 } }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const DiagnosticsReport = Schema.Struct({
  collector: CollectorName,
  at: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).annotate({
    description: "when the data was collected, epoch milliseconds",
  }),
  data: Schema.Json,
}).annotate({ identifier: "DiagnosticsReport", description: "one collector's data at one time" })

/**
 * @since 0.1.0
 * @category models
 */
export type DiagnosticsReport = typeof DiagnosticsReport.Type
