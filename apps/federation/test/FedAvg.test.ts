import { assert, describe, it } from "@effect/vitest"
import { Effect, Random } from "effect"
import * as FedAvg from "../src/FedAvg.ts"

const w = (...values: Array<number>) => Float32Array.from(values)

describe("FedAvg", () => {
  it.effect("averages equally weighted clients to their plain mean", () =>
    Effect.gen(function* () {
      const global = yield* FedAvg.aggregate([
        { weights: w(1, 2, 3), samples: 10 },
        { weights: w(3, 4, 5), samples: 10 },
      ])
      assert.deepStrictEqual(Array.from(global), [2, 3, 4])
    }),
  )

  it.effect("weights each client by its sample count, not equally", () =>
    Effect.gen(function* () {
      const global = yield* FedAvg.aggregate([
        { weights: w(0, 8), samples: 300 },
        { weights: w(4, 0), samples: 100 },
      ])
      // 3/4 · (0, 8) + 1/4 · (4, 0); the unweighted mean would be (2, 4).
      assert.deepStrictEqual(Array.from(global), [1, 6])
    }),
  )

  it.effect("gives a client with 0 samples no influence", () =>
    Effect.gen(function* () {
      const global = yield* FedAvg.aggregate([
        { weights: w(1, 1), samples: 5 },
        { weights: w(100, -100), samples: 0 },
      ])
      assert.deepStrictEqual(Array.from(global), [1, 1])
    }),
  )

  it.effect("returns a single client's weights unchanged, in a new array", () =>
    Effect.gen(function* () {
      const only = w(0.1, -0.7, 3.3)
      const global = yield* FedAvg.aggregate([{ weights: only, samples: 42 }])
      assert.deepStrictEqual(global, only)
      assert.notStrictEqual(global, only)
    }),
  )

  it.effect("does not modify the clients' arrays", () =>
    Effect.gen(function* () {
      const a = w(1, 2)
      const b = w(5, 6)
      yield* FedAvg.aggregate([
        { weights: a, samples: 1 },
        { weights: b, samples: 3 },
      ])
      assert.deepStrictEqual(Array.from(a), [1, 2])
      assert.deepStrictEqual(Array.from(b), [5, 6])
    }),
  )

  it.effect("fails with NothingToAggregate on no updates", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(FedAvg.aggregate([]))
      assert.strictEqual(error._tag, "NothingToAggregate")
    }),
  )

  it.effect("fails with NothingToAggregate when every update has 0 samples", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        FedAvg.aggregate([
          { weights: w(1), samples: 0 },
          { weights: w(2), samples: 0 },
        ]),
      )
      assert.strictEqual(error._tag, "NothingToAggregate")
    }),
  )

  it.effect("fails with UpdateLengthMismatch naming the update of the wrong length", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(
        FedAvg.aggregate([
          { weights: w(1, 2), samples: 1 },
          { weights: w(1, 2), samples: 1 },
          { weights: w(1, 2, 3), samples: 1 },
        ]),
      )
      assert.strictEqual(error._tag, "UpdateLengthMismatch")
      if (error._tag === "UpdateLengthMismatch") {
        assert.deepStrictEqual([error.index, error.expected, error.actual], [2, 2, 3])
      }
    }),
  )

  it.effect("fails with InvalidSampleCount on negative, fractional or NaN counts", () =>
    Effect.gen(function* () {
      for (const samples of [-1, 2.5, Number.NaN]) {
        const error = yield* Effect.flip(
          FedAvg.aggregate([
            { weights: w(1), samples: 1 },
            { weights: w(1), samples },
          ]),
        )
        assert.strictEqual(error._tag, "InvalidSampleCount")
      }
    }),
  )
})

// Readers over in-memory updates that hand out views of one shared buffer, as a file-backed
// reader does, and record what was asked.
const chunked = (updates: ReadonlyArray<FedAvg.Update>) => {
  const scratch = new Float32Array(Math.max(1, ...updates.map((u) => u.weights.length)))
  const reads: Array<{ readonly k: number; readonly start: number; readonly length: number }> = []
  const readers = updates.map(
    (update, k): FedAvg.ChunkedUpdate => ({
      samples: update.samples,
      length: update.weights.length,
      read: (start, length) =>
        Effect.sync(() => {
          reads.push({ k, start, length })
          scratch.set(update.weights.subarray(start, start + length))
          return scratch.subarray(0, length)
        }),
    }),
  )
  return { readers, reads }
}

