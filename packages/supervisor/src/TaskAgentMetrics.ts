/**
 * The Effect `Metric`s both ends of a task pipe update, each with the
 * attributes `side` (`agent` or `exchanger`) and, for messages, `kind` (the
 * message's tag). Export them with any Effect metrics exporter; read them
 * in tests with `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Messages sent (first sends), by `side` and `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const messagesSent = Metric.counter("fedguard_task_pipe_messages_sent_total", {
  description: "task pipe messages sent, first sends only, by side and kind",
  incremental: true,
})

/**
 * Resends of unacknowledged messages, by `side` and `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const messagesResent = Metric.counter("fedguard_task_pipe_messages_resent_total", {
  description: "task pipe messages resent for want of an ack, by side and kind",
  incremental: true,
})

/**
 * Messages received and decoded (duplicates included), by `side` and `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const messagesReceived = Metric.counter("fedguard_task_pipe_messages_received_total", {
  description: "task pipe messages received and decoded, by side and kind",
  incremental: true,
})

/**
 * Duplicate payload messages dropped (acknowledged again, not delivered),
 * by `side` and `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const duplicatesDropped = Metric.counter("fedguard_task_pipe_duplicates_dropped_total", {
  description: "duplicate task pipe messages dropped, by side and kind",
  incremental: true,
})

/**
 * Inbound values rejected as undecodable or out of protocol, by `side`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const messagesRejected = Metric.counter("fedguard_task_pipe_messages_rejected_total", {
  description: "task pipe values rejected as undecodable or out of protocol, by side",
  incremental: true,
})

/**
 * Deliveries given up after the last resend, by `side` and `kind`.
 *
 * @since 0.1.0
 * @category metrics
 */
export const deliveriesFailed = Metric.counter("fedguard_task_pipe_deliveries_failed_total", {
  description: "task pipe messages never acknowledged after the last resend, by side and kind",
  incremental: true,
})

/**
 * Peers declared gone, by `side` and `reason` (`silent`, `pipe-closed`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const peersGone = Metric.counter("fedguard_task_pipe_peers_gone_total", {
  description: "task pipe peers declared gone, by side and reason",
  incremental: true,
})

/**
 * Ends closed, by `side` and `by` (`local`, `peer`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const closed = Metric.counter("fedguard_task_pipe_closed_total", {
  description: "task pipe ends closed, by side and by whom",
  incremental: true,
})
