/**
 * The Effect `Metric`s memory-cleanup updates. Export them with any Effect
 * metrics exporter; read them in tests with `Metric.value` (with the
 * attributes, e.g. `Metric.withAttributes(runs, { trigger: "rounds" })`).
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Runs of the cleanup pipeline, by `trigger` attribute: `rounds`,
 * `threshold` or `manual`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const runs = Metric.counter("fedguard_memory_cleanup_runs_total", {
  description: "runs of the memory cleanup pipeline, by trigger",
  incremental: true,
})

/**
 * Steps that failed, died or timed out, by `step` attribute (the release
 * hook's name, or `gc`). Skipped steps are not failures.
 *
 * @since 0.1.0
 * @category metrics
 */
export const stepFailures = Metric.counter("fedguard_memory_cleanup_step_failures_total", {
  description: "memory cleanup steps that failed, died or timed out, by step",
  incremental: true,
})

/**
 * Threshold crossings that did not start a run because the last run was
 * less than `minInterval` ago.
 *
 * @since 0.1.0
 * @category metrics
 */
export const thresholdRunsSuppressed = Metric.counter("fedguard_memory_cleanup_threshold_runs_suppressed_total", {
  description: "threshold crossings within the minimum interval of the last run",
  incremental: true,
})

/**
 * Bytes the last run freed, by `figure` attribute (`heapUsed`, `external`,
 * `arrayBuffers`, `rss`): before minus after, negative when memory grew.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesFreed = Metric.gauge("fedguard_memory_cleanup_bytes_freed", {
  description: "bytes freed by the last memory cleanup run, by figure",
})

/**
 * Bytes freed per run, by `figure` attribute, in buckets from 1 MiB to
 * 16 GiB (powers of two); a run that freed nothing, or after which memory
 * grew, lands in the first bucket.
 *
 * @since 0.1.0
 * @category metrics
 */
export const bytesFreedPerRun = Metric.histogram("fedguard_memory_cleanup_bytes_freed_per_run", {
  description: "bytes freed per memory cleanup run, by figure",
  boundaries: Metric.exponentialBoundaries({ start: 1024 * 1024, factor: 2, count: 15 }),
})