// Weights whose float64 sums depend on the order they are added in: large values of both signs
// next to small ones, so a reducer that reordered any addition would show it.
const orderSensitive = Effect.fnUntraced(function* (count: number, length: number) {
  const updates: Array<FedAvg.Update> = []
  for (let k = 0; k < count; k++) {
    const weights = new Float32Array(length)
    for (let i = 0; i < length; i++) {
      const magnitude = 10 ** (yield* Random.nextIntBetween(-3, 30))
      weights[i] = ((yield* Random.next) - 0.5) * magnitude
    }
    updates.push({ weights, samples: yield* Random.nextIntBetween(1, 5000) })
  }
  return updates
})

describe("FedAvg.aggregateChunked", () => {
  it.effect("is bit-identical to aggregate for every chunk size, over seeded order-sensitive updates", () =>
    Effect.gen(function* () {
      for (let seed = 0; seed < 20; seed++) {
        const updates = yield* orderSensitive(1 + (seed % 8), 37).pipe(Random.withSeed(seed))
        const expected = Array.from(yield* FedAvg.aggregate(updates))
        for (const chunkSize of [1, 2, 5, 16, 36, 37, 1000, undefined]) {
          const actual = yield* FedAvg.aggregateChunked(chunked(updates).readers, { chunkSize })
          assert.deepStrictEqual(Array.from(actual), expected, `seed ${seed}, chunk ${chunkSize}`)
        }
      }
    }),
  )

  it.effect("the order of the updates shows in the result: it reduces in the order given, no other", () =>
    Effect.gen(function* () {
      const a = { weights: w(3e16), samples: 100 }
      const b = { weights: w(3), samples: 100 }
      const c = { weights: w(-3e16), samples: 100 }
      const results = new Set<number>()
      for (const order of [
        [a, b, c],
        [a, c, b],
        [b, a, c],
      ]) {
        const chunkedResult = (yield* FedAvg.aggregateChunked(chunked(order).readers))[0]!
        assert.strictEqual(chunkedResult, (yield* FedAvg.aggregate(order))[0]!)
        results.add(chunkedResult)
      }
      assert.isAbove(results.size, 1)
    }),
  )

  it.effect(
    "reads chunk by chunk, every update per chunk in order, never more than chunkSize at once; 0-sample updates are not read",
    () =>
      Effect.gen(function* () {
        const { readers, reads } = chunked([
          { weights: w(1, 2, 3, 4, 5), samples: 1 },
          { weights: w(9, 9, 9, 9, 9), samples: 0 },
          { weights: w(5, 4, 3, 2, 1), samples: 3 },
        ])
        const global = yield* FedAvg.aggregateChunked(readers, { chunkSize: 2 })
        assert.deepStrictEqual(Array.from(global), [4, 3.5, 3, 2.5, 2])
        assert.deepStrictEqual(reads, [
          { k: 0, start: 0, length: 2 },
          { k: 2, start: 0, length: 2 },
          { k: 0, start: 2, length: 2 },
          { k: 2, start: 2, length: 2 },
          { k: 0, start: 4, length: 1 },
          { k: 2, start: 4, length: 1 },
        ])
      }),
  )

  it.effect(
    "fails as aggregate does on bad input, on a read of the wrong length, and with the reader's own error",
    () =>
      Effect.gen(function* () {
        assert.strictEqual((yield* Effect.flip(FedAvg.aggregateChunked<never, never>([])))._tag, "NothingToAggregate")
        const mismatch = yield* Effect.flip(
          FedAvg.aggregateChunked([
            { samples: 1, length: 2, read: () => Effect.succeed(w(1, 2)) },
            { samples: 1, length: 3, read: () => Effect.succeed(w(1, 2, 3)) },
          ]),
        )
        assert.strictEqual(mismatch._tag, "UpdateLengthMismatch")
        const short = yield* Effect.flip(
          FedAvg.aggregateChunked([{ samples: 1, length: 4, read: () => Effect.succeed(w(1)) }], { chunkSize: 2 }),
        )
        assert.strictEqual(short._tag, "UpdateLengthMismatch")
        const failing = yield* Effect.flip(
          FedAvg.aggregateChunked([{ samples: 1, length: 4, read: () => Effect.fail("disk gone" as const) }]),
        )
        assert.strictEqual(failing, "disk gone")
      }),
  )
})
