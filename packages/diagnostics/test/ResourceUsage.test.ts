import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as ResourceUsage from "../src/ResourceUsage.ts"
import { freshMetrics, recordingSink, settle } from "./support.ts"

const reading = (overrides: Partial<ResourceUsage.ResourceReading> = {}): ResourceUsage.ResourceReading => ({
  cpuUserMicros: 0,
  cpuSystemMicros: 0,
  rssBytes: 400e6,
  heapUsedBytes: 100e6,
  heapTotalBytes: 160e6,
  externalBytes: 40e6,
  eventLoopDelay: undefined,
  ...overrides,
})

// Readings scripted by the test: `next` is what the next read returns; `reads` counts the reads.
const scripted = () => {
  const state = { next: reading(), reads: 0 }
  const layer = Layer.succeed(
    ResourceUsage.ResourceReadings,
    ResourceUsage.ResourceReadings.of({
      read: Effect.sync(() => {
        state.reads++
        return state.next
      }),
    }),
  )
  return { state, layer }
}

describe("ResourceUsage", () => {
  it.effect(
    "reports CPU time since the previous run as microseconds and percent of one core, memory and loop delay",
    () =>
      Effect.gen(function* () {
        const { state, layer } = scripted()
        const collector = yield* ResourceUsage.make().pipe(Effect.provide(layer))
        yield* TestClock.adjust("10 seconds")
        state.next = reading({ cpuUserMicros: 4_000_000, cpuSystemMicros: 1_000_000 })
        const first = Option.getOrThrow(yield* collector.collect) as unknown as ResourceUsage.ResourceUsageData
        assert.deepStrictEqual(first.cpu, { userMicros: 4_000_000, systemMicros: 1_000_000, percent: 50 })
        assert.deepStrictEqual(first.memory, { rss: 400e6, heapUsed: 100e6, heapTotal: 160e6, external: 40e6 })
        assert.strictEqual(first.eventLoopDelay, undefined, "no sample: no delay reported")

        yield* TestClock.adjust("5 seconds")
        const delay = { minMs: 1, meanMs: 2, p50Ms: 2, p99Ms: 30, maxMs: 40 }
        state.next = reading({ cpuUserMicros: 9_000_000, cpuSystemMicros: 1_000_000, eventLoopDelay: delay })
        const second = Option.getOrThrow(yield* collector.collect) as unknown as ResourceUsage.ResourceUsageData
        assert.deepStrictEqual(second.cpu, { userMicros: 5_000_000, systemMicros: 0, percent: 100 })
        assert.deepStrictEqual(second.eventLoopDelay, delay)
      }),
  )

  it.effect("reads this process: CPU time advances, RSS and heap are positive, event-loop delay is sampled", () =>
    Effect.gen(function* () {
      const readings = yield* ResourceUsage.ResourceReadings
      // Real time passes here (the monitor samples on a real timer): a bounded real wait, not a TestClock one.
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 60)))
      const r = yield* readings.read
      assert.isAbove(r.cpuUserMicros + r.cpuSystemMicros, 0)
      assert.isAbove(r.rssBytes, r.heapUsedBytes)
      assert.isAbove(r.heapUsedBytes, 0)
      assert.isDefined(r.eventLoopDelay)
      assert.isAtLeast(r.eventLoopDelay?.maxMs ?? -1, r.eventLoopDelay?.minMs ?? 0)
    }).pipe(Effect.provide(ResourceUsage.layerReadings({ resolutionMs: 10 }))),
  )

  it.effect("runs at its interval (10 s by default), not before and not between", () =>
    Effect.gen(function* () {
      const { state, layer } = scripted()
      const collector = yield* ResourceUsage.make().pipe(Effect.provide(layer))
      assert.strictEqual(state.reads, 1, "the baseline reading")
      const sink = recordingSink()
      yield* Diagnostics.make({ batchSize: 1 }, [collector]).pipe(Effect.provide(sink.layer))
      yield* TestClock.adjust(10_000 - 1)
      assert.strictEqual(state.reads, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(state.reads, 2)
      yield* TestClock.adjust(10_000 - 1)
      assert.strictEqual(state.reads, 2)
      yield* TestClock.adjust(1)
      yield* settle
      assert.strictEqual(state.reads, 3)
      assert.deepStrictEqual(
        sink.batches.map((batch) => [batch[0]?.collector, batch[0]?.at]),
        [
          ["resource-usage", 10_000],
          ["resource-usage", 20_000],
        ],
      )
    }).pipe(freshMetrics),
  )
})
