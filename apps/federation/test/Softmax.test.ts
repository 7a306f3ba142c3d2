import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Softmax from "../src/Softmax.ts"
import { lcg, synthetic } from "./fixtures.ts"
import { compareGradient, crossEntropy, type ReferenceLoss, sampleCoordinates } from "./gradientCheck.ts"

// Dense, obviously-correct float64 softmax regression over the documented layout.
const reference: ReferenceLoss = (params, data, indices) => {
  let total = 0
  for (const index of indices) {
    const logits: Array<number> = []
    for (let c = 0; c < 10; c++) {
      let z = params[Dataset.pixels * 10 + c]!
      for (let j = 0; j < Dataset.pixels; j++) z += data.images[index * Dataset.pixels + j]! * params[j * 10 + c]!
      logits.push(z)
    }
    total += crossEntropy(logits, data.labels[index]!)
  }
  return total / indices.length
}

const randomParams = (seed: number): Float32Array => {
  const next = lcg(seed)
  return Float32Array.from({ length: Softmax.paramCount }, () => (next() - 0.5) * 0.2)
}

describe("Softmax", () => {
  it.effect("has 784 x 10 weights and 10 biases, initialised to zero", () =>
    Effect.sync(() => {
      const model = Softmax.make()
      assert.strictEqual(model.paramCount, 7850)
      assert.isTrue(model.init(123).every((v) => v === 0))
    }),
  )

  it.effect("computes the mean cross-entropy of the reference implementation", () =>
    Effect.sync(() => {
      const data = synthetic(6)
      const params = randomParams(1)
      const { loss } = Softmax.make().lossAndGradient(params, data, [0, 3, 5])
      assert.closeTo(loss, reference(Float64Array.from(params), data, [0, 3, 5]), 1e-9)
    }),
  )

  it.effect("matches float64 central differences on weights of lit pixels, blank pixels and biases", () =>
    Effect.sync(() => {
      const data = synthetic(4)
      const params = randomParams(2)
      const batch = [0, 1, 3]
      const { grad } = Softmax.make().lossAndGradient(params, data, batch)
      const coordinates = [
        ...sampleCoordinates(Softmax.paramCount - 10, 60, lcg(3)),
        ...Array.from({ length: 10 }, (_, c) => Softmax.paramCount - 10 + c),
      ]
      assert.deepStrictEqual(compareGradient(reference, params, grad, data, batch, coordinates), [])
      assert.isTrue(
        coordinates.some((i) => Math.abs(grad[i]!) > 1e-3),
        "the check covers coordinates with a real gradient",
      )
    }),
  )

  it.effect("flags a gradient that is wrong in a single coordinate (the check can fail)", () =>
    Effect.sync(() => {
      const data = synthetic(4)
      const params = randomParams(2)
      const { grad } = Softmax.make().lossAndGradient(params, data, [0, 1])
      const bias = Softmax.paramCount - 1
      grad[bias] = grad[bias]! * 1.01 + 1e-4
      const mismatches = compareGradient(reference, params, grad, data, [0, 1], [bias, 0, 1])
      assert.deepStrictEqual(
        mismatches.map((m) => m.coordinate),
        [bias],
      )
    }),
  )

  it.effect("writes into the caller's gradient buffer, overwriting what was there", () =>
    Effect.sync(() => {
      const data = synthetic(3)
      const model = Softmax.make()
      const params = randomParams(4)
      const fresh = model.lossAndGradient(params, data, [1, 2]).grad
      const buffer = new Float32Array(model.paramCount).fill(99)
      const { grad } = model.lossAndGradient(params, data, [1, 2], buffer)
      assert.strictEqual(grad, buffer)
      assert.deepStrictEqual(grad, fresh)
    }),
  )

  it.effect("predicts the class with the largest score and counts accuracy from it", () =>
    Effect.sync(() => {
      const data = synthetic(20)
      const model = Softmax.make()
      const params = new Float32Array(model.paramCount)
      params[Dataset.pixels * 10 + 7] = 1 // bias towards 7
      assert.isTrue(model.predict(params, data).every((p) => p === 7))
      const evaluation = model.evaluate(params, data)
      assert.strictEqual(evaluation.accuracy, 2 / 20)
      assert.strictEqual(evaluation.count, 20)
      assert.deepStrictEqual(model.evaluate(params, data, []), { accuracy: 0, loss: 0, count: 0 })
    }),
  )
})
