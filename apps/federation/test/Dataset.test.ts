import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import { mnist, sampleId, synthetic } from "./fixtures.ts"

const ids = (data: Dataset.Dataset): Array<number> => Array.from({ length: data.count }, (_, i) => sampleId(data, i))

describe("Dataset", () => {
  it.effect("splits MNIST into 8,000 train and 2,000 test samples by default", () =>
    Effect.gen(function* () {
      const { train, test } = yield* Dataset.split(yield* mnist, { seed: 1 })
      assert.strictEqual(train.count, 8000)
      assert.strictEqual(test.count, 2000)
      assert.strictEqual(train.images.length, 8000 * 784)
      assert.strictEqual(test.labels.length, 2000)
    }),
  )

  it.effect("puts no sample in both train and test, and copies each one faithfully", () =>
    Effect.gen(function* () {
      const data = synthetic(1000)
      const { train, test } = yield* Dataset.split(data, { seed: 3, trainSize: 700, testSize: 300 })
      const trainIds = ids(train)
      const testIds = ids(test)
      assert.strictEqual(new Set([...trainIds, ...testIds]).size, 1000)
      for (let i = 0; i < train.count; i += 7) {
        const source = trainIds[i]!
        assert.strictEqual(train.labels[i], data.labels[source])
        assert.deepStrictEqual(
          train.images.subarray(i * 784, (i + 1) * 784),
          data.images.subarray(source * 784, (source + 1) * 784),
        )
      }
    }),
  )

  it.effect("cuts the same split for the same seed and a different one for another seed", () =>
    Effect.gen(function* () {
      const data = synthetic(500)
      const a = yield* Dataset.split(data, { seed: 11, trainSize: 400, testSize: 100 })
      const b = yield* Dataset.split(data, { seed: 11, trainSize: 400, testSize: 100 })
      const c = yield* Dataset.split(data, { seed: 12, trainSize: 400, testSize: 100 })
      assert.deepStrictEqual(ids(b.train), ids(a.train))
      assert.deepStrictEqual(ids(b.test), ids(a.test))
      assert.notDeepEqual(ids(c.test), ids(a.test))
    }),
  )

  it.effect("leaves samples out when train + test is smaller than the data", () =>
    Effect.gen(function* () {
      const { train, test } = yield* Dataset.split(synthetic(500), { seed: 1, trainSize: 50, testSize: 20 })
      assert.strictEqual(train.count, 50)
      assert.strictEqual(test.count, 20)
    }),
  )

  it.effect("keeps each digit's share equal in train and test when stratified, not otherwise guaranteed", () =>
    Effect.gen(function* () {
      const data = yield* mnist
      const whole = Dataset.classCounts(data)
      const { train, test } = yield* Dataset.split(data, { seed: 5, stratify: true })
      assert.strictEqual(train.count, 8000)
      assert.strictEqual(test.count, 2000)
      const testCounts = Dataset.classCounts(test)
      const trainCounts = Dataset.classCounts(train)
      for (let c = 0; c < 10; c++) {
        assert.isAtMost(Math.abs(testCounts[c]! - whole[c]! * 0.2), 1)
        assert.isAtMost(Math.abs(trainCounts[c]! - whole[c]! * 0.8), 1)
      }
      const plain = Dataset.classCounts((yield* Dataset.split(data, { seed: 5 })).test)
      assert.isTrue(plain.some((n, c) => Math.abs(n - whole[c]! * 0.2) > 1))
    }),
  )

  it.effect("refuses a split larger than the data, or with negative or fractional sizes", () =>
    Effect.gen(function* () {
      const data = synthetic(100)
      for (const sizes of [
        { trainSize: 90, testSize: 11 },
        { trainSize: -1, testSize: 10 },
        { trainSize: 10.5, testSize: 10 },
      ]) {
        const error = yield* Effect.flip(Dataset.split(data, { seed: 1, ...sizes }))
        assert.strictEqual(error._tag, "InvalidSplit")
        assert.strictEqual(error.available, 100)
      }
      const exact = yield* Dataset.split(data, { seed: 1, trainSize: 90, testSize: 10 })
      assert.strictEqual(exact.train.count + exact.test.count, 100)
    }),
  )

  it.effect("makes a dataset only from 784 pixels per label and digits 0-9", () =>
    Effect.gen(function* () {
      const ok = yield* Dataset.make(new Float32Array(2 * 784), Uint8Array.of(3, 9))
      assert.strictEqual(ok.count, 2)
      const short = yield* Effect.flip(Dataset.make(new Float32Array(783), Uint8Array.of(1)))
      assert.include(short.message, "783 pixel values for 1 labels")
      const badLabel = yield* Effect.flip(Dataset.make(new Float32Array(784), Uint8Array.of(10)))
      assert.include(badLabel.message, "label 10")
    }),
  )

  it.effect("copies a subset in the order of its indices", () =>
    Effect.sync(() => {
      const data = synthetic(20)
      const sub = Dataset.subset(data, [5, 2, 19])
      assert.deepStrictEqual(ids(sub), [5, 2, 19])
      assert.deepStrictEqual(Array.from(sub.labels), [5, 2, 9])
    }),
  )
})
