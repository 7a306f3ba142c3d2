import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Metric, Option, Ref, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as MemoryCleanupMetrics from "../src/MemoryCleanupMetrics.ts"
import { count, freshMetrics, GiB, MiB, reading, settle, setup } from "./support.ts"

describe("MemoryCleanup", () => {
  describe("round cadence", () => {
    it.effect("runs after rounds 5 and 10 with everyRounds 5, never after the rounds between", () =>
      Effect.gen(function* () {
        const { cleanup, events, gcCalls } = yield* setup({ everyRounds: 5 })
        const ran: Array<number> = []
        for (let round = 0; round <= 12; round++) {
          const result = yield* cleanup.roundCompleted(round)
          if (Option.isSome(result)) {
            assert.strictEqual(result.value.round, round)
            ran.push(round)
          }
        }
        yield* settle
        assert.deepStrictEqual(ran, [5, 10])
        assert.deepStrictEqual(
          events.map((event) => [event.trigger, event.round]),
          [
            ["rounds", 5],
            ["rounds", 10],
          ],
        )
        assert.strictEqual(yield* Ref.get(gcCalls), 2)
        assert.strictEqual(yield* count(MemoryCleanupMetrics.runs, { trigger: "rounds" }), 2)
      }).pipe(freshMetrics),
    )

    it.effect("never runs on completed rounds with everyRounds 0, the default", () =>
      Effect.gen(function* () {
        for (const options of [{}, { everyRounds: 0 }]) {
          const { cleanup, events, gcCalls } = yield* setup(options)
          for (let round = 1; round <= 100; round++) {
            assert.isTrue(Option.isNone(yield* cleanup.roundCompleted(round)))
          }
          yield* settle
          assert.deepStrictEqual(events, [])
          assert.strictEqual(yield* Ref.get(gcCalls), 0)
        }
        assert.strictEqual(yield* count(MemoryCleanupMetrics.runs, { trigger: "rounds" }), 0)
      }).pipe(freshMetrics),
    )
  })

  describe("threshold trigger", () => {
    it.effect("runs at the first check that finds heap used above thresholdBytes, not before", () =>
      Effect.gen(function* () {
        const { memory, events } = yield* setup({ thresholdBytes: 500 * MiB, checkInterval: "10 seconds" })
        yield* TestClock.adjust("15 seconds") // check at 10 s: 100 MiB, below
        assert.deepStrictEqual(events, [])
        yield* Ref.set(memory, reading({ heapUsed: 600 * MiB }))
        yield* TestClock.adjust(5_000 - 1)
        assert.deepStrictEqual(events, [])
        yield* TestClock.adjust(1) // check at 20 s
        yield* settle
        assert.strictEqual(events.length, 1)
        const [event] = events
        assert.strictEqual(event?.trigger, "threshold")
        assert.deepStrictEqual(event?.crossed, ["heapUsed"])
        assert.strictEqual(event?.at, 20_000)
        assert.strictEqual(event?.round, undefined)
      }).pipe(freshMetrics),
    )

    it.effect("does not run again within minInterval while still above, and runs again once it has passed", () =>
      Effect.gen(function* () {
        const { memory, events } = yield* setup({
          thresholdRss: 1 * GiB,
          checkInterval: "10 seconds",
          minInterval: "60 seconds",
        })
        yield* Ref.set(memory, reading({ rss: 2 * GiB })) // stays above: the GC frees nothing
        yield* TestClock.adjust("10 seconds")
        yield* settle
        assert.deepStrictEqual(
          events.map((event) => event.at),
          [10_000],
        )
        // Checks at 20, 30, 40, 50 and 60 s are within 60 s of the run at 10 s.
        yield* TestClock.adjust(60_000 - 1)
        yield* settle
        assert.strictEqual(events.length, 1)
        assert.strictEqual((yield* Metric.value(MemoryCleanupMetrics.thresholdRunsSuppressed)).count, 5)
        yield* TestClock.adjust(1) // check at 70 s: 60 s after the last run
        yield* settle
        assert.deepStrictEqual(
          events.map((event) => event.at),
          [10_000, 70_000],
        )
        assert.strictEqual(yield* count(MemoryCleanupMetrics.runs, { trigger: "threshold" }), 2)
      }).pipe(freshMetrics),
    )

    it.effect("crosses on RSS and on a fraction of the heap limit; below every threshold it never runs", () =>
      Effect.gen(function* () {
        const { memory, events } = yield* setup({
          thresholdRss: 1 * GiB,
          heapFraction: 0.5,
          checkInterval: "10 seconds",
          minInterval: 0,
        })
        // 400 MiB RSS and 100 MiB of a 4 GiB heap limit: below both, for ten minutes.
        yield* TestClock.adjust("10 minutes")
        assert.deepStrictEqual(events, [])
        yield* Ref.set(memory, reading({ rss: 1 * GiB + 1 }))
        yield* TestClock.adjust("10 seconds")
        yield* Ref.set(memory, reading({ heapUsed: 2 * GiB + 1, rss: 3 * GiB }))
        yield* TestClock.adjust("10 seconds")
        yield* Ref.set(memory, reading({ heapUsed: 2 * GiB }))
        yield* TestClock.adjust("10 seconds")
        yield* settle
        assert.deepStrictEqual(
          events.map((event) => event.crossed),
          [["rss"], ["rss", "heapFraction"]],
        )
      }).pipe(freshMetrics),
    )

    it.effect("counts a round's run as the last run: a crossing right after it waits for minInterval", () =>
      Effect.gen(function* () {
        const { cleanup, memory, events } = yield* setup({
          everyRounds: 1,
          thresholdRss: 1 * GiB,
          checkInterval: "10 seconds",
          minInterval: "60 seconds",
        })
        yield* TestClock.adjust("5 seconds")
        yield* cleanup.roundCompleted(1) // at 5 s
        yield* Ref.set(memory, reading({ rss: 2 * GiB }))
        yield* TestClock.adjust(65_000 - 5_000 - 1) // checks at 10 … 60 s
        yield* settle
        assert.deepStrictEqual(
          events.map((event) => event.trigger),
          ["rounds"],
        )
        yield* TestClock.adjust(5_001) // check at 70 s: 65 s after the round's run
        yield* settle
        assert.deepStrictEqual(
          events.map((event) => [event.trigger, event.at]),
          [
            ["rounds", 5_000],
            ["threshold", 70_000],
          ],
        )
      }).pipe(freshMetrics),
    )

    it.effect("runs no checker without a threshold, and stops checking when its Scope closes", () =>
      Effect.gen(function* () {
        const idle = yield* setup({ checkInterval: "1 second" })
        yield* TestClock.adjust("10 minutes")
        assert.strictEqual(yield* Ref.get(idle.reads), 0)

        const scope = yield* Scope.make()
        const { memory, reads, gcCalls } = yield* setup({ thresholdRss: 1 * GiB, minInterval: 0 }).pipe(
          Scope.provide(scope),
        )
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(yield* Ref.get(reads), 1)
        yield* Scope.close(scope, Exit.void)
        yield* Ref.set(memory, reading({ rss: 2 * GiB }))
        yield* TestClock.adjust("10 minutes")
        assert.strictEqual(yield* Ref.get(reads), 1)
        assert.strictEqual(yield* Ref.get(gcCalls), 0)
      }).pipe(freshMetrics),
    )
  })

  describe("steps", () => {
    it.effect(
      "a failing and a dying release hook do not fail the caller; later steps still run and failures count",
      () =>
        Effect.gen(function* () {
          const { cleanup, gcCalls } = yield* setup({ everyRounds: 1 })
          const called: Array<string> = []
          const hook = (name: string) => Effect.sync(() => void called.push(name))
          yield* cleanup.register("cache", hook("cache"))
          yield* cleanup.register("broken", Effect.andThen(hook("broken"), Effect.fail(new Error("disk full"))))
          yield* cleanup.register(
            "buggy",
            Effect.andThen(hook("buggy"), Effect.die(new Error("undefined is not a function"))),
          )
          yield* cleanup.register("previous-round", hook("previous-round"))

          const result = yield* Effect.exit(cleanup.roundCompleted(1))
          assert.isTrue(Exit.isSuccess(result))
          const event = Option.getOrThrow(Exit.isSuccess(result) ? result.value : Option.none())
          assert.deepStrictEqual(called, ["cache", "broken", "buggy", "previous-round"])
          assert.strictEqual(yield* Ref.get(gcCalls), 1)
          assert.deepStrictEqual(
            event.steps.map(({ name, status, reason }) => ({ name, status, reason })),
            [
              { name: "cache", status: "ok", reason: undefined },
              { name: "broken", status: "failed", reason: "failed: disk full" },
              { name: "buggy", status: "failed", reason: "died: undefined is not a function" },
              { name: "previous-round", status: "ok", reason: undefined },
              { name: "gc", status: "ok", reason: undefined },
            ],
          )
          assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "broken" }), 1)
          assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "buggy" }), 1)
          assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "cache" }), 0)
          assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "gc" }), 0)
          // The manual run fails no more than the round's did.
          assert.strictEqual((yield* cleanup.run).steps.filter((step) => step.status === "failed").length, 2)
        }).pipe(freshMetrics),
    )

    it.effect("interrupts a release hook that outlives stepTimeout, reports it failed, and goes on", () =>
      Effect.gen(function* () {
        const { cleanup, gcCalls } = yield* setup({ stepTimeout: "5 seconds" })
        yield* cleanup.register("stuck", Effect.never)
        yield* cleanup.register("quick", Effect.sleep("2 seconds"))
        const run = yield* Effect.forkChild(cleanup.run)
        yield* TestClock.adjust(5_000 - 1)
        assert.isUndefined(run.pollUnsafe())
        yield* TestClock.adjust(1 + 2_000)
        const event = yield* Fiber.join(run)
        assert.deepStrictEqual(
          event.steps.map(({ name, status, durationMs, reason }) => ({ name, status, durationMs, reason })),
          [
            { name: "stuck", status: "failed", durationMs: 5_000, reason: "timed out after 5000 ms" },
            { name: "quick", status: "ok", durationMs: 2_000, reason: undefined },
            { name: "gc", status: "ok", durationMs: 0, reason: undefined },
          ],
        )
        assert.strictEqual(event.durationMs, 7_000)
        assert.strictEqual(yield* Ref.get(gcCalls), 1)
        assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "stuck" }), 1)
      }).pipe(freshMetrics),
    )

    it.effect("runs hooks in registration order and never calls one whose Scope closed or that was removed", () =>
      Effect.gen(function* () {
        const { cleanup } = yield* setup()
        const called: Array<string> = []
        const hook = (name: string) => Effect.sync(() => void called.push(name))
        yield* cleanup.register("model-cache", hook("model-cache"))
        const roundScope = yield* Scope.make()
        yield* cleanup.register("round-3-buffers", hook("round-3-buffers")).pipe(Scope.provide(roundScope))
        const remove = yield* cleanup.register("removed-early", hook("removed-early"))
        yield* cleanup.register("optimizer-state", hook("optimizer-state"))

        yield* cleanup.run
        assert.deepStrictEqual(called, ["model-cache", "round-3-buffers", "removed-early", "optimizer-state"])

        called.length = 0
        yield* Scope.close(roundScope, Exit.void)
        yield* remove
        const event = yield* cleanup.run
        assert.deepStrictEqual(called, ["model-cache", "optimizer-state"])
        assert.deepStrictEqual(
          event.steps.map((step) => step.name),
          ["model-cache", "optimizer-state", "gc"],
        )
      }).pipe(freshMetrics),
    )

    it.effect("reports the GC step skipped with the reason when no GC is available, never failed", () =>
      Effect.gen(function* () {
        const { cleanup } = yield* setup(
          {},
          { unavailable: "globalThis.gc is not exposed; start Node with --expose-gc" },
        )
        const event = yield* cleanup.run
        assert.deepStrictEqual(event.steps, [
          {
            name: "gc",
            status: "skipped",
            durationMs: 0,
            reason: "globalThis.gc is not exposed; start Node with --expose-gc",
          },
        ])
        assert.strictEqual(yield* count(MemoryCleanupMetrics.stepFailures, { step: "gc" }), 0)
      }).pipe(freshMetrics),
    )

    it.effect("skips the GC without calling it when gc is false", () =>
      Effect.gen(function* () {
        const { cleanup, gcCalls } = yield* setup({ gc: false })
        const event = yield* cleanup.run
        assert.deepStrictEqual(
          event.steps.map(({ name, status, reason }) => ({ name, status, reason })),
          [{ name: "gc", status: "skipped", reason: "disabled by configuration (gc: false)" }],
        )
        assert.strictEqual(yield* Ref.get(gcCalls), 0)
      }).pipe(freshMetrics),
    )
  })

  describe("figures", () => {
    it.effect("reports the scripted figures before and after the run, and the bytes freed as metrics", () =>
      Effect.gen(function* () {
        const afterGc = reading({ heapUsed: 60 * MiB, external: 15 * MiB, arrayBuffers: 10 * MiB, rss: 300 * MiB })
        const { cleanup, events } = yield* setup({}, { afterGc })
        const event = yield* cleanup.run
        yield* settle
        assert.deepStrictEqual(events, [event])
        assert.strictEqual(event.trigger, "manual")
        assert.deepStrictEqual(event.before, {
          heapUsed: 100 * MiB,
          external: 40 * MiB,
          arrayBuffers: 30 * MiB,
          rss: 400 * MiB,
        })
        assert.deepStrictEqual(event.after, {
          heapUsed: 60 * MiB,
          external: 15 * MiB,
          arrayBuffers: 10 * MiB,
          rss: 300 * MiB,
        })
        assert.deepStrictEqual(event.freed, {
          heapUsed: 40 * MiB,
          external: 25 * MiB,
          arrayBuffers: 20 * MiB,
          rss: 100 * MiB,
        })
        const gauge = (figure: string) =>
          Metric.value(Metric.withAttributes(MemoryCleanupMetrics.bytesFreed, { figure })).pipe(
            Effect.map((state) => state.value),
          )
        assert.strictEqual(yield* gauge("heapUsed"), 40 * MiB)
        assert.strictEqual(yield* gauge("rss"), 100 * MiB)
        const histogram = yield* Metric.value(
          Metric.withAttributes(MemoryCleanupMetrics.bytesFreedPerRun, { figure: "heapUsed" }),
        )
        assert.strictEqual(histogram.count, 1)
        assert.strictEqual(histogram.sum, 40 * MiB)
        assert.strictEqual(yield* count(MemoryCleanupMetrics.runs, { trigger: "manual" }), 1)
      }).pipe(freshMetrics),
    )
  })

  describe("runs", () => {
    it.effect("never runs two pipelines at once: a round's run waits for a manual run in progress", () =>
      Effect.gen(function* () {
        const { cleanup } = yield* setup({ everyRounds: 1 })
        let active = 0
        let most = 0
        yield* cleanup.register(
          "slow",
          Effect.acquireUseRelease(
            Effect.sync(() => {
              active++
              most = Math.max(most, active)
            }),
            () => Effect.sleep("1 second"),
            () => Effect.sync(() => active--),
          ),
        )
        const manual = yield* Effect.forkChild(cleanup.run)
        yield* settle
        const round = yield* Effect.forkChild(cleanup.roundCompleted(1))
        yield* TestClock.adjust("2 seconds")
        const first = yield* Fiber.join(manual)
        const second = Option.getOrThrow(yield* Fiber.join(round))
        assert.strictEqual(most, 1)
        assert.deepStrictEqual([first.at, second.at], [0, 1_000])
      }).pipe(freshMetrics),
    )

    it.effect("ends its event stream when its Scope closes", () =>
      Effect.gen(function* () {
        const scope = yield* Scope.make()
        const { cleanup } = yield* setup().pipe(Scope.provide(scope))
        const collected = yield* Effect.forkChild(Stream.runCollect(cleanup.events))
        yield* settle
        yield* cleanup.run
        yield* settle
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(
          (yield* Fiber.join(collected)).map((event) => event.trigger),
          ["manual"],
        )
      }).pipe(freshMetrics),
    )
  })
})
