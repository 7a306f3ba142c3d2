import { PeerId, TransportError } from "@fedguard/transport"
import { Effect, Metric, Ref, Schema } from "effect"
import type { RetryEvent } from "../src/RetryEvent.ts"

export const peer = PeerId.make("client-1")

/** A retryable timeout whose `timeoutMs` says which attempt produced it. */
export const timeoutOf = (attempt: number) => new TransportError.SendTimeout({ peer, timeoutMs: attempt })

/** A final error. */
export const rejected = new TransportError.Rejected({ peer, reason: "unknown client" })

/** A busy signal carrying the server's retryAfter hint (millis or a duration string). */
export class Busy extends Schema.TaggedError<Busy>()("Busy", {
  retryAfter: Schema.Union([Schema.Number, Schema.String]),
}) {}

/**
 * An operation that counts its attempts and lets `outcome(n)` decide attempt
 * n: an error to fail with, or `undefined` to succeed with `"done"`.
 */
export const operation = <E>(outcome: (attempt: number) => E | undefined) =>
  Effect.map(Ref.make(0), (attempts) => ({
    attempts,
    run: Effect.flatMap(
      Ref.updateAndGet(attempts, (n) => n + 1),
      (n) => {
        const error = outcome(n)
        return error === undefined ? Effect.succeed("done" as const) : Effect.fail(error)
      },
    ),
  }))

/** Collects the events handed to `onEvent`. */
export const eventLog = Effect.map(Ref.make<ReadonlyArray<RetryEvent>>([]), (log) => ({
  log,
  onEvent: (event: RetryEvent) => Ref.update(log, (events) => [...events, event]),
}))

/** Runs a test against a fresh metric registry, so counts start at zero. */
export const isolatedMetrics = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.provideService(effect, Metric.MetricRegistry, new Map())
