import { assert, describe, it } from "@effect/vitest"
import { TransportError } from "@fedguard/transport"
import { Cause, Clock, Duration, Effect, Exit, Fiber, Metric, Random, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import * as Retry from "../src/Retry.ts"
import * as RetryMetrics from "../src/RetryMetrics.ts"
import * as RetryPolicy from "../src/RetryPolicy.ts"
import { Busy, eventLog, isolatedMetrics, operation, peer, rejected, timeoutOf } from "./fixtures.ts"

const exact = RetryPolicy.make({ jitter: "none" })

/** The first `n` delays a policy's schedule chooses, in milliseconds. */
const delaysOf = (policy: RetryPolicy.RetryPolicy, n: number) =>
  Effect.gen(function* () {
    const step = yield* Schedule.toStep(Retry.delays(policy))
    const out: Array<number> = []
    for (let i = 0; i < n; i++) {
      const [, delay] = yield* step(0, undefined)
      out.push(Duration.toMillis(delay))
    }
    return out
  })

/** The delays for `samples` different seeds. */
const sampled = (policy: RetryPolicy.RetryPolicy, n: number, samples = 200) =>
  Effect.forEach(
    Array.from({ length: samples }, (_, seed) => seed),
    (seed) => delaysOf(policy, n).pipe(Random.withSeed(seed)),
  )

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(Exit.isFailure(exit))
  if (Exit.isSuccess(exit)) throw new Error("expected a failure")
  const error = Cause.findErrorOption(exit.cause)
  if (error._tag === "None") throw new Error(`expected a typed failure, got ${Cause.pretty(exit.cause)}`)
  return error.value
}

describe("Retry.delays", () => {
  it.effect("without jitter waits exactly 1 s, 2 s, 4 s, 8 s", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* delaysOf(exact, 4), [1000, 2000, 4000, 8000])
    }),
  )

  it.effect("caps the delays at maxDelay: 1, 2, 4, 5, 5 s for a 5 s cap", () =>
    Effect.gen(function* () {
      const capped = RetryPolicy.make({ jitter: "none", maxDelay: "5 seconds" })
      assert.deepStrictEqual(yield* delaysOf(capped, 6), [1000, 2000, 4000, 5000, 5000, 5000])
    }),
  )

  it.effect("with additive jitter stays within 1–2 s, 2–3 s, 4–5 s, and does jitter", () =>
    Effect.gen(function* () {
      const runs = yield* sampled(RetryPolicy.defaults, 3)
      for (const [d1, d2, d3] of runs) {
        assert.isTrue(d1! >= 1000 && d1! <= 2000, `first delay ${d1}`)
        assert.isTrue(d2! >= 2000 && d2! <= 3000, `second delay ${d2}`)
        assert.isTrue(d3! >= 4000 && d3! <= 5000, `third delay ${d3}`)
      }
      // Not a constant offset: the samples spread over most of the second.
      const firsts = runs.map((run) => run[0]!)
      assert.isTrue(Math.max(...firsts) - Math.min(...firsts) > 800)
    }),
  )

  it.effect("applies the cap after the jitter: no delay ever exceeds maxDelay", () =>
    Effect.gen(function* () {
      // 4 s + up to 1 s of jitter would reach 5 s; the cap is 4.5 s.
      const policy = RetryPolicy.make({ maxDelay: "4500 millis" })
      const runs = yield* sampled(policy, 5)
      const thirds = runs.map((run) => run[2]!)
      assert.isTrue(
        runs.every((run) => run.every((d) => d <= 4500)),
        "a delay exceeded maxDelay",
      )
      assert.isTrue(
        thirds.some((d) => d === 4500),
        "the cap never bit after jitter",
      )
      assert.isTrue(
        thirds.some((d) => d < 4500),
        "jitter never stayed below the cap",
      )
      assert.isTrue(runs.every((run) => run[3] === 4500 && run[4] === 4500))
    }),
  )

  it.effect("with full jitter stays within 0..min(cap, base * 2^(n-1))", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ jitter: "full", maxDelay: "5 seconds" })
      const bounds = [1000, 2000, 4000, 5000, 5000]
      const runs = yield* sampled(policy, 5)
      for (const run of runs) {
        for (const [i, d] of run.entries()) assert.isTrue(d >= 0 && d <= bounds[i]!, `delay ${i + 1} = ${d}`)
      }
      // Spread over the whole range, not pinned to the bound.
      const firsts = runs.map((run) => run[0]!)
      assert.isTrue(Math.min(...firsts) < 100 && Math.max(...firsts) > 900)
    }),
  )

  it.effect("with decorrelated jitter stays within base..min(cap, 3 * previous)", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ jitter: "decorrelated", maxDelay: "10 seconds" })
      const runs = yield* sampled(policy, 8)
      for (const run of runs) {
        let previous = 1000
        for (const d of run) {
          assert.isTrue(d >= 1000 && d <= Math.min(10_000, previous * 3), `delay ${d} after ${previous}`)
          previous = d
        }
      }
      assert.isTrue(runs.some((run) => run.includes(10_000)))
    }),
  )

  it.effect("repeats the same jittered delays for the same seed, and others for another seed", () =>
    Effect.gen(function* () {
      const a = yield* delaysOf(RetryPolicy.defaults, 5).pipe(Random.withSeed("fedguard"))
      const b = yield* delaysOf(RetryPolicy.defaults, 5).pipe(Random.withSeed("fedguard"))
      const c = yield* delaysOf(RetryPolicy.defaults, 5).pipe(Random.withSeed("another"))
      assert.deepStrictEqual(a, b)
      assert.notDeepEqual(a, c)
    }),
  )
})

