import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
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
