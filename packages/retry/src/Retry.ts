/**
 * Retrying an effect under a `RetryPolicy`: the policy becomes an Effect
 * `Schedule` (exponential backoff, jitter, cap, retry count, budget,
 * `retryAfter` hints, error classification) and `retry` runs it, publishing
 * events and updating metrics.
 *
 * @since 0.1.0
 */
import { type PeerId, TransportError } from "@fedguard/transport"
import { Clock, Duration, Effect, Metric, Option, Predicate, Random, Schedule } from "effect"
import { dual } from "effect/Function"
import * as Backoff from "./internal/backoff.ts"
import { type RetryEvent, RetryGaveUp, RetryScheduled } from "./RetryEvent.ts"
import * as RetryMetrics from "./RetryMetrics.ts"
import type { RetryPolicy } from "./RetryPolicy.ts"

/**
 * Decides whether an error deserves another attempt. Decide on the error's
 * tag, never on its message. The default is `TransportError.isRetryable`
 * (`SendTimeout`, `ConnectionClosed`, `PeerUnreachable`); anything else,
 * including errors the classifier does not know, fails at once.
 *
 * @since 0.1.0
 * @category models
 */
export type Classifier<E> = (error: E) => boolean

/**
 * Options of {@link retry} and {@link schedule}:
 *
 * - `peer`: stamped on the events, so a stream of many calls says who failed.
 * - `isRetryable`: the {@link Classifier}; default `TransportError.isRetryable`.
 * - `onEvent`: receives every `RetryScheduled` (before the delay starts) and
 *   the `RetryGaveUp` (before the error reaches the caller). Default: none.
 *
 * @since 0.1.0
 * @category models
 */
export interface RetryOptions<E> {
  readonly peer?: PeerId.PeerId | undefined
  readonly isRetryable?: Classifier<E> | undefined
  readonly onEvent?: ((event: RetryEvent) => Effect.Effect<void>) | undefined
}

/**
 * The delays of a policy alone, as an infinite `Schedule` whose output is the
 * delay it chose: `baseDelay * 2^(n-1)` for retry n, spread by the policy's
 * jitter mode (randomness from Effect's `Random`, so `Random.withSeed` makes
 * it reproducible), then capped at `maxDelay`. No retry limit, no budget, no
 * classification: use it for polling or reconnect loops; use {@link schedule}
 * or {@link retry} for retries.
 *
 * @example
 * ```ts
 * import { Retry, RetryPolicy } from "@fedguard/retry"
 * import { Effect } from "effect"
 *
 * // Poll, backing off 1 s, 2 s, 4 s… (at most 30 s) between polls.
 * const polling = Effect.repeat(pollRoundStatus, Retry.delays(RetryPolicy.make({ jitter: "full" })))
 * ```
 *
 * @since 0.1.0
 * @category schedules
 */
export const delays = (policy: RetryPolicy): Schedule.Schedule<Duration.Duration> => {
  const base = Duration.toMillis(policy.baseDelay)
  const cap = Duration.toMillis(policy.maxDelay)
  const spread = Duration.toMillis(policy.additiveJitter)
  // Schedule.exponential grows without bound; capping before the jitter keeps
  // the numbers finite and makes "full" jitter AWS's uniform(0, min(cap, exp)).
  const exponential = Schedule.exponential(policy.baseDelay).pipe(
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Math.min(cap, Duration.toMillis(duration)))),
  )
  const jittered = (f: (delay: number, u: number) => number) =>
    exponential.pipe(
      Schedule.modifyDelay(({ duration }) => Effect.map(Random.next, (u) => f(Duration.toMillis(duration), u))),
    )
  const chosen = (() => {
    switch (policy.jitter) {
      case "none":
        return exponential
      case "additive":
        return jittered((delay, u) => Backoff.additiveMillis(delay, spread, cap, u))
      case "full":
        return jittered((delay, u) => Backoff.fullMillis(delay, cap, u))
      case "decorrelated":
        // Each delay depends on the previous one: the state lives in the step,
        // so every run of the schedule starts again from baseDelay.
        return Schedule.fromStep(
          Effect.sync(() => {
            let previous = base
            return (_now: number, _input: unknown) =>
              Effect.map(Random.next, (u): [Duration.Duration, Duration.Duration] => {
                previous = Backoff.decorrelatedMillis(base, cap, previous, u)
                return [Duration.millis(previous), Duration.millis(previous)]
              })
          }),
        )
    }
  })()
  return Schedule.map(chosen, ({ duration }) => duration)
}

/**
 * The `retryAfter` hint an error carries, if any: a field `retryAfter` holding
 * a number of milliseconds, a `Duration`, or a duration string. Anything else
 * (absent, negative, unparsable) is no hint.
 *
 * @since 0.1.0
 * @category classification
 */
export const retryAfterOf = (error: unknown): Duration.Duration | undefined =>
  Predicate.hasProperty(error, "retryAfter")
    ? Option.getOrUndefined(
        Option.filter(Duration.fromInput(error.retryAfter as Duration.Input), (d) => !Duration.isNegative(d)),
      )
    : undefined

/**
 * The `_tag` of an error, for events and metrics; `"UnknownError"` for
 * untagged values.
 *
 * @since 0.1.0
 * @category classification
 */
