import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import * as MemoryReadings from "../src/MemoryReadings.ts"
import { GiB, reading } from "./support.ts"

describe("MemoryReadings", () => {
  it.effect("reads this process: positive figures in bytes, and heap used under V8's heap size limit", () =>
    Effect.gen(function* () {
      const readings = yield* MemoryReadings.MemoryReadings
      const { heapUsed, heapTotal, external, arrayBuffers, rss, heapSizeLimit } = yield* readings.read
      for (const figure of [heapUsed, heapTotal, external, rss, heapSizeLimit]) assert.isAbove(figure, 0)
      assert.isAtLeast(arrayBuffers, 0)
      assert.isAtMost(arrayBuffers, external)
      assert.isBelow(heapUsed, heapSizeLimit)
      assert.isAbove(rss, heapUsed)
    }).pipe(Effect.provide(MemoryReadings.layer)),
  )

  it.effect("layerFromRef reads whatever the test last set, and nothing else", () =>
    Effect.gen(function* () {
      const memory = yield* Ref.make(reading())
      const readings = yield* MemoryReadings.MemoryReadings.pipe(Effect.provide(MemoryReadings.layerFromRef(memory)))
      assert.deepStrictEqual(yield* readings.read, reading())
      yield* Ref.set(memory, reading({ rss: 3 * GiB }))
      assert.strictEqual((yield* readings.read).rss, 3 * GiB)
    }),
  )
})
