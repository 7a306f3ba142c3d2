/**
 * The Effect `Metric`s that retries and the `NeighborRegistry` update, so
 * applications can export them (OTLP, Prometheus) without subscribing to the
 * event streams.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Attempts started by `Retry.retry` (first attempts and retries alike). With
 * the default policy a call that always fails adds 4.
 *
 * @since 0.1.0
 * @category metrics
 */
export const attempts = Metric.counter("fedguard_retry_attempts", {
  description: "Attempts started under a retry policy, first attempts included",
  incremental: true,
})

/**
 * The delay, in milliseconds, chosen before each retry (after jitter, hint and
 * cap). Its `count` is the number of retries scheduled.
 *
 * @since 0.1.0
 * @category metrics
 */
export const retryDelay = Metric.histogram("fedguard_retry_delay_millis", {
  description: "Delay chosen before each retry, in milliseconds",
  boundaries: Metric.exponentialBoundaries({ start: 50, factor: 2, count: 12 }),
})

/**
 * Calls that gave up on a retryable error, with the attribute `reason`
 * (`retries-exhausted` or `budget-exhausted`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const giveUps = Metric.counter("fedguard_retry_give_ups", {
  description: "Calls that stopped retrying a retryable error",
  incremental: true,
})

/**
 * Neighbour availability changes, with the attribute `to` (`online` or
 * `offline`). Repeated marks that change nothing are not counted.
 *
 * @since 0.1.0
 * @category metrics
 */
export const statusChanges = Metric.counter("fedguard_neighbor_status_changes", {
  description: "Neighbour availability changes (online <-> offline)",
  incremental: true,
})
