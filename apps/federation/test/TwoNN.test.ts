import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Training from "../src/Training.ts"
import * as TwoNN from "../src/TwoNN.ts"
import { lcg, mnist, sha256, synthetic } from "./fixtures.ts"
import { compareGradient, crossEntropy, type ReferenceLoss, sampleCoordinates } from "./gradientCheck.ts"

// Dense, obviously-correct float64 784-H-H-10 ReLU network over the documented layout.
const reference =
  (H: number): ReferenceLoss =>
  (p, data, indices) => {
    const w1 = 0
    const b1 = w1 + Dataset.pixels * H
    const w2 = b1 + H
    const b2 = w2 + H * H
    const w3 = b2 + H
    const b3 = w3 + H * 10
    let total = 0
    for (const index of indices) {
      const x = Array.from({ length: Dataset.pixels }, (_, j) => data.images[index * Dataset.pixels + j]!)
      const h1 = Array.from({ length: H }, (_, m) => {
        let a = p[b1 + m]!
        for (let j = 0; j < Dataset.pixels; j++) a += x[j]! * p[w1 + j * H + m]!
        return Math.max(0, a)
      })
      const h2 = Array.from({ length: H }, (_, m) => {
        let a = p[b2 + m]!
        for (let k = 0; k < H; k++) a += h1[k]! * p[w2 + k * H + m]!
        return Math.max(0, a)
      })
      const logits = Array.from({ length: 10 }, (_, c) => {
        let z = p[b3 + c]!
        for (let k = 0; k < H; k++) z += h2[k]! * p[w3 + k * 10 + c]!
        return z
      })
      total += crossEntropy(logits, data.labels[index]!)
    }
    return total / indices.length
  }

describe("TwoNN", () => {
  it.effect("has the paper's 199,210 parameters at width 200", () =>
    Effect.sync(() => {
      const model = TwoNN.make()
      assert.strictEqual(model.paramCount, 199210)
      assert.strictEqual(TwoNN.paramCount(), 199210)
      assert.strictEqual(model.init(1).length, 199210)
      assert.strictEqual(model.architecture, "784-200-200-10 ReLU")
    }),
  )

  it.effect("initialises deterministically per seed, with zero biases and bounded weights", () =>
    Effect.sync(() => {
      const model = TwoNN.make({ hidden: 16 })
      const a = model.init(5)
      assert.deepStrictEqual(model.init(5), a)
      assert.notDeepEqual(model.init(6), a)
      const b1 = Dataset.pixels * 16
      assert.isTrue(a.subarray(b1, b1 + 16).every((v) => v === 0))
      const limit = Math.sqrt(6 / Dataset.pixels)
      assert.isTrue(a.subarray(0, b1).every((v) => Math.abs(v) <= limit))
      assert.isTrue(a.subarray(0, b1).some((v) => Math.abs(v) > limit / 2))
    }),
  )

  it.effect("matches float64 central differences on every bias and hidden weight of a narrow network", () =>
    Effect.sync(() => {
      const H = 5
      const model = TwoNN.make({ hidden: H })
      const data = synthetic(3)
      const params = model.init(11)
      // Non-zero biases so the bias gradients are exercised away from the ReLU kinks.
      const next = lcg(12)
      for (let i = Dataset.pixels * H; i < params.length; i++) params[i] = params[i]! + (next() - 0.5) * 0.1
      const { grad } = model.lossAndGradient(params, data, [0, 1, 2])
      // Every parameter after W1, and 400 of W1's 3,920 (the reference is slow).
      const w1 = Dataset.pixels * H
      const coordinates = [
        ...sampleCoordinates(w1, 400, lcg(13)),
        ...Array.from({ length: model.paramCount - w1 }, (_, i) => w1 + i),
      ]
      assert.deepStrictEqual(compareGradient(reference(H), params, grad, data, [0, 1, 2], coordinates), [])
    }),
  )

  it.effect("matches float64 central differences on sampled parameters of the full 784-200-200-10 network", () =>
    Effect.sync(() => {
      const model = TwoNN.make()
      const data = synthetic(2)
      const params = model.init(3)
      const batch = [0, 1]
      const { loss, grad } = model.lossAndGradient(params, data, batch)
      assert.closeTo(loss, reference(200)(Float64Array.from(params), data, batch), 1e-9)
      // Sample each block: W1, b1, W2, b2, W3, b3.
      const next = lcg(4)
      const blocks = [
        [0, 156800],
        [156800, 157000],
        [157000, 197000],
        [197000, 197200],
        [197200, 199200],
        [199200, 199210],
      ] as const
      const coordinates = blocks.flatMap(([from, to]) => sampleCoordinates(to - from, 6, next).map((i) => from + i))
      assert.deepStrictEqual(compareGradient(reference(200), params, grad, data, batch, coordinates), [])
    }),
  )

  it.effect("flags a gradient that is wrong in a single hidden-layer coordinate (the check can fail)", () =>
    Effect.sync(() => {
      const H = 5
      const model = TwoNN.make({ hidden: H })
      const data = synthetic(2)
      const params = model.init(11)
      const { grad } = model.lossAndGradient(params, data, [0, 1])
      const w2 = Dataset.pixels * H + H
      const target = Array.from({ length: H * H }, (_, i) => w2 + i).find((i) => Math.abs(grad[i]!) > 1e-4)!
      grad[target] = -grad[target]!
      const mismatches = compareGradient(reference(H), params, grad, data, [0, 1], [target, target + 1])
      assert.deepStrictEqual(
        mismatches.map((m) => m.coordinate),
        [target],
      )
    }),
  )

  // Hashes computed by the 2NN's own kernel before it became the two-hidden-layer case of the
  // general perceptron (Mlp): "2nn" must keep its initial weights, gradients, training and
  // accuracy bit for bit, whatever the refactoring.
  it.effect("gives the same initial weights, gradient, seeded training run and accuracy as before Mlp existed", () =>
    Effect.gen(function* () {
      const { train, test } = yield* Dataset.split(yield* mnist, { seed: 2, trainSize: 1000, testSize: 500 })
      const model = TwoNN.make()
      assert.strictEqual(sha256(model.init(42)), "8808e0e04b3b396b641263003408dd6ceb65b5f594b9bbbdff681d41f021dc54")
      const { loss, grad } = model.lossAndGradient(model.init(3), train, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
      assert.strictEqual(sha256(grad), "eab6b4660e84373077a8716516df3e6979ed360a2ebbe0acfa6647ddf6c94a13")
      assert.strictEqual(loss, 2.6414056681518208)
      const trained = yield* Training.train(model, model.init(1), train, { seed: 1, learningRate: 0.1 })
      assert.strictEqual(sha256(trained.params), "ba144f42764f16afe8b6072fa64b6ed7e7cf5aeb0e88c7512422e93a7f14451a")
      assert.deepStrictEqual([trained.steps, trained.loss], [100, 1.0850567940013096])
      assert.strictEqual(model.evaluate(trained.params, test).accuracy, 0.846)
      const narrow = TwoNN.make({ hidden: 5 })
      const small = yield* Training.train(narrow, narrow.init(11), synthetic(40), { seed: 3, epochs: 2 })
      assert.strictEqual(sha256(small.params), "c9dffcc8af7bfbaacf99c5f0798306c37b651f68f0b83883c313b352dacb82b0")
    }),
  )
})
