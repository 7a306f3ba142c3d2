import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Mnist from "../src/Mnist.ts"
import { mnist } from "./fixtures.ts"

const writeDigits = (files: Record<number, string>): string => {
  const dir = mkdtempSync(join(tmpdir(), "fedguard-mnist-"))
  for (let d = 0; d < 10; d++) {
    writeFileSync(join(dir, `${d}.json`), files[d] ?? JSON.stringify({ data: new Array(784).fill(0.5) }))
  }
  return dir
}

describe("Mnist", () => {
  it.effect("loads all 10,000 digits of the mnist package as 784 pixels each", () =>
    Effect.gen(function* () {
      const data = yield* mnist
      assert.strictEqual(data.count, Mnist.sampleCount)
      assert.strictEqual(data.images.length, 10000 * 784)
      assert.strictEqual(data.labels.length, 10000)
    }),
  )

  it.effect("keeps pixel intensities in [0, 1] and uses the whole range", () =>
    Effect.gen(function* () {
      const data = yield* mnist
      let min = Infinity
      let max = -Infinity
      let zeros = 0
      for (const v of data.images) {
        if (v < min) min = v
        if (v > max) max = v
        if (v === 0) zeros++
      }
      assert.strictEqual(min, 0)
      assert.strictEqual(max, 1)
      // Mostly background, but not blank: real digits.
      assert.isTrue(zeros / data.images.length > 0.7 && zeros / data.images.length < 0.9)
    }),
  )

  it.effect("labels every digit 0-9 with roughly a tenth of the samples each, and nothing else", () =>
    Effect.gen(function* () {
      const data = yield* mnist
      const counts = Dataset.classCounts(data)
      assert.deepStrictEqual(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978])
      for (const label of data.labels) assert.isTrue(label <= 9)
    }),
  )

  it.effect("reads identical bytes on every load (no random sampling)", () =>
    Effect.gen(function* () {
      const a = yield* mnist
      const b = yield* Mnist.load.pipe(Effect.provide(NodeServices.layer))
      assert.isTrue(Buffer.from(b.labels.buffer).equals(Buffer.from(a.labels.buffer)))
      assert.isTrue(Buffer.from(b.images.buffer).equals(Buffer.from(a.images.buffer)))
    }),
  )

  it.effect("fails with MnistLoadError naming the missing file, not a defect", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "fedguard-mnist-empty-"))
      const error = yield* Effect.flip(Mnist.loadFrom(dir).pipe(Effect.provide(NodeServices.layer)))
      assert.strictEqual(error._tag, "MnistLoadError")
      assert.include(error.file, dir)
      assert.include(error.message, ".json")
    }),
  )

  it.effect("rejects a file whose data is not a whole number of images", () =>
    Effect.gen(function* () {
      const dir = writeDigits({ 3: JSON.stringify({ data: [0, 0.5, 1] }) })
      const error = yield* Effect.flip(Mnist.loadFrom(dir).pipe(Effect.provide(NodeServices.layer)))
      assert.strictEqual(error.file, join(dir, "3.json"))
    }),
  )

  it.effect("rejects pixel values outside [0, 1] and says where", () =>
    Effect.gen(function* () {
      const pixels = new Array(784).fill(0)
      pixels[17] = 255
      const dir = writeDigits({ 9: JSON.stringify({ data: pixels }) })
      const error = yield* Effect.flip(Mnist.loadFrom(dir).pipe(Effect.provide(NodeServices.layer)))
      assert.strictEqual(error.file, join(dir, "9.json"))
      assert.include(error.reason, "position 17")
    }),
  )

  it.effect("loads a well-formed directory with one image per digit, labelled by file", () =>
    Effect.gen(function* () {
      const data = yield* Mnist.loadFrom(writeDigits({})).pipe(Effect.provide(NodeServices.layer))
      assert.strictEqual(data.count, 10)
      assert.deepStrictEqual(Array.from(data.labels), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }),
  )
})
