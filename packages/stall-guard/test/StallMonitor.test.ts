import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Metric, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import type { StallCleared, StallDetected } from "../src/StallEvent.ts"
import * as StallMetrics from "../src/StallMetrics.ts"
import * as StallMonitor from "../src/StallMonitor.ts"
import { record, settle, tags } from "./support.ts"

// A connection that records its closes; the monitor needs nothing else of it.
const fakeConnection = () => {
  const closes: Array<string | undefined> = []
  return { remote: "client-1", close: (reason?: string) => Effect.sync(() => void closes.push(reason)), closes }
}

const setup = (options: StallMonitor.Options = {}) =>
  Effect.gen(function* () {
    const connection = fakeConnection()
    const monitor = yield* StallMonitor.make(connection, options)
    const events = yield* record(monitor.subscribe)
    // A guarded send that runs until the returned effect completes it.
    const pendingSend = Effect.gen(function* () {
      const done = yield* Deferred.make<void>()
      yield* Effect.forkScoped(monitor.guard(Deferred.await(done)))
      yield* settle
      return Deferred.succeed(done, undefined).pipe(Effect.andThen(settle))
    })
    return { connection, monitor, events, pendingSend }
  })

describe("StallMonitor", () => {
  it.effect("reports StallDetected at the third stalled check (55 s for a send pending since 0), not before", () =>
    Effect.gen(function* () {
      const { monitor, events, pendingSend, connection } = yield* setup()
      yield* pendingSend
      yield* TestClock.adjust(55_000 - 1)
      assert.deepStrictEqual(tags(events), [])
      assert.isFalse(yield* monitor.stalled)
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(tags(events), ["StallDetected"])
      const detected = events[0] as StallDetected
      assert.deepStrictEqual(
        { ...detected },
        {
          _tag: "StallDetected",
          remote: "client-1",
          at: 55_000,
          oldestPendingMs: 55_000,
          checks: 3,
          pending: 1,
          closed: false,
        },
      )
      assert.isTrue(yield* monitor.stalled)
      // Reported once, however long it stays stalled; warn-only does not close.
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(tags(events), ["StallDetected"])
      assert.deepStrictEqual(connection.closes, [])
    }),
  )

  it.effect("stalled, healthy, stalled is no detection: a healthy check resets the count", () =>
    Effect.gen(function* () {
      const { events, pendingSend } = yield* setup()
      const first = yield* pendingSend
      yield* TestClock.adjust(50_000) // stalled checks at 45 s and 50 s
      yield* first
      yield* TestClock.adjust(5_000) // 55 s: nothing pending, healthy
      yield* pendingSend // pending since 55 s: stalled checks at 100 s, 105 s, 110 s
      yield* TestClock.adjust(110_000 - 55_000 - 1)
      assert.deepStrictEqual(tags(events), [])
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(tags(events), ["StallDetected"])
      assert.strictEqual((events[0] as StallDetected).at, 110_000)
    }),
  )

  it.effect("never reports sends that each complete within the stall timeout, however many follow each other", () =>
    Effect.gen(function* () {
      const { events, pendingSend } = yield* setup()
      for (let i = 0; i < 20; i++) {
        const done = yield* pendingSend
        yield* TestClock.adjust(44_000)
        yield* done
      }
      assert.deepStrictEqual(tags(events), [])
    }),
  )

  it.effect("reports StallCleared at the first healthy check after a detection, with how long it was stalled", () =>
    Effect.gen(function* () {
      const { monitor, events, pendingSend } = yield* setup()
      const done = yield* pendingSend
      yield* TestClock.adjust(57_000)
      yield* done
      yield* TestClock.adjust(3_000 - 1)
      assert.deepStrictEqual(tags(events), ["StallDetected"])
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(tags(events), ["StallDetected", "StallCleared"])
      assert.deepStrictEqual(
        { ...(events[1] as StallCleared) },
        {
          _tag: "StallCleared",
          remote: "client-1",
          at: 60_000,
          stalledForMs: 5_000,
        },
      )
      assert.isFalse(yield* monitor.stalled)
    }),
  )

  it.effect("closes the connection on detection when closeStalled is on, and stops checking", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(StallMetrics.stalledConnectionsClosed)).count
      const { events, pendingSend, connection } = yield* setup({ closeStalled: true })
      const done = yield* pendingSend
      yield* TestClock.adjust(55_000 - 1)
      assert.deepStrictEqual(connection.closes, [])
      yield* TestClock.adjust(1)
      yield* settle
      assert.strictEqual(connection.closes.length, 1)
      assert.include(connection.closes[0], "stalled")
      assert.isTrue((events[0] as StallDetected).closed)
      assert.strictEqual((yield* Metric.value(StallMetrics.stalledConnectionsClosed)).count, before + 1)
      // The connection is gone: no StallCleared when its sends end, no second close.
      yield* done
      yield* TestClock.adjust("1 minute")
      assert.deepStrictEqual(tags(events), ["StallDetected"])
      assert.strictEqual(connection.closes.length, 1)
    }),
  )

  it.effect("honours stallTimeout, checkInterval and consecutiveChecks: 1 s checks, 10 s stall, 2 checks → 11 s", () =>
    Effect.gen(function* () {
      const { events, pendingSend } = yield* setup({
        stallTimeout: "10 seconds",
        checkInterval: "1 second",
        consecutiveChecks: 2,
      })
      yield* pendingSend
      yield* TestClock.adjust(11_000 - 1)
      assert.deepStrictEqual(tags(events), [])
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(tags(events), ["StallDetected"])
    }),
  )

  it.effect("tracks a guarded send until it ends, however it ends, and passes its result through", () =>
    Effect.gen(function* () {
      const { monitor } = yield* setup()
      assert.strictEqual(yield* monitor.guard(Effect.succeed(42)), 42)
      const failed = yield* Effect.exit(monitor.guard(Effect.fail("refused")))
      assert.deepStrictEqual(failed, Exit.fail("refused"))
      const fiber = yield* Effect.forkChild(monitor.guard(Effect.never))
      yield* settle
      assert.strictEqual(yield* monitor.pending, 1)
      yield* Fiber.interrupt(fiber)
      assert.strictEqual(yield* monitor.pending, 0)
    }),
  )

  it.effect("ends its event stream and stops checking when its Scope closes", () =>
    Effect.gen(function* () {
      const scope = yield* Scope.make()
      const monitor = yield* StallMonitor.make(fakeConnection()).pipe(Scope.provide(scope))
      const collected = yield* Effect.forkChild(Stream.runCollect(monitor.events))
      yield* settle
      yield* Effect.forkChild(monitor.guard(Effect.never))
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(yield* Fiber.join(collected), [])
    }),
  )
})