describe("Retry.retry", () => {
  it.effect("makes exactly 4 attempts for 3 retries, none before its delay, then returns the last error", () =>
    Effect.gen(function* () {
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.exit(Retry.retry(op.run, exact)))
      yield* Effect.yieldNow
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      for (const [delay, attemptsAfter] of [
        [1000, 2],
        [2000, 3],
        [4000, 4],
      ] as const) {
        yield* TestClock.adjust(delay - 1)
        assert.strictEqual(yield* Ref.get(op.attempts), attemptsAfter - 1, `attempt ${attemptsAfter} came early`)
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Ref.get(op.attempts), attemptsAfter, `attempt ${attemptsAfter} did not come`)
      }
      const error = failureOf(yield* Fiber.join(fiber))
      assert.instanceOf(error, TransportError.SendTimeout)
      assert.strictEqual(error.timeoutMs, 4, "not the last attempt's error")
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* Ref.get(op.attempts), 4)
    }),
  )

  it.effect("returns the value once a retry succeeds, without retrying further", () =>
    Effect.gen(function* () {
      const op = yield* operation((n) => (n < 3 ? timeoutOf(n) : undefined))
      const fiber = yield* Effect.forkChild(Retry.retry(op.run, exact))
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual(yield* Fiber.join(fiber), "done")
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* Ref.get(op.attempts), 3)
    }),
  )

  it.effect("returns a final error at once: one attempt, and the clock never moves", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(() => rejected)
      const error = yield* Effect.flip(Retry.retry(op.run, exact, { onEvent }))
      assert.instanceOf(error, TransportError.Rejected)
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      assert.strictEqual(yield* Clock.currentTimeMillis, 0)
      assert.deepStrictEqual(yield* Ref.get(log), [])
    }),
  )

  it.effect("stops at a final error that follows retryable ones, and reports no give-up", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation((n) => (n === 1 ? timeoutOf(n) : rejected))
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(op.run, exact, { onEvent })))
      yield* TestClock.adjust("1 hour")
      assert.instanceOf(yield* Fiber.join(fiber), TransportError.Rejected)
      assert.strictEqual(yield* Ref.get(op.attempts), 2)
      assert.deepStrictEqual(
        (yield* Ref.get(log)).map((e) => e._tag),
        ["RetryScheduled"],
      )
    }),
  )

  it.effect("never retries with maxRetries 0, and reports the give-up", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(timeoutOf)
      const error = yield* Effect.flip(Retry.retry(op.run, RetryPolicy.make({ maxRetries: 0 }), { onEvent }))
      assert.instanceOf(error, TransportError.SendTimeout)
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      const events = yield* Ref.get(log)
      assert.strictEqual(events.length, 1)
      assert.strictEqual(events[0]!._tag, "RetryGaveUp")
    }),
  )

  it.effect("uses a custom classifier: retries what it accepts, not what the default would", () =>
    Effect.gen(function* () {
      const isRetryable = (error: TransportError.TransportError) => error._tag === "Rejected"
      const retriedRejection = yield* operation(() => rejected)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(retriedRejection.run, exact, { isRetryable })))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* Ref.get(retriedRejection.attempts), 4)

      const timeout = yield* operation(timeoutOf)
      yield* Effect.flip(Retry.retry(timeout.run, exact, { isRetryable }))
      assert.strictEqual(yield* Ref.get(timeout.attempts), 1)
    }),
  )

  it.effect("waits the error's retryAfter hint when it is longer than the computed delay", () =>
    Effect.gen(function* () {
      const isRetryable = () => true
      const op = yield* operation(() => new Busy({ retryAfter: 7000 }))
      const fiber = yield* Effect.forkChild(Effect.exit(Retry.retry(op.run, exact, { isRetryable })))
      yield* TestClock.adjust(6999)
      assert.strictEqual(yield* Ref.get(op.attempts), 1, "retried before the hint elapsed")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Ref.get(op.attempts), 2)
      yield* Fiber.interrupt(fiber)
    }),
  )

  it.effect("keeps the computed delay when the hint is shorter, and the cap when it is longer", () =>
    Effect.gen(function* () {
      const isRetryable = () => true
      const short = yield* operation(() => new Busy({ retryAfter: "200 millis" }))
      const shortFiber = yield* Effect.forkChild(Effect.exit(Retry.retry(short.run, exact, { isRetryable })))
      yield* TestClock.adjust(999)
      assert.strictEqual(yield* Ref.get(short.attempts), 1, "a short hint shortened the backoff")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* Ref.get(short.attempts), 2)
      yield* Fiber.interrupt(shortFiber)

      const capped = RetryPolicy.make({ jitter: "none", maxDelay: "10 seconds" })
      const long = yield* operation(() => new Busy({ retryAfter: "1 minute" }))
      const longFiber = yield* Effect.forkChild(Effect.exit(Retry.retry(long.run, capped, { isRetryable })))
      yield* TestClock.adjust(10_000)
      assert.strictEqual(yield* Ref.get(long.attempts), 2, "the hint overrode maxDelay")
      yield* Fiber.interrupt(longFiber)
    }),
  )

  it.effect("gives up when the next delay would exceed the remaining budget", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      // Delays 1 s, 2 s (3 s spent), then 4 s would end at 7 s > 5 s.
      const policy = RetryPolicy.make({ jitter: "none", maxRetries: 10, budget: "5 seconds" })
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(op.run, policy, { onEvent })))
      yield* TestClock.adjust("3 seconds")
      assert.strictEqual((yield* Fiber.join(fiber)).timeoutMs, 3)
      assert.strictEqual(yield* Ref.get(op.attempts), 3)
      const gaveUp = (yield* Ref.get(log)).at(-1)
      assert.strictEqual(gaveUp?._tag, "RetryGaveUp")
      assert.strictEqual(gaveUp?._tag === "RetryGaveUp" ? gaveUp.reason : undefined, "budget-exhausted")
    }),
  )

  it.effect("still retries when the next delay ends exactly at the budget", () =>
    Effect.gen(function* () {
      const policy = RetryPolicy.make({ jitter: "none", maxRetries: 10, budget: "7 seconds" })
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(op.run, policy)))
      yield* TestClock.adjust("1 hour")
      assert.strictEqual((yield* Fiber.join(fiber)).timeoutMs, 4)
    }),
  )

  it.effect("counts the budget from the first attempt, including time spent in attempts", () =>
    Effect.gen(function* () {
      // Each attempt takes 1 s: attempts fail at 1, 3 and 6 s (after 1 s and 2 s
      // delays). At 6 s the next 4 s delay would end at 10 s > 9 s; counted from
      // the first failure instead (5 + 4 = 9) it would still fit.
      const policy = RetryPolicy.make({ jitter: "none", maxRetries: 10, budget: "9 seconds" })
      const op = yield* operation(timeoutOf)
      const slow = Effect.andThen(Effect.sleep("1 second"), op.run)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(slow, policy)))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      assert.strictEqual(yield* Ref.get(op.attempts), 3)
    }),
  )

  it.effect("makes no attempt after an interrupt during a backoff sleep", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Retry.retry(op.run, exact, { onEvent }))
      yield* TestClock.adjust(1500) // second attempt at 1 s, now sleeping 2 s
      assert.strictEqual(yield* Ref.get(op.attempts), 2)
      yield* Fiber.interrupt(fiber)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(yield* Ref.get(op.attempts), 2)
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause))
      assert.isFalse((yield* Ref.get(log)).some((e) => e._tag === "RetryGaveUp"))
    }),
  )

  it.effect("publishes one RetryScheduled per retry and one RetryGaveUp, and updates the metrics", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(op.run, exact, { peer, onEvent })))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      const events = yield* Ref.get(log)
      const scheduled = events.filter((e) => e._tag === "RetryScheduled")
      assert.deepStrictEqual(
        scheduled.map((e) => [e.attempt, e.delayMs, e.errorTag, e.peer]),
        [
          [1, 1000, "SendTimeout", peer],
          [2, 2000, "SendTimeout", peer],
          [3, 4000, "SendTimeout", peer],
        ],
      )
      const gaveUp = events.filter((e) => e._tag === "RetryGaveUp")
      assert.deepStrictEqual(
        gaveUp.map((e) => [e.attempts, e.errorTag, e.reason, e.peer]),
        [[4, "SendTimeout", "retries-exhausted", peer]],
      )
      assert.strictEqual(events.at(-1)?._tag, "RetryGaveUp")

      assert.strictEqual((yield* Metric.value(RetryMetrics.attempts)).count, 4)
      const delays = yield* Metric.value(RetryMetrics.retryDelay)
      assert.strictEqual(delays.count, 3)
      assert.strictEqual(delays.sum, 7000)
      const giveUps = Metric.withAttributes(RetryMetrics.giveUps, { reason: "retries-exhausted" })
      assert.strictEqual((yield* Metric.value(giveUps)).count, 1)
    }).pipe(isolatedMetrics),
  )

  it.effect("publishes nothing and counts one attempt when the first attempt succeeds", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(() => undefined)
      assert.strictEqual(yield* Retry.retry(op.run, exact, { onEvent }), "done")
      assert.deepStrictEqual(yield* Ref.get(log), [])
      assert.strictEqual((yield* Metric.value(RetryMetrics.attempts)).count, 1)
      assert.strictEqual((yield* Metric.value(RetryMetrics.retryDelay)).count, 0)
      const giveUps = Metric.withAttributes(RetryMetrics.giveUps, { reason: "retries-exhausted" })
      assert.strictEqual((yield* Metric.value(giveUps)).count, 0)
    }).pipe(isolatedMetrics),
  )

  it.effect("jitters the real waits: additive delays of a retried call stay within their bounds", () =>
    Effect.gen(function* () {
      const { log, onEvent } = yield* eventLog
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.flip(Retry.retry(op.run, RetryPolicy.defaults, { onEvent })))
      yield* TestClock.adjust("1 hour")
      yield* Fiber.join(fiber)
      const delays = (yield* Ref.get(log)).flatMap((e) => (e._tag === "RetryScheduled" ? [e.delayMs] : []))
      assert.strictEqual(delays.length, 3)
      ;[1000, 2000, 4000].forEach((low, i) => {
        assert.isTrue(delays[i]! >= low && delays[i]! <= low + 1000, `delay ${i + 1} = ${delays[i]}`)
      })
    }).pipe(Random.withSeed("jitter")),
  )

  it.effect("works in pipeable form and as a plain Schedule for Effect.retry", () =>
    Effect.gen(function* () {
      const piped = yield* operation(timeoutOf)
      const pipedFiber = yield* Effect.forkChild(Effect.flip(piped.run.pipe(Retry.retry(exact))))
      const scheduled = yield* operation(timeoutOf)
      const scheduleFiber = yield* Effect.forkChild(Effect.flip(Effect.retry(scheduled.run, Retry.schedule(exact))))
      yield* TestClock.adjust("1 hour")
      assert.strictEqual((yield* Fiber.join(pipedFiber)).timeoutMs, 4)
      assert.strictEqual((yield* Fiber.join(scheduleFiber)).timeoutMs, 4)
    }),
  )
})

describe("Retry.retryAfterOf", () => {
  it("reads millis, duration strings and Durations, and ignores the rest", () => {
    assert.strictEqual(Duration.toMillis(Retry.retryAfterOf({ retryAfter: 1500 })!), 1500)
    assert.strictEqual(Duration.toMillis(Retry.retryAfterOf({ retryAfter: "2 seconds" })!), 2000)
    assert.strictEqual(Duration.toMillis(Retry.retryAfterOf({ retryAfter: Duration.seconds(3) })!), 3000)
    assert.isUndefined(Retry.retryAfterOf({ retryAfter: "soon" }))
    assert.isUndefined(Retry.retryAfterOf({ retryAfter: -5 }))
    assert.isUndefined(Retry.retryAfterOf(timeoutOf(1)))
    assert.isUndefined(Retry.retryAfterOf(undefined))
  })
})
