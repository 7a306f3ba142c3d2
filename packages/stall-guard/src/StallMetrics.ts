/**
 * The Effect `Metric`s stall-guard updates. Export them with any Effect
 * metrics exporter; read them in tests with `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Byte streams failed by the `AckProgressWatchdog` (`AckStalled`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const ackStalls = Metric.counter("fedguard_stall_guard_ack_stalls_total", {
  description: "byte streams whose acknowledged offset stopped advancing",
  incremental: true,
})

/**
 * `StallDetected` events of every `StallMonitor`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const stallsDetected = Metric.counter("fedguard_stall_guard_stalls_detected_total", {
  description: "connections detected stalled",
  incremental: true,
})

/**
 * `StallCleared` events of every `StallMonitor`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const stallsCleared = Metric.counter("fedguard_stall_guard_stalls_cleared_total", {
  description: "stalled connections that recovered",
  incremental: true,
})

/**
 * Connections a `StallMonitor` closed (`closeStalled: true`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const stalledConnectionsClosed = Metric.counter("fedguard_stall_guard_connections_closed_total", {
  description: "connections closed because they were stalled",
  incremental: true,
})

/**
 * Connections currently reported stalled (detected and not cleared), over
 * every monitor of the process.
 *
 * @since 0.1.0
 * @category metrics
 */
export const stalledConnections = Metric.gauge("fedguard_stall_guard_stalled_connections", {
  description: "connections currently stalled",
})

/**
 * Transfers a receiver gave up on, by `status` attribute: `idle` or
 * `did-not-start`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const transfersIdle = Metric.counter("fedguard_stall_guard_transfers_idle_total", {
  description: "incoming transfers given up for lack of progress",
  incremental: true,
})

/**
 * Transfers abandoned while in progress (the reader was interrupted).
 *
 * @since 0.1.0
 * @category metrics
 */
export const transfersAbandoned = Metric.counter("fedguard_stall_guard_transfers_abandoned_total", {
  description: "incoming transfers abandoned while in progress",
  incremental: true,
})
