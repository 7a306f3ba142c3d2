/**
 * Fix B of NVIDIA FLARE's PR #4206: a byte stream whose acknowledged offset
 * stops advancing fails, even though the connection is alive.
 *
 * FLARE's 2.7 line saw large streams frozen for minutes while heartbeats
 * still flowed: liveness said the peer was alive, and nothing looked at
 * whether the receiver was still consuming. The watchdog looks at exactly
 * that: the cumulative ACK offset that `Connection.sendBytes` reports through
 * `onProgress`. It replaces the former `SendBytesOptions.idleTimeout` of
 * `@fedguard/transport`, so that there is one mechanism for ACK idleness,
 * with an event, a metric and a typed error.
 *
 * @since 0.1.0
 */
import { Clock, type Duration, Effect, Metric, Schema } from "effect"
import { checkIntervalMs, millis } from "./internal/clamp.ts"
import * as StallEvent from "./StallEvent.ts"
import * as StallGuardConfig from "./StallGuardConfig.ts"
import * as StallMetrics from "./StallMetrics.ts"

/**
 * The watched send was interrupted because its acknowledged offset stayed at
 * `offset` bytes for `sinceMs` milliseconds (at least the ack-progress
 * timeout). Callers that classify transport failures treat it like a stalled
 * send (the fed-server excludes the participant as `Stalled`); it is not a
 * `TransportError`, so a retry policy does not retry it by default.
 *
 * @since 0.1.0
 * @category errors
 */
export class AckStalled extends Schema.TaggedError<AckStalled>()("AckStalled", {
  offset: Schema.Number,
  sinceMs: Schema.Number,
}) {
  override get message(): string {
    return `the acknowledged offset stayed at ${this.offset} bytes for ${this.sinceMs} ms`
  }
}

/**
 * Options of `watch`:
 *
 * - `ackProgressTimeout` (default 60 s): how long the acknowledged offset
 *   may stay put.
 * - `checkInterval` (default 5 s): how often the offset is looked at,
 *   clamped to [10 ms, `ackProgressTimeout`].
 * - `onEvent`: receives the `StallEvent.AckStalled` event before the send
 *   fails (e.g. `PubSub.publish(events, _)`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly ackProgressTimeout?: Duration.Input | undefined
  readonly checkInterval?: Duration.Input | undefined
  readonly onEvent?: ((event: StallEvent.AckStalled) => Effect.Effect<void>) | undefined
}

/**
 * Runs `send` under the watchdog. `send` receives the `onProgress` callback
 * to hand to `connection.sendBytes(header, data, { onProgress })`; each call
 * with an offset above the last one is progress (an offset that does not
 * advance is not).
 *
 * A checker fiber wakes every `checkInterval` (a fixed grid from the start of
 * the send) and, when the offset has not advanced for `ackProgressTimeout`
 * (measured on the `Clock` from the start, or from the last advance),
 * interrupts the send and fails with `AckStalled`: detection comes between
 * the timeout and the timeout plus one interval after the last progress. A
 * send that completes or fails first stops the checker; so does
 * interruption. The watchdog itself allocates no timer per ACK: `onProgress`
 * only records the offset and the time, which is why it checks on a grid
 * rather than re-arming a deadline per ACK (thousands per second on a fast
 * link).
 *
 * On a stall it logs a warning, increments `StallMetrics.ackStalls`, and
 * calls `onEvent`.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import type { Connection } from "@fedguard/transport"
 * import { AckProgressWatchdog } from "@fedguard/stall-guard"
 *
 * declare const connection: Connection.Connection
 * const send = AckProgressWatchdog.watch(
 *   (onProgress) => connection.sendBytes({ tag: "model" }, Stream.make(new Uint8Array(1024)), { onProgress }),
 *   { ackProgressTimeout: "20 seconds" },
 * ) // Effect<TransferReceipt, TransportError | AckStalled>
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const watch = <A, E, R>(
  send: (onProgress: (ackedBytes: number) => Effect.Effect<void>) => Effect.Effect<A, E, R>,
  options: Options = {},
): Effect.Effect<A, E | AckStalled, R> =>
  Effect.gen(function* () {
    const timeoutMs = millis(options.ackProgressTimeout ?? StallGuardConfig.defaults.ackProgressTimeout)
    const intervalMs = checkIntervalMs(options.checkInterval ?? StallGuardConfig.defaults.checkInterval, timeoutMs)
    const clock = yield* Clock.Clock
    let offset = 0
    let progressAt = clock.currentTimeMillisUnsafe()

    const onProgress = (ackedBytes: number): Effect.Effect<void> =>
      Effect.sync(() => {
        if (ackedBytes <= offset) return
        offset = ackedBytes
        progressAt = clock.currentTimeMillisUnsafe()
      })

    const checker = Effect.gen(function* () {
      while (true) {
        yield* Effect.sleep(intervalMs)
        const now = clock.currentTimeMillisUnsafe()
        const sinceMs = now - progressAt
        if (sinceMs < timeoutMs) continue
        yield* Effect.logWarning(
          `byte stream stalled: acknowledged offset ${offset} has not advanced for ${sinceMs} ms (timeout ${timeoutMs} ms)`,
        )
        yield* Metric.update(StallMetrics.ackStalls, 1)
        if (options.onEvent !== undefined) {
          yield* options.onEvent(new StallEvent.AckStalled({ at: now, offset, sinceMs, timeoutMs }))
        }
        return yield* new AckStalled({ offset, sinceMs })
      }
    })

    return yield* Effect.raceFirst(send(onProgress), checker)
  })
