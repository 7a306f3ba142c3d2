import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Ref } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Softmax from "../src/Softmax.ts"
import * as Training from "../src/Training.ts"
import * as TwoNN from "../src/TwoNN.ts"
import { mnist, sha256, synthetic } from "./fixtures.ts"

const small = Effect.gen(function* () {
  return yield* Dataset.split(yield* mnist, { seed: 2, trainSize: 1000, testSize: 500 })
})

describe("Training", () => {
  it.effect("lifts softmax regression from chance to well above it on 1,000 real digits", () =>
    Effect.gen(function* () {
      const { train, test } = yield* small
      const model = Softmax.make()
      const initial = model.init(1)
      const untrained = model.evaluate(initial, test)
      assert.isAtMost(untrained.accuracy, 0.2)
      const trained = yield* Training.train(model, initial, train, { seed: 1, epochs: 2, learningRate: 0.05 })
      const after = model.evaluate(trained.params, test)
      assert.isAtLeast(after.accuracy, 0.8)
      assert.isBelow(after.loss, untrained.loss)
      assert.strictEqual(trained.samples, 1000)
      assert.strictEqual(trained.steps, 200)
    }),
  )

  it.effect("lifts the 2NN from chance to well above it in one epoch on 1,000 real digits", () =>
    Effect.gen(function* () {
      const { train, test } = yield* small
      const model = TwoNN.make()
      const initial = model.init(1)
      assert.isAtMost(model.evaluate(initial, test).accuracy, 0.2)
      const trained = yield* Training.train(model, initial, train, { seed: 1, learningRate: 0.1 })
      assert.isAtLeast(model.evaluate(trained.params, test).accuracy, 0.75)
    }),
  )

  it.effect("trains softmax exactly as before the step cap existed (pinned hash of a seeded run)", () =>
    Effect.gen(function* () {
      const { train, test } = yield* small
      const model = Softmax.make()
      const trained = yield* Training.train(model, model.init(1), train, { seed: 1, epochs: 2, learningRate: 0.05 })
      assert.strictEqual(sha256(trained.params), "e5a6efb6d1241da06c046a9b3e9207446e24dbff99d0e389f4190734c27403ca")
      assert.deepStrictEqual([trained.steps, trained.loss], [200, 0.6851145408841194])
      assert.strictEqual(model.evaluate(trained.params, test).accuracy, 0.832)
    }),
  )

  it.effect("maxSteps stops after that many minibatches, even mid-epoch, still counting every sample", () =>
    Effect.gen(function* () {
      const data = synthetic(200)
      const model = TwoNN.make({ hidden: 8 })
      const initial = model.init(3)
      const options = { seed: 4, epochs: 3, batchSize: 10 } // 20 steps per epoch, 60 in all
      const capped = yield* Training.train(model, initial, data, { ...options, maxSteps: 25 })
      assert.deepStrictEqual([capped.steps, capped.samples], [25, 200])
      // A cap at an epoch's end is that many epochs, bit for bit (the same shuffles, the same steps).
      const oneEpoch = yield* Training.train(model, initial, data, { ...options, epochs: 1 })
      const capped20 = yield* Training.train(model, initial, data, { ...options, maxSteps: 20 })
      assert.strictEqual(capped20.steps, 20)
      assert.strictEqual(sha256(capped20.params), sha256(oneEpoch.params))
      assert.strictEqual(capped20.loss, oneEpoch.loss)
      // Five steps more than one epoch moved the weights further, five fewer than two epochs less far.
      const twoEpochs = yield* Training.train(model, initial, data, { ...options, epochs: 2 })
      assert.notStrictEqual(sha256(capped.params), sha256(oneEpoch.params))
      assert.notStrictEqual(sha256(capped.params), sha256(twoEpochs.params))
    }),
  )

  it.effect("without maxSteps, or with one above the steps of all epochs, trains exactly as uncapped", () =>
    Effect.gen(function* () {
      const data = synthetic(200)
      const model = TwoNN.make({ hidden: 8 })
      const initial = model.init(3)
      const options = { seed: 4, epochs: 3, batchSize: 10 }
      const uncapped = yield* Training.train(model, initial, data, options)
      assert.strictEqual(uncapped.steps, 60)
      for (const maxSteps of [undefined, 60, 61, 1_000_000]) {
        const trained = yield* Training.train(model, initial, data, { ...options, maxSteps })
        assert.strictEqual(sha256(trained.params), sha256(uncapped.params), `maxSteps ${maxSteps}`)
        assert.deepStrictEqual([trained.steps, trained.loss], [60, uncapped.loss])
      }
    }),
  )

  it.effect("trains only on the given indices and counts only those samples", () =>
    Effect.gen(function* () {
      const { train } = yield* small
      const model = Softmax.make()
      // Only zeros and ones: the model learns nothing about the other digits.
      const indices = Array.from({ length: train.count }, (_, i) => i).filter((i) => train.labels[i]! <= 1)
      const trained = yield* Training.train(model, model.init(0), train, { seed: 1, indices, epochs: 3 })
      assert.strictEqual(trained.samples, indices.length)
      const predictions = model.predict(trained.params, train)
      assert.isTrue(predictions.every((p) => p <= 1))
    }),
  )

  it.effect("gives bit-identical parameters for the same seed and different ones for another seed", () =>
    Effect.gen(function* () {
      const data = synthetic(200)
      const model = Softmax.make()
      const a = yield* Training.train(model, model.init(0), data, { seed: 4 })
      const b = yield* Training.train(model, model.init(0), data, { seed: 4 })
      const c = yield* Training.train(model, model.init(0), data, { seed: 5 })
      assert.deepStrictEqual(b.params, a.params)
      assert.notDeepEqual(c.params, a.params)
    }),
  )

  it.effect("leaves the caller's parameters untouched", () =>
    Effect.gen(function* () {
      const model = Softmax.make()
      const params = model.init(0)
      const trained = yield* Training.train(model, params, synthetic(50), { seed: 1 })
      assert.isTrue(params.every((v) => v === 0))
      assert.isTrue(trained.params.some((v) => v !== 0))
    }),
  )

  it.effect("returns the parameters unchanged (as a copy) after zero epochs", () =>
    Effect.gen(function* () {
      const model = TwoNN.make({ hidden: 4 })
      const params = model.init(2)
      const trained = yield* Training.train(model, params, synthetic(20), { seed: 1, epochs: 0 })
      assert.deepStrictEqual(trained.params, params)
      assert.notStrictEqual(trained.params, params)
      assert.strictEqual(trained.steps, 0)
    }),
  )

  it.effect("lets other fibers run between SGD steps", () =>
    Effect.gen(function* () {
      const ticks = yield* Ref.make(0)
      const ticker = yield* Effect.forkChild(
        Effect.forever(Ref.update(ticks, (n) => n + 1).pipe(Effect.andThen(Effect.yieldNow))),
      )
      const model = Softmax.make()
      yield* Training.train(model, model.init(0), synthetic(100), { seed: 1, batchSize: 10, yieldEvery: 1 })
      const during = yield* Ref.get(ticks)
      yield* Fiber.interrupt(ticker)
      assert.isAtLeast(during, 5)
    }),
  )

  it.effect("does not yield to other fibers when yieldEvery exceeds the steps taken", () =>
    Effect.gen(function* () {
      const ticks = yield* Ref.make(0)
      const ticker = yield* Effect.forkChild(
        Effect.forever(Ref.update(ticks, (n) => n + 1).pipe(Effect.andThen(Effect.yieldNow))),
      )
      const model = Softmax.make()
      yield* Training.train(model, model.init(0), synthetic(100), { seed: 1, batchSize: 10, yieldEvery: 1000 })
      const during = yield* Ref.get(ticks)
      yield* Fiber.interrupt(ticker)
      assert.strictEqual(during, 0)
    }),
  )

  it.effect("rejects options out of range, naming the option", () =>
    Effect.gen(function* () {
      const model = Softmax.make()
      const data = synthetic(10)
      const cases: ReadonlyArray<readonly [Training.Options, string]> = [
        [{ seed: 1, epochs: -1 }, "epochs"],
        [{ seed: 1, epochs: 1.5 }, "epochs"],
        [{ seed: 1, batchSize: 0 }, "batchSize"],
        [{ seed: 1, learningRate: 0 }, "learningRate"],
        [{ seed: 1, learningRate: Number.NaN }, "learningRate"],
        [{ seed: 1, yieldEvery: 0 }, "yieldEvery"],
        [{ seed: 1, maxSteps: 0 }, "maxSteps"],
        [{ seed: 1, maxSteps: -1 }, "maxSteps"],
        [{ seed: 1, maxSteps: 2.5 }, "maxSteps"],
        [{ seed: 1, maxSteps: Number.NaN }, "maxSteps"],
        [{ seed: 1, indices: [0, 10] }, "indices"],
        [{ seed: 1, indices: [-1] }, "indices"],
      ]
      for (const [options, field] of cases) {
        const error = yield* Effect.flip(Training.train(model, model.init(0), data, options))
        assert.strictEqual(error._tag, "InvalidTrainingOptions")
        if (error._tag === "InvalidTrainingOptions") assert.strictEqual(error.field, field)
      }
    }),
  )

  it.effect("rejects parameters of the wrong length with ParamCountMismatch", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        Training.train(Softmax.make(), new Float32Array(TwoNN.paramCount()), synthetic(10), { seed: 1 }),
      )
      assert.strictEqual(error._tag, "ParamCountMismatch")
      assert.include(error.message, "softmax has 7850 parameters, got a vector of 199210")
    }),
  )

  it.effect("derives distinct, reproducible seeds per round and client", () =>
    Effect.sync(() => {
      assert.strictEqual(Training.roundSeed(1, 2, 3), Training.roundSeed(1, 2, 3))
      const seeds = new Set<number>()
      for (let round = 0; round < 20; round++) {
        for (let client = 0; client < 10; client++) seeds.add(Training.roundSeed(1, round, client))
      }
      assert.strictEqual(seeds.size, 200)
    }),
  )
})
