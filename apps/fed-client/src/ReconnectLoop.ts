/**
 * The client's reconnect loop: run a session, and when it ends for a
 * retryable reason, wait the delay `@fedguard/retry`'s policy chooses
 * (exponential, with jitter, capped) and run a new one on a new connection.
 *
 * Jitter is the point: after a server restart every client loses it at the
 * same instant, and equal delays would bring them all back in lock-step.
 *
 * @since 0.2.0
 */
import { Retry, RetryPolicy } from "@fedguard/retry"
import { Clock, Duration, Effect, Exit, Pull, Result, Schedule, Scope } from "effect"
import { ReconnectGaveUp } from "./ClientError.ts"
import * as ClientEvent from "./ClientEvent.ts"
import { ClientEvents } from "./ClientEvents.ts"
import type { ClientSettings } from "./ClientSettings.ts"
import * as SessionEnd from "./SessionEnd.ts"

/**
 * The settings the loop uses.
 *
 * @since 0.2.0
 * @category models
 */
export type ReconnectSettings = Pick<
  ClientSettings,
  "id" | "server" | "maxRetries" | "retryBaseDelay" | "retryMaxDelay"
>

/**
 * The reconnect policy of a client: `maxRetries` retries, a delay of
 * `retryBaseDelay * 2^(n-1)` before retry n plus an additive jitter of up to
 * `retryBaseDelay`, never more than `retryMaxDelay`. With the defaults (1 s,
 * 30 s) the delays are 1–2 s, 2–3 s, 4–5 s…
 *
 * @since 0.2.0
 * @category policies
 */
export const policyOf = (settings: Omit<ReconnectSettings, "id" | "server">): RetryPolicy.RetryPolicy =>
  RetryPolicy.make({
    maxRetries: settings.maxRetries,
    baseDelay: settings.retryBaseDelay,
    maxDelay: Math.max(settings.retryMaxDelay, settings.retryBaseDelay),
    jitter: "additive",
    additiveJitter: settings.retryBaseDelay,
  })

/**
 * Runs `session` until it completes, reconnecting after retryable failures:
 *
 * - each failure waits the policy's next delay, published first as
 *   `ServerLost { reconnectInMs }` (or `ConnectFailed` when the connection
 *   could not be opened);
 * - a session that was welcomed and then failed starts the count and the
 *   delays again from the first;
 * - `maxRetries + 1` sessions in a row that fail without a welcome publish
 *   `GaveUp` and fail with `ReconnectGaveUp`;
 * - a final error (`Refused`, `Undecodable`) publishes `Refused` or
 *   `ServerMisbehaved` and fails at once, without reconnecting.
 *
 * Each session runs in a Scope of its own (its connection, heartbeats and
 * trainer). A failed session's Scope is closed in the background, in the
 * caller's Scope: a stalled server never answers the transport's graceful
 * close (TCP waits up to its close timeout, 2 s, for the peer's end), and that
 * wait must delay neither `ServerLost` nor the reconnect.
 *
 * @since 0.2.0
 * @category loops
 */
export const run = Effect.fnUntraced(function* <R>(
  settings: ReconnectSettings,
  session: Effect.Effect<SessionEnd.Completed, SessionEnd.SessionError, R>,
): Effect.fn.Return<
  SessionEnd.Completed,
  SessionEnd.FinalError | ReconnectGaveUp,
  Exclude<R, Scope.Scope> | ClientEvents | Scope.Scope
> {
  const events = yield* ClientEvents
  const loopScope = yield* Effect.scope
  const policy = policyOf(settings)
  const delays = Retry.delays(policy)

  const once = Effect.gen(function* () {
    const scope = yield* Scope.fork(loopScope)
    const exit = yield* Effect.exit(Scope.provide(session, scope))
    if (Exit.isSuccess(exit)) yield* Scope.close(scope, exit)
    else yield* Effect.forkIn(Scope.close(scope, exit), loopScope)
    return yield* exit
  })

  // The failures since the last welcome, and the policy's delays for them: a fresh
  // schedule step restarts at `baseDelay`.
  let streak = { failures: 0, next: yield* Schedule.toStep(delays) }
  while (true) {
    const outcome = yield* Effect.result(once)
    if (Result.isSuccess(outcome)) return outcome.success
    const error = outcome.failure
    if (!SessionEnd.isRetryable(error)) {
      yield* events.publish(
        error._tag === "Refused"
          ? new ClientEvent.Refused({ id: settings.id, reason: error.reason })
          : new ClientEvent.ServerMisbehaved({ id: settings.id, reason: error.message }),
      )
      return yield* Effect.fail(error)
    }
    if (SessionEnd.wasWelcomed(error)) streak = { failures: 0, next: yield* Schedule.toStep(delays) }
    streak = { ...streak, failures: streak.failures + 1 }
    if (streak.failures > policy.maxRetries) {
      yield* events.publish(
        new ClientEvent.GaveUp({ id: settings.id, attempts: streak.failures, reason: error.message }),
      )
      return yield* new ReconnectGaveUp({ server: settings.server, attempts: streak.failures, reason: error.message })
    }
    const now = yield* Clock.currentTimeMillis
    // `delays` never ends; should it, the last delay repeats.
    const [, delay] = yield* Pull.catchDone(streak.next(now, error), (last) => Effect.succeed([last, last] as const))
    const reconnectInMs = Duration.toMillis(delay)
    yield* events.publish(
      error._tag === "ServerUnreachable"
        ? new ClientEvent.ConnectFailed({ server: settings.server, reason: error.reason, reconnectInMs })
        : new ClientEvent.ServerLost({ id: settings.id, reason: error.message, reconnectInMs }),
    )
    yield* Effect.sleep(delay)
  }
})
