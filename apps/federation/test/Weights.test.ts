import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Softmax from "../src/Softmax.ts"
import * as Weights from "../src/Weights.ts"

describe("Weights", () => {
  it.effect("round-trips every float32 bit pattern, including -0, infinities, NaN and subnormals", () =>
    Effect.gen(function* () {
      const weights = Float32Array.of(0, -0, 1.5, -3.25e-8, 3.4e38, Infinity, -Infinity, Number.NaN, 1e-45, 0.1)
      const copy = weights.slice()
      const decoded = yield* Weights.decode(Weights.encode(weights).slice(), weights.length)
      assert.deepStrictEqual(new Uint32Array(decoded.buffer), new Uint32Array(copy.buffer))
    }),
  )

  it.effect("writes little-endian IEEE-754 bytes, 4 per weight, no header", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(Array.from(Weights.encode(Float32Array.of(1, -2))), [0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0])
      const decoded = yield* Weights.decode(Uint8Array.of(0, 0, 0x80, 0x3f))
      assert.deepStrictEqual(Array.from(decoded), [1])
    }),
  )

  it.effect("encodes and decodes without copying when the bytes are aligned", () =>
    Effect.gen(function* () {
      const weights = new Float32Array(8)
      const bytes = Weights.encode(weights)
      assert.strictEqual(bytes.buffer, weights.buffer)
      const decoded = yield* Weights.decode(bytes)
      assert.strictEqual(decoded.buffer, weights.buffer)
    }),
  )

  it.effect("decodes bytes at an odd offset inside a larger frame (by copying)", () =>
    Effect.gen(function* () {
      const frame = new Uint8Array(1 + 8)
      frame.set(Weights.encode(Float32Array.of(0.25, 7)), 1)
      const decoded = yield* Weights.decode(frame.subarray(1), 2)
      assert.deepStrictEqual(Array.from(decoded), [0.25, 7])
    }),
  )

  it.effect("rejects a byte length that is not a multiple of 4", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Weights.decode(new Uint8Array(7)))
      assert.strictEqual(error._tag, "MisalignedWeights")
      assert.include(error.message, "7 bytes")
    }),
  )

  it.effect("rejects weights for another model size, and accepts the right size", () =>
    Effect.gen(function* () {
      const bytes = Weights.encode(new Float32Array(Softmax.paramCount - 1))
      const error = yield* Effect.flip(Weights.decode(bytes, Softmax.paramCount))
      assert.strictEqual(error._tag, "WeightCountMismatch")
      if (error._tag === "WeightCountMismatch") {
        assert.strictEqual(error.expected, 7850)
        assert.strictEqual(error.actual, 7849)
      }
      const ok = yield* Weights.decode(Weights.encode(new Float32Array(Softmax.paramCount)), Softmax.paramCount)
      assert.strictEqual(ok.length, 7850)
    }),
  )
})
