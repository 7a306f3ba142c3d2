/**
 * The server's own Effect `Metric`s, and the recorder that keeps them from
 * the `ServerEvent`s: rounds completed, exclusions by reason, update and
 * model bytes, refused updates, the last round's accuracy and duration, and
 * diagnostics received. The packages' metrics complete the picture
 * (`fedguard_heartbeat_clients_online` for the clients alive,
 * `fedguard_retry_*` for send retries, `fedguard_stall_guard_*` for stalls,
 * `fedguard_memory_cleanup_*` for cleanups); `MetricsEndpoint` serves them
 * all in the Prometheus text format.
 *
 * Metrics are facts derived from events, so the log, the report and
 * `/metrics` always agree: `fedguard_server_rounds_completed_total` counts
 * the `RoundCompleted` events, which are the report's rounds.
 *
 * @since 0.4.0
 */
import { Effect, Layer, Metric, Stream } from "effect"
import type * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * Rounds committed (one per `RoundCompleted`: the report's rounds).
 *
 * @since 0.4.0
 * @category metrics
 */
export const roundsCompleted = Metric.counter("fedguard_server_rounds_completed_total", {
  description: "federated rounds completed and committed",
  incremental: true,
})

/**
 * Participants excluded from a round, by `reason`: the report's reason up to
 * its first colon (`offline`, `replaced`, `stalled`, `send-failed`,
 * `straggler`, `rejected`), so the label has a handful of values.
 *
 * @since 0.4.0
 * @category metrics
 */
export const exclusions = Metric.counter("fedguard_server_exclusions_total", {
  description: "participants excluded from a round, by reason",
  incremental: true,
})

/**
 * Bytes of admitted client updates (the sum of the rounds' `bytesIn`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const bytesIn = Metric.counter("fedguard_server_update_bytes_in_total", {
  description: "bytes of admitted client updates (rounds' bytesIn)",
  incremental: true,
})

/**
 * Bytes of global models sent to participants (the sum of the rounds'
 * `bytesOut`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const bytesOut = Metric.counter("fedguard_server_model_bytes_out_total", {
  description: "bytes of global models sent to participants (rounds' bytesOut)",
  incremental: true,
})

/**
 * Updates `UpdateAdmission` refused.
 *
 * @since 0.4.0
 * @category metrics
 */
export const updatesRejected = Metric.counter("fedguard_server_updates_rejected_total", {
  description: "client updates refused by admission",
  incremental: true,
})

/**
 * The global model's test accuracy after the last completed round (0 to 1).
 *
 * @since 0.4.0
 * @category metrics
 */
export const testAccuracy = Metric.gauge("fedguard_server_test_accuracy", {
  description: "test accuracy of the global model after the last completed round (0 to 1)",
})

/**
 * Wall time of each completed round, in milliseconds.
 *
 * @since 0.4.0
 * @category metrics
 */
export const roundDuration = Metric.histogram("fedguard_server_round_duration_millis", {
  description: "wall time of each completed round (ms)",
  boundaries: Metric.boundariesFromIterable([100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 120_000]),
})

/**
 * Diagnostics messages from clients, by `outcome`: `accepted`, `rejected`
 * (malformed) or `refused` (`--accept-diagnostics false`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const diagnosticsMessages = Metric.counter("fedguard_server_diagnostics_messages_total", {
  description: "diagnostics messages from clients, by outcome (accepted, rejected, refused)",
  incremental: true,
})

/**
 * Diagnostics reports the server did not keep: beyond the per-client bounds
 * (count or bytes), or older than the one it holds for their collector.
 *
 * @since 0.4.0
 * @category metrics
 */
export const diagnosticsDropped = Metric.counter("fedguard_server_diagnostics_reports_dropped_total", {
  description: "diagnostics reports not kept (per-client bounds, or older than the one held)",
  incremental: true,
})

/**
 * The label of an exclusion reason: its text up to the first colon
 * (`"rejected: non-finite weights"` → `"rejected"`).
 *
 * @since 0.4.0
 * @category metrics
 */
export const reasonLabel = (reason: string): string => {
  const colon = reason.indexOf(":")
  return (colon === -1 ? reason : reason.slice(0, colon)).trim() || "unknown"
}

const record = (event: ServerEvent.ServerEvent): Effect.Effect<void> => {
  switch (event._tag) {
    case "RoundCompleted":
      return Effect.all(
        [
          Metric.update(roundsCompleted, 1),
          Metric.update(bytesIn, event.bytesIn),
          Metric.update(bytesOut, event.bytesOut),
          Metric.update(testAccuracy, event.testAccuracy),
          Metric.update(roundDuration, event.durationMs),
        ],
        { discard: true },
      )
    case "ClientExcluded":
      return Metric.update(Metric.withAttributes(exclusions, { reason: reasonLabel(event.reason) }), 1)
    case "UpdateRejected":
      return Metric.update(updatesRejected, 1)
    default:
      return Effect.void
  }
}

// Every family is set to 0 at start, so a scrape shows it before its first event.
const initial = Effect.all(
  [
    Metric.update(roundsCompleted, 0),
    Metric.update(bytesIn, 0),
    Metric.update(bytesOut, 0),
    Metric.update(updatesRejected, 0),
    Metric.update(Metric.withAttributes(diagnosticsMessages, { outcome: "accepted" }), 0),
    Metric.update(diagnosticsDropped, 0),
  ],
  { discard: true },
)

/**
 * Records the metrics from the `ServerEvents` for the Layer's lifetime
 * (subscribed when the Layer is built, so no event published after it is
 * missed).
 *
 * @since 0.4.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, ServerEvents> = Layer.effectDiscard(
  Effect.gen(function* () {
    yield* initial
    const events = yield* (yield* ServerEvents).subscribe
    yield* Effect.forkScoped(Stream.runForEach(events, record))
  }),
)
