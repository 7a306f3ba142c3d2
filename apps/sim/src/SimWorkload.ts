/**
 * A cheap, deterministic stand-in for MNIST training, so the simulation
 * measures the fault-tolerance code and not SGD: the "model" is a vector of
 * `dimension` float32 values; each client pulls it a step towards its own
 * optimum (the federation's target plus a small client bias), and the
 * server's "accuracy" is how close the global vector is to the target.
 *
 * Every number is a pure function of the run's seed, the round and the
 * client's shard index (the training seed the real client already derives,
 * `Training.roundSeed(seed, round, shard)`), and local training takes a
 * deterministic amount of *virtual* time (`Effect.sleep` on the TestClock),
 * so rounds last as long as a real one would relative to the heartbeats,
 * without costing wall time.
 *
 * @since 0.1.0
 */
import { Model, type Training, type Workload } from "@fedguard/federation"
import { Effect } from "effect"
import * as Prng from "./internal/Prng.ts"

/**
 * Options: the vector's `dimension` (default 8), the run's `seed`, and the
 * virtual time a client's local training takes, drawn per (round, client)
 * between `trainMs.min` and `trainMs.max` (default 500–1,500 ms).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly seed: number
  readonly dimension?: number | undefined
  readonly trainMs?: { readonly min: number; readonly max: number } | undefined
  /** Told every update a client trains (its shard index, the round, the vector, its samples). */
  readonly onTrained?: ((shardIndex: number, round: number, weights: Float32Array, samples: number) => void) | undefined
}

const vectorOf = (seed: number, dimension: number, scale: number) => {
  const next = Prng.make(seed)
  return Float32Array.from({ length: dimension }, () => (next() * 2 - 1) * scale)
}

/**
 * The samples client `shardIndex` declares (FedAvg's `n_k`): 50 to 149,
 * fixed by the seed.
 *
 * @since 0.1.0
 * @category models
 */
export const samplesOf = (seed: number, shardIndex: number): number =>
  Prng.between(Prng.make(Prng.mix(seed, shardIndex, 0x5a)), 50, 149)

const distance = (a: Float32Array, b: Float32Array) => {
  let sum = 0
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2
  return Math.sqrt(sum)
}

/**
 * The workload: every model name stands for the `dimension`-vector (the
 * settings' `model` is only a label here).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): Workload.WorkloadService => {
  const dimension = options.dimension ?? 8
  const trainMs = options.trainMs ?? { min: 500, max: 1_500 }
  const target = vectorOf(Prng.mix(options.seed, 0x7a), dimension, 1)
  const evaluation: Workload.Evaluation = {
    evaluate: (_model, params) => {
      const d = distance(params, target)
      return { accuracy: 1 / (1 + d), loss: d * d, count: dimension }
    },
  }
  return {
    paramCount: () => dimension,
    init: (_model, seed) => vectorOf(Prng.mix(seed, 0x1), dimension, 1),
    loadEvaluation: () => Effect.succeed(evaluation),
    loadLocal: (shard) =>
      Effect.sync(() => {
        const optimum = vectorOf(Prng.mix(options.seed, shard.shardIndex, 0x0b), dimension, 0.1).map(
          (bias, i) => target[i]! + bias,
        )
        const samples = samplesOf(options.seed, shard.shardIndex)
        return {
          samples,
          train: (model, params, round) =>
            Effect.gen(function* () {
              if (params.length !== dimension)
                return yield* new Model.ParamCountMismatch({ model, expected: dimension, actual: params.length })
              const next = Prng.make(round.seed)
              yield* Effect.sleep(Prng.between(next, trainMs.min, trainMs.max))
              const step = Math.min(1, round.learningRate * 10)
              const trained = params.map((w, i) => w + step * (optimum[i]! - w) + (next() - 0.5) * 1e-3)
              const loss = distance(trained, optimum) ** 2
              options.onTrained?.(shard.shardIndex, round.round, trained, samples)
              return { params: trained, samples, steps: 1, loss } satisfies Training.Trained
            }),
        } satisfies Workload.LocalWork
      }),
  }
}
