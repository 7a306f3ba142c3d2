import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Model from "../src/Model.ts"
import * as Partition from "../src/Partition.ts"
import * as Training from "../src/Training.ts"
import * as Workload from "../src/Workload.ts"
import { mnist, sha256, synthetic } from "./fixtures.ts"

const round = { round: 3, seed: Training.roundSeed(42, 3, 1), epochs: 1, batchSize: 10, learningRate: 0.05 }

describe("Workload", () => {
  it.effect("the default is MNIST's models: the same size, start and evaluation as Model.make", () =>
    Effect.gen(function* () {
      const workload = yield* Workload.Workload
      assert.strictEqual(workload, Workload.mnist)
      assert.strictEqual(workload.paramCount("2nn"), Model.make("2nn").paramCount)
      assert.strictEqual(sha256(workload.init("softmax", 7)), sha256(Model.make("softmax").init(7)))
      const test = synthetic(50)
      const params = Model.make("softmax").init(1)
      assert.deepStrictEqual(
        Workload.evaluationOf(test).evaluate("softmax", params),
        Model.make("softmax").evaluate(params, test),
      )
    }),
  )

  it.effect("local work on a shard trains exactly as Training.train on those samples, and only those", () =>
    Effect.gen(function* () {
      const train = synthetic(200)
      const shard = Uint32Array.from({ length: 60 }, (_, i) => 2 * i)
      const work = Workload.localWorkOf(train, shard)
      assert.strictEqual(work.samples, 60)
      const start = Model.make("softmax").init(5)
      const trained = yield* work.train("softmax", start, round)
      const expected = yield* Training.train(Model.make("softmax"), start, train, { ...round, indices: shard })
      assert.strictEqual(sha256(trained.params), sha256(expected.params))
      const everything = yield* Workload.localWorkOf(train).train("softmax", start, round)
      assert.notStrictEqual(sha256(everything.params), sha256(trained.params))
    }),
  )

  it.effect("a vector of the wrong length is refused, not trained", () =>
    Effect.gen(function* () {
      const error = yield* Workload.localWorkOf(synthetic(20))
        .train("softmax", new Float32Array(3), round)
        .pipe(Effect.flip)
      assert.strictEqual(error._tag, "ParamCountMismatch")
    }),
  )

  it.effect("a provided workload replaces the default", () =>
    Effect.gen(function* () {
      const tiny: Workload.WorkloadService = { ...Workload.mnist, paramCount: () => 4 }
      const count = yield* Workload.Workload.useSync((w) => w.paramCount("softmax")).pipe(
        Effect.provideService(Workload.Workload, tiny),
      )
      assert.strictEqual(count, 4)
    }),
  )

  it.effect("MNIST's shard is the one Partition cuts, and a shard that cannot be cut is WorkloadUnavailable", () =>
    Effect.gen(function* () {
      const options = { seed: 1, partition: "iid" as const, shardCount: 4, shardIndex: 2 }
      const local = yield* Workload.mnist.loadLocal(options)
      const { train } = yield* Dataset.split(yield* mnist, { seed: 1 })
      const shard = yield* Partition.shard(train, { kind: "iid", clients: 4, seed: 1, index: 2 })
      assert.strictEqual(local.samples, shard.length)
      const error = yield* Workload.mnist.loadLocal({ ...options, shardIndex: 9 }).pipe(Effect.flip)
      assert.strictEqual(error._tag, "WorkloadUnavailable")
      assert.include(error.reason, "shard index 9")
    }).pipe(Effect.provide(NodeServices.layer)),
  )
})
