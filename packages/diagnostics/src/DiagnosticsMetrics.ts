/**
 * The Effect `Metric`s diagnostics updates: what was collected, reported,
 * dropped and lost, and how the reporting itself performs (batch sizes,
 * send latency, retries, buffer fill). Export them with any Effect metrics
 * exporter; read them in tests with `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Reports collected (non-empty data), by `collector` attribute.
 *
 * @since 0.1.0
 * @category metrics
 */
export const collected = Metric.counter("fedguard_diagnostics_collected_total", {
  description: "diagnostics reports collected (non-empty data), by collector",
  incremental: true,
})

/**
 * Collector runs that returned nothing (none or empty data), by `collector`
 * attribute: skipped, never reported.
 *
 * @since 0.1.0
 * @category metrics
 */
export const empty = Metric.counter("fedguard_diagnostics_empty_total", {
  description: "collector runs that returned no data (skipped), by collector",
  incremental: true,
})

/**
 * Collector runs that failed or died, by `collector` attribute.
 *
 * @since 0.1.0
 * @category metrics
 */
export const collectFailures = Metric.counter("fedguard_diagnostics_collect_failures_total", {
  description: "collector runs that failed or died, by collector",
  incremental: true,
})

/**
 * Reports the sink took, by `sink` attribute.
 *
 * @since 0.1.0
 * @category metrics
 */
export const reported = Metric.counter("fedguard_diagnostics_reported_total", {
  description: "diagnostics reports delivered to the sink, by sink",
  incremental: true,
})

/**
 * Reports dropped because the buffer was full (the oldest goes first).
 *
 * @since 0.1.0
 * @category metrics
 */
export const dropped = Metric.counter("fedguard_diagnostics_dropped_total", {
  description: "diagnostics reports dropped from the full buffer (oldest first)",
  incremental: true,
})

/**
 * Batches the sink failed to take after every allowed attempt, by `sink`
 * and `error` (the last error's tag) attributes.
 *
 * @since 0.1.0
 * @category metrics
 */
export const sinkFailures = Metric.counter("fedguard_diagnostics_sink_failures_total", {
  description: "batches the diagnostics sink failed to take, by sink and error tag",
  incremental: true,
})

/**
 * Reports lost in batches the sink failed to take, by `sink` attribute.
 *
 * @since 0.1.0
 * @category metrics
 */
export const failedReports = Metric.counter("fedguard_diagnostics_failed_reports_total", {
  description: "diagnostics reports lost in batches the sink failed to take, by sink",
  incremental: true,
})

/**
 * Retries of a send, by `sink` attribute (a batch delivered at the third
 * attempt adds 2).
 *
 * @since 0.1.0
 * @category metrics
 */
export const sendRetries = Metric.counter("fedguard_diagnostics_send_retries_total", {
  description: "retries of diagnostics sends, by sink",
  incremental: true,
})

/**
 * Reports per batch handed to the sink (1 to 4096, powers of two).
 *
 * @since 0.1.0
 * @category metrics
 */
export const batchSize = Metric.histogram("fedguard_diagnostics_batch_size", {
  description: "reports per diagnostics batch",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 13 }),
})

/**
 * Milliseconds from a batch's first attempt to its outcome (retries
 * included), by `sink` attribute; 1 ms to about 65 s, powers of two.
 *
 * @since 0.1.0
 * @category metrics
 */
export const sendLatency = Metric.histogram("fedguard_diagnostics_send_latency_millis", {
  description: "milliseconds from a diagnostics batch's first send attempt to its outcome, by sink",
  boundaries: Metric.exponentialBoundaries({ start: 1, factor: 2, count: 17 }),
})

/**
 * Reports waiting in the buffer.
 *
 * @since 0.1.0
 * @category metrics
 */
export const buffered = Metric.gauge("fedguard_diagnostics_buffered", {
  description: "diagnostics reports waiting in the buffer",
})