export const errorTagOf = (error: unknown): string =>
  Predicate.hasProperty(error, "_tag") && Predicate.isString(error._tag) ? error._tag : "UnknownError"

const makeSchedule = <E>(
  policy: RetryPolicy,
  options: RetryOptions<E>,
  startedAt: number | undefined,
): Schedule.Schedule<Duration.Duration, E> => {
  const cap = Duration.toMillis(policy.maxDelay)
  const budget = policy.budget === undefined ? undefined : Duration.toMillis(policy.budget)
  const isRetryable: Classifier<E> = options.isRetryable ?? TransportError.isRetryable
  return delays(policy).pipe(
    Schedule.setInputType<E>(),
    // The hint raises the delay but the cap still holds: a peer asking for
    // more than maxDelay is retried at maxDelay rather than stalling the caller.
    Schedule.modifyDelay(({ duration, input }) => {
      const hint = retryAfterOf(input)
      return Effect.succeed(
        Backoff.honourHintMillis(
          Duration.toMillis(duration),
          hint === undefined ? undefined : Duration.toMillis(hint),
          cap,
        ),
      )
    }),
    Schedule.while(
      ({ input, attempt, now, start, duration }) =>
        isRetryable(input) &&
        attempt <= policy.maxRetries &&
        (budget === undefined || now - (startedAt ?? start) + Duration.toMillis(duration) <= budget),
    ),
    Schedule.tap(({ input, attempt, duration }) => {
      const delayMs = Duration.toMillis(duration)
      const event = new RetryScheduled({
        ...(options.peer === undefined ? {} : { peer: options.peer }),
        attempt,
        delayMs,
        errorTag: errorTagOf(input),
      })
      return Metric.update(RetryMetrics.retryDelay, delayMs).pipe(
        Effect.andThen(options.onEvent === undefined ? Effect.void : options.onEvent(event)),
      )
    }),
    Schedule.map(({ duration }) => duration),
  )
}

/**
 * The whole retry decision of a policy as a `Schedule` over the failures of
 * type `E`, for use with `Effect.retry` or `Stream.retry`: it continues while
 * the error is retryable and fewer than `maxRetries` retries happened and the
 * next delay fits in the budget; its delay honours the error's `retryAfter`
 * hint (`min(maxDelay, max(computed, hint))`). It publishes `RetryScheduled`
 * events but, unlike {@link retry}, cannot know when the caller gives up, so
 * it publishes no `RetryGaveUp`, and its budget counts from the first
 * *failure* rather than the first attempt.
 *
 * @since 0.1.0
 * @category schedules
 */
export const schedule = <E>(
  policy: RetryPolicy,
  options: RetryOptions<E> = {},
): Schedule.Schedule<Duration.Duration, E> => makeSchedule(policy, options, undefined)

const retryImpl = <A, E, R>(
  self: Effect.Effect<A, E, R>,
  policy: RetryPolicy,
  options: RetryOptions<E> = {},
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Clock.currentTimeMillis, (startedAt) => {
    const isRetryable: Classifier<E> = options.isRetryable ?? TransportError.isRetryable
    let attempts = 0
    const attempt = Effect.suspend(() => {
      attempts++
      return Effect.andThen(Metric.update(RetryMetrics.attempts, 1), self)
    })
    return attempt.pipe(
      Effect.retry(makeSchedule(policy, options, startedAt)),
      Effect.tapError((error) => {
        if (!isRetryable(error)) return Effect.void
        // A retryable error ends the loop for one of two reasons only: the
        // retries ran out, or the budget did.
        const reason = attempts > policy.maxRetries ? "retries-exhausted" : "budget-exhausted"
        const event = new RetryGaveUp({
          ...(options.peer === undefined ? {} : { peer: options.peer }),
          attempts,
          errorTag: errorTagOf(error),
          reason,
        })
        return Metric.update(Metric.withAttributes(RetryMetrics.giveUps, { reason }), 1).pipe(
          Effect.andThen(options.onEvent === undefined ? Effect.void : options.onEvent(event)),
        )
      }),
    )
  })

/**
 * Runs `self`, retrying its retryable failures under `policy`: at most
 * `maxRetries` retries (3 retries = 4 attempts), each after the policy's
 * delay; a final error (per the classifier) returns at once, untouched; when
 * retries or budget run out the last error is returned. The budget counts
 * from the start of the first attempt. Interrupting the caller interrupts the
 * attempt or the backoff sleep in progress: no attempt starts afterwards.
 *
 * Updates `RetryMetrics` and hands every `RetryEvent` to `options.onEvent`.
 * Works in data-first and pipeable form.
 *
 * @example
 * ```ts
 * import { Retry, RetryPolicy } from "@fedguard/retry"
 * import { Effect } from "effect"
 *
 * const policy = RetryPolicy.make({ maxRetries: 3 })
 * const delivered = upload.pipe(Retry.retry(policy, { peer, onEvent: Effect.logInfo }))
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const retry: {
  <E>(
    policy: RetryPolicy,
    options?: RetryOptions<NoInfer<E>>,
  ): <A, R>(self: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  <A, E, R>(
    self: Effect.Effect<A, E, R>,
    policy: RetryPolicy,
    options?: RetryOptions<NoInfer<E>>,
  ): Effect.Effect<A, E, R>
} = dual((args) => Effect.isEffect(args[0]), retryImpl)
