/**
 * The Effect `Metric`s the heartbeat package updates. Export them with any
 * Effect metrics exporter; read them in tests with `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Heartbeats accepted by a `LivenessTracker` (rejected beats are not counted).
 *
 * @since 0.1.0
 * @category metrics
 */
export const beatsReceived = Metric.counter("fedguard_heartbeat_beats_received_total", {
  description: "heartbeats accepted by the liveness tracker",
  incremental: true,
})

/**
 * The number of clients a `LivenessTracker` currently considers online; set
 * on every transition.
 *
 * @since 0.1.0
 * @category metrics
 */
export const clientsOnline = Metric.gauge("fedguard_heartbeat_clients_online", {
  description: "clients currently online",
})

/**
 * Online-to-offline transitions (timeouts and explicit `markOffline`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const offlineTransitions = Metric.counter("fedguard_heartbeat_offline_transitions_total", {
  description: "clients that went offline (timeout or explicit signal)",
  incremental: true,
})

/**
 * Heartbeats a `HeartbeatSender` sent successfully.
 *
 * @since 0.1.0
 * @category metrics
 */
export const beatsSent = Metric.counter("fedguard_heartbeat_beats_sent_total", {
  description: "heartbeats sent successfully",
  incremental: true,
})

/**
 * Heartbeats whose `send` failed or timed out.
 *
 * @since 0.1.0
 * @category metrics
 */
export const beatSendFailures = Metric.counter("fedguard_heartbeat_beat_send_failures_total", {
  description: "heartbeats whose send failed or timed out",
  incremental: true,
})
