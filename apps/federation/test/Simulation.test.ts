import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Simulation from "../src/Simulation.ts"
import { mnist } from "./fixtures.ts"

const small = Effect.gen(function* () {
  return yield* Dataset.split(yield* mnist, { seed: 3, trainSize: 2000, testSize: 500 })
})

describe("Simulation", () => {
  it.effect("raises test accuracy from chance to above 80 % in 3 FedAvg rounds of 4 iid clients", () =>
    Effect.gen(function* () {
      const rounds: Array<number> = []
      const result = yield* Simulation.run(yield* small, { seed: 1, rounds: 3 }, (r) =>
        Effect.sync(() => {
          rounds.push(r.round)
        }),
      )
      assert.deepStrictEqual(rounds, [1, 2, 3])
      assert.isAtMost(result.initial.accuracy, 0.2)
      assert.isAtLeast(result.rounds[2]!.accuracy, 0.8)
      assert.strictEqual(result.params.length, 7850)
    }),
  )

  it.effect("reproduces the same accuracies for the same seed", () =>
    Effect.gen(function* () {
      const split = yield* small
      const a = yield* Simulation.run(split, { seed: 2, rounds: 2, partition: "noniid" })
      const b = yield* Simulation.run(split, { seed: 2, rounds: 2, partition: "noniid" })
      assert.deepStrictEqual(
        b.rounds.map((r) => r.accuracy),
        a.rounds.map((r) => r.accuracy),
      )
      assert.deepStrictEqual(b.params, a.params)
    }),
  )

  it.effect("learns less per round from non-IID shards than from iid ones", () =>
    Effect.gen(function* () {
      const split = yield* small
      const iid = yield* Simulation.run(split, { seed: 1, rounds: 1, partition: "iid" })
      const noniid = yield* Simulation.run(split, { seed: 1, rounds: 1, partition: "noniid" })
      assert.isBelow(noniid.rounds[0]!.accuracy, iid.rounds[0]!.accuracy - 0.05)
    }),
  )

  it.effect("runs an mlp: model, each client capped at maxSteps per round (a cap above an epoch changes nothing)", () =>
    Effect.gen(function* () {
      const split = yield* small
      const options = { seed: 1, rounds: 1, model: "mlp:32" as const, learningRate: 0.1 }
      // 2,000 samples over 4 clients, B = 10: 50 steps per client per round.
      const full = yield* Simulation.run(split, options)
      assert.strictEqual(full.params.length, 785 * 32 + 33 * 10)
      assert.isAtLeast(full.rounds[0]!.accuracy, 0.6)
      const capped = yield* Simulation.run(split, { ...options, maxSteps: 5 })
      assert.notDeepEqual(capped.params, full.params)
      assert.isBelow(capped.rounds[0]!.accuracy, full.rounds[0]!.accuracy)
      const above = yield* Simulation.run(split, { ...options, maxSteps: 50 })
      assert.deepStrictEqual(above.params, full.params)
    }),
  )

  it.effect("fails with InvalidPartition instead of training when there are no clients", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(Simulation.run(yield* small, { seed: 1, clients: 0 }))
      assert.strictEqual(error._tag, "InvalidPartition")
    }),
  )
})
