import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Mlp from "../src/Mlp.ts"
import * as Training from "../src/Training.ts"
import * as TwoNN from "../src/TwoNN.ts"
import { lcg, mnist, sha256, synthetic } from "./fixtures.ts"
import { compareGradient, crossEntropy, type ReferenceLoss, sampleCoordinates } from "./gradientCheck.ts"

// Dense, obviously-correct float64 784-H1-…-HL-10 ReLU network over the documented layout
// (per layer: W input-major, then b), with no sparsity shortcuts.
const reference =
  (hidden: ReadonlyArray<number>): ReferenceLoss =>
  (p, data, indices) => {
    const widths = [Dataset.pixels, ...hidden, Dataset.classes]
    let total = 0
    for (const index of indices) {
      let a = Array.from({ length: Dataset.pixels }, (_, j) => data.images[index * Dataset.pixels + j]!)
      let offset = 0
      for (let l = 1; l < widths.length; l++) {
        const fanIn = widths[l - 1]!
        const fanOut = widths[l]!
        const w = offset
        const b = offset + fanIn * fanOut
        offset = b + fanOut
        const input = a
        const z = Array.from({ length: fanOut }, (_, m) => {
          let s = p[b + m]!
          for (let k = 0; k < fanIn; k++) s += input[k]! * p[w + k * fanOut + m]!
          return s
        })
        a = l < widths.length - 1 ? z.map((v) => Math.max(0, v)) : z
      }
      total += crossEntropy(a, data.labels[index]!)
    }
    return total / indices.length
  }

// The [from, to) ranges of every weight matrix and bias, in layout order.
const blocks = (hidden: ReadonlyArray<number>): Array<readonly [number, number]> => {
  const widths = [Dataset.pixels, ...hidden, Dataset.classes]
  const out: Array<readonly [number, number]> = []
  let offset = 0
  for (let l = 1; l < widths.length; l++) {
    const weights = widths[l - 1]! * widths[l]!
    out.push([offset, offset + weights], [offset + weights, offset + weights + widths[l]!])
    offset += weights + widths[l]!
  }
  return out
}

// A narrow network checked on every parameter after W1 and 400 of W1's (the reference is slow),
// with the parameters after W1 nudged so biases are exercised away from the ReLU kinks.
const checkNarrow = (hidden: ReadonlyArray<number>) => {
  const model = Mlp.make({ hidden })
  const data = synthetic(3)
  const params = model.init(11)
  const w1 = Dataset.pixels * hidden[0]!
  const next = lcg(12)
  for (let i = w1; i < params.length; i++) params[i] = params[i]! + (next() - 0.5) * 0.1
  const { loss, grad } = model.lossAndGradient(params, data, [0, 1, 2])
  assert.closeTo(loss, reference(hidden)(Float64Array.from(params), data, [0, 1, 2]), 1e-9)
  const coordinates = [
    ...sampleCoordinates(w1, 400, lcg(13)),
    ...Array.from({ length: model.paramCount - w1 }, (_, i) => w1 + i),
  ]
  return compareGradient(reference(hidden), params, grad, data, [0, 1, 2], coordinates)
}

