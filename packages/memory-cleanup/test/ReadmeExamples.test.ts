import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { train } from "../examples/round-cleanup.ts"
import * as GarbageCollector from "../src/GarbageCollector.ts"
import * as MemoryCleanup from "../src/MemoryCleanup.ts"
import * as MemoryReadings from "../src/MemoryReadings.ts"
import { reading } from "./support.ts"

// The example's options over a fixed reading (RSS far below 6 GiB) and a GC that does nothing.
const CleanupTest = MemoryCleanup.layerNoDeps({ everyRounds: 5, thresholdRss: 6 * 1024 ** 3 }).pipe(
  Layer.provide([
    Layer.succeed(MemoryReadings.MemoryReadings, MemoryReadings.MemoryReadings.of({ read: Effect.succeed(reading()) })),
    Layer.succeed(GarbageCollector.GarbageCollector, GarbageCollector.GarbageCollector.of({ collect: Effect.void })),
  ]),
)

describe("README example (examples/round-cleanup.ts)", () => {
  it.effect("keeps rounds 10 to 12 of 12: the run after round 10 released 1 to 9, and nothing ran after 11 or 12", () =>
    Effect.gen(function* () {
      const kept = yield* Effect.scoped(train(12, (round) => new Float32Array(16).fill(round)))
      assert.deepStrictEqual(kept, [10, 11, 12])
    }).pipe(Effect.provide(CleanupTest)),
  )
})