describe("Mlp", () => {
  it.effect("counts (fan_in + 1) × fan_out parameters per layer: 199,210 for [200, 200], 64 MiB for [4096, 3302]", () =>
    Effect.sync(() => {
      assert.strictEqual(Mlp.paramCount([200, 200]), 199_210)
      assert.strictEqual(Mlp.paramCount([200, 200]), TwoNN.paramCount())
      assert.strictEqual(Mlp.paramCount([200]), 785 * 200 + 201 * 10)
      assert.strictEqual(Mlp.paramCount([5, 4, 3]), 785 * 5 + 6 * 4 + 5 * 3 + 4 * 10)
      assert.strictEqual(Mlp.paramCount([4096, 3072]), 15_832_074)
      // The documented 64 MiB model: the widest 784-4096-W-10 whose float32 bytes fit in 64 MiB.
      assert.strictEqual(Mlp.paramCount([4096, 3302]), 16_776_684)
      assert.isAtMost(Mlp.paramCount([4096, 3302]) * 4, 64 * 1024 ** 2)
      assert.isAbove(Mlp.paramCount([4096, 3303]) * 4, 64 * 1024 ** 2)
      const model = Mlp.make({ hidden: [5, 4, 3] })
      assert.strictEqual(model.name, "mlp:5,4,3")
      assert.strictEqual(model.architecture, "784-5-4-3-10 ReLU")
      assert.strictEqual(model.init(1).length, model.paramCount)
    }),
  )

  it.effect("initialises per seed: zero biases, He-uniform hidden weights, Glorot-uniform output weights", () =>
    Effect.sync(() => {
      const hidden = [16, 12, 8]
      const model = Mlp.make({ hidden })
      const a = model.init(5)
      assert.deepStrictEqual(model.init(5), a)
      assert.notDeepEqual(model.init(6), a)
      const fanIns = [Dataset.pixels, ...hidden]
      const layers = blocks(hidden)
      for (let layer = 0; layer <= hidden.length; layer++) {
        const [from, to] = layers[2 * layer]!
        const [biasFrom, biasTo] = layers[2 * layer + 1]!
        assert.isTrue(
          a.subarray(biasFrom, biasTo).every((v) => v === 0),
          `bias ${layer + 1} is zero`,
        )
        const fanIn = fanIns[layer]!
        const limit = Math.sqrt(6 / (layer < hidden.length ? fanIn : fanIn + Dataset.classes))
        const weights = a.subarray(from, to)
        assert.isTrue(
          weights.every((v) => Math.abs(v) <= limit),
          `weights of layer ${layer + 1} within ±${limit}`,
        )
        assert.isTrue(
          weights.some((v) => Math.abs(v) > limit / 2),
          `weights of layer ${layer + 1} use their range`,
        )
      }
    }),
  )

  it.effect("mlp:W1,W2 matches float64 central differences on every bias and hidden weight of a narrow network", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(checkNarrow([6, 4]), [])
    }),
  )

  it.effect("a one-hidden-layer mlp:W matches float64 central differences", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(checkNarrow([7]), [])
    }),
  )

  it.effect("a three-hidden-layer mlp:W1,W2,W3 matches float64 central differences", () =>
    Effect.sync(() => {
      assert.deepStrictEqual(checkNarrow([5, 4, 3]), [])
    }),
  )

  it.effect("mlp:300,100 matches float64 central differences on sampled parameters of every block", () =>
    Effect.sync(() => {
      const hidden = [300, 100]
      const model = Mlp.make({ hidden })
      const data = synthetic(2)
      const params = model.init(3)
      const batch = [0, 1]
      const { loss, grad } = model.lossAndGradient(params, data, batch)
      assert.closeTo(loss, reference(hidden)(Float64Array.from(params), data, batch), 1e-9)
      const next = lcg(4)
      const coordinates = blocks(hidden).flatMap(([from, to]) =>
        sampleCoordinates(to - from, 6, next).map((i) => from + i),
      )
      assert.deepStrictEqual(compareGradient(reference(hidden), params, grad, data, batch, coordinates), [])
    }),
  )

  it.effect("flags a gradient that is wrong in a single weight of the third hidden layer (the check can fail)", () =>
    Effect.sync(() => {
      const hidden = [5, 4, 3]
      const model = Mlp.make({ hidden })
      const data = synthetic(2)
      const params = model.init(11)
      const { grad } = model.lossAndGradient(params, data, [0, 1])
      const [from, to] = blocks(hidden)[4]!
      const target = Array.from({ length: to - from }, (_, i) => from + i).find((i) => Math.abs(grad[i]!) > 1e-4)!
      grad[target] = -grad[target]!
      const mismatches = compareGradient(reference(hidden), params, grad, data, [0, 1], [target, target + 1])
      assert.deepStrictEqual(
        mismatches.map((m) => m.coordinate),
        [target],
      )
    }),
  )

  it.effect("mlp:200,200 is the 2NN bit for bit: same initial weights, gradient and seeded training run", () =>
    Effect.gen(function* () {
      const { train } = yield* Dataset.split(yield* mnist, { seed: 2, trainSize: 300, testSize: 10 })
      const mlp = Mlp.make({ hidden: [200, 200] })
      const twoNN = TwoNN.make()
      assert.strictEqual(mlp.paramCount, twoNN.paramCount)
      assert.strictEqual(sha256(mlp.init(42)), sha256(twoNN.init(42)))
      const batch = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
      assert.strictEqual(
        sha256(mlp.lossAndGradient(mlp.init(3), train, batch).grad),
        sha256(twoNN.lossAndGradient(twoNN.init(3), train, batch).grad),
      )
      const options = { seed: 1, learningRate: 0.1 }
      const a = yield* Training.train(mlp, mlp.init(1), train, options)
      const b = yield* Training.train(twoNN, twoNN.init(1), train, options)
      assert.strictEqual(sha256(a.params), sha256(b.params))
      assert.strictEqual(a.loss, b.loss)
    }),
  )

  it.effect("trains a 64 MiB model (mlp:4096,3302, 16.8 M parameters) for a few SGD steps", () =>
    Effect.gen(function* () {
      const model = Mlp.make({ hidden: [4096, 3302] })
      assert.strictEqual(model.paramCount * 4, 67_106_736)
      const initial = model.init(1)
      const trained = yield* Training.train(model, initial, synthetic(40), { seed: 1, maxSteps: 2 })
      assert.strictEqual(trained.steps, 2)
      assert.isTrue(Number.isFinite(trained.loss))
      assert.notDeepEqual(trained.params.subarray(0, 1000), initial.subarray(0, 1000))
    }),
  )

  it.effect("accepts widths 1 to 65,536 and 1 to 64 hidden layers, and refuses beyond them naming the rule", () =>
    Effect.sync(() => {
      for (const hidden of [[1], [65_536], Array.from({ length: 64 }, () => 1), [8192, 8192, 8192]]) {
        assert.isTrue(Result.isSuccess(Mlp.checkShape(hidden)), `[${hidden.join(",")}]`)
      }
      const reasons: ReadonlyArray<readonly [ReadonlyArray<number>, string]> = [
        [[], "no hidden layers (an MLP needs at least one width)"],
        [[200, 0], "hidden layer 2 has width 0; a width is an integer from 1 to 65,536"],
        [[65_537], "hidden layer 1 has width 65537; a width is an integer from 1 to 65,536"],
        [[1.5], "hidden layer 1 has width 1.5; a width is an integer from 1 to 65,536"],
        [[-3], "hidden layer 1 has width -3; a width is an integer from 1 to 65,536"],
        [Array.from({ length: 65 }, () => 1), "65 hidden layers, more than the 64 allowed"],
        [[65_536, 65_536], "4,347,133,962 parameters (16.2 GiB of float32), more than the 536,870,912 (2 GiB) allowed"],
      ]
      for (const [hidden, reason] of reasons) {
        const checked = Mlp.checkShape(hidden)
        assert.isTrue(Result.isFailure(checked), `[${hidden.join(",")}]`)
        if (Result.isFailure(checked)) assert.strictEqual(checked.failure.reason, reason)
      }
      // The parameter limit, 512 Mi, on both sides: 784-65536-7405-10 fits, one more unit does not.
      assert.isAtMost(Mlp.paramCount([65_536, 7405]), Mlp.maxParams)
      assert.isTrue(Result.isSuccess(Mlp.checkShape([65_536, 7405])))
      assert.isAbove(Mlp.paramCount([65_536, 7406]), Mlp.maxParams)
      assert.isTrue(Result.isFailure(Mlp.checkShape([65_536, 7406])))
    }),
  )

  it.effect("make throws InvalidShape for a shape checkShape refuses, instead of building a broken model", () =>
    Effect.sync(() => {
      assert.throws(() => Mlp.make({ hidden: [0] }), /invalid MLP hidden widths \[0\]: hidden layer 1 has width 0/)
      assert.throws(() => Mlp.make({ hidden: [] }), /no hidden layers/)
    }),
  )
})
