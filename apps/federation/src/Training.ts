/**
 * Local training on one client: minibatch SGD over the client's samples,
 * starting from the global parameters of the round.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type * as Dataset from "./Dataset.ts"
import * as Prng from "./internal/Prng.ts"
import * as Model from "./Model.ts"

/**
 * Hyper-parameters of {@link train}:
 *
 * | option         | default | meaning                                                |
 * | -------------- | ------- | ------------------------------------------------------ |
 * | `epochs`       | 1       | passes over the local samples (McMahan et al.'s E)     |
 * | `maxSteps`     | none    | cap on SGD steps (minibatches) across all epochs       |
 * | `batchSize`    | 10      | samples per SGD step (the paper's B = 10)              |
 * | `learningRate` | 0.05    | SGD step size                                          |
 * | `seed`         | —       | shuffles the samples each epoch; required              |
 * | `indices`      | all     | which samples of `data` are this client's              |
 * | `yieldEvery`   | 16      | SGD steps between yields to other fibers (heartbeats)  |
 *
 * `maxSteps` is the usual knob when a local epoch is too costly (a large
 * model, a large shard): training stops after that many minibatches, even
 * mid-epoch. Absent (or `undefined`), the epochs run in full, exactly as
 * without the option.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly seed: number
  readonly epochs?: number
  readonly maxSteps?: number | undefined
  readonly batchSize?: number
  readonly learningRate?: number
  readonly indices?: ArrayLike<number>
  readonly yieldEvery?: number
}

/**
 * Defaults of {@link Options}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = { epochs: 1, batchSize: 10, learningRate: 0.05, yieldEvery: 16 } as const

/**
 * The outcome of local training: the new parameters (a fresh array; the input
 * is not modified), how many samples they were trained on (FedAvg's `n_k`:
 * the client's sample count, also when `maxSteps` stopped it before it saw
 * them all), the SGD steps taken and the mean minibatch loss of the last
 * epoch (of its steps taken, when `maxSteps` cut it short).
 *
 * @since 0.1.0
 * @category models
 */
export interface Trained {
  readonly params: Float32Array
  readonly samples: number
  readonly steps: number
  readonly loss: number
}

/**
 * A training option is out of range (`field` says which, `reason` why).
 * Final.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidTrainingOptions extends Schema.TaggedError<InvalidTrainingOptions>()("InvalidTrainingOptions", {
  field: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid training option ${this.field}: ${this.reason}`
  }
}

const validate = Effect.fnUntraced(function* (options: Options, available: number) {
  const epochs = options.epochs ?? defaults.epochs
  const batchSize = options.batchSize ?? defaults.batchSize
  const learningRate = options.learningRate ?? defaults.learningRate
  const yieldEvery = options.yieldEvery ?? defaults.yieldEvery
  if (!Number.isInteger(epochs) || epochs < 0) {
    return yield* new InvalidTrainingOptions({ field: "epochs", reason: `${epochs} is not a non-negative integer` })
  }
  const maxSteps = options.maxSteps ?? Number.POSITIVE_INFINITY
  if (options.maxSteps !== undefined && (!Number.isInteger(maxSteps) || maxSteps < 1)) {
    return yield* new InvalidTrainingOptions({ field: "maxSteps", reason: `${maxSteps} is not a positive integer` })
  }
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    return yield* new InvalidTrainingOptions({ field: "batchSize", reason: `${batchSize} is not a positive integer` })
  }
  if (!Number.isFinite(learningRate) || learningRate <= 0) {
    return yield* new InvalidTrainingOptions({
      field: "learningRate",
      reason: `${learningRate} is not a positive number`,
    })
  }
  if (!Number.isInteger(yieldEvery) || yieldEvery < 1) {
    return yield* new InvalidTrainingOptions({ field: "yieldEvery", reason: `${yieldEvery} is not a positive integer` })
  }
  const indices = options.indices
  if (indices !== undefined) {
    for (let i = 0; i < indices.length; i++) {
      const index = indices[i]!
      if (!Number.isInteger(index) || index < 0 || index >= available) {
        return yield* new InvalidTrainingOptions({
          field: "indices",
          reason: `index ${index} at position ${i} is outside the ${available} samples`,
        })
      }
    }
  }
  return { epochs, maxSteps, batchSize, learningRate, yieldEvery }
})

/**
 * Runs `epochs` passes of minibatch SGD (`params ← params − lr · ∇`, mean
 * cross-entropy per batch, the last batch of an epoch may be smaller) over the
 * chosen samples of `data`, reshuffled each epoch from `seed`, stopping after
 * `maxSteps` minibatches when that comes first. The same inputs
 * give bit-identical outputs. Yields to other fibers every `yieldEvery`
 * steps, so a client's heartbeat keeps beating while it trains, and can be
 * interrupted there.
 *
 * @example
 * ```ts
 * const { params, samples } = yield* Training.train(model, global, train, {
 *   indices: shard, epochs: 1, batchSize: 10, learningRate: 0.05, seed: round,
 * })
 * ```
 *
 * @since 0.1.0
 * @category training
 */
export const train = Effect.fnUntraced(function* (
  model: Model.Model,
  params: Float32Array,
  data: Dataset.Dataset,
  options: Options,
): Effect.fn.Return<Trained, InvalidTrainingOptions | Model.ParamCountMismatch> {
  yield* Model.checkParams(model, params)
  const { epochs, maxSteps, batchSize, learningRate, yieldEvery } = yield* validate(options, data.count)
  const order = options.indices === undefined ? Prng.range(data.count) : Uint32Array.from(options.indices)
  const n = order.length
  const weights = params.slice()
  const grad = new Float32Array(model.paramCount)
  const prng = Prng.make(Prng.mixSeed(options.seed, 0x7a1))
  let steps = 0
  let lastEpochLoss = 0
  for (let epoch = 0; epoch < epochs && steps < maxSteps; epoch++) {
    Prng.shuffle(prng, order)
    let epochLoss = 0
    let batches = 0
    for (let start = 0; start < n && steps < maxSteps; start += batchSize) {
      const batch = order.subarray(start, Math.min(n, start + batchSize))
      epochLoss += model.lossAndGradient(weights, data, batch, grad).loss
      for (let i = 0; i < weights.length; i++) weights[i] = weights[i]! - learningRate * grad[i]!
      batches++
      steps++
      if (steps % yieldEvery === 0) yield* Effect.yieldNow
    }
    lastEpochLoss = batches === 0 ? 0 : epochLoss / batches
  }
  return { params: weights, samples: n, steps, loss: lastEpochLoss }
})

/**
 * The training seed of client `client` in round `round` of a run seeded
 * with `seed`: distinct streams for every (round, client) pair, identical in
 * every process. The simulation uses it; the apps should too, so a networked
 * run reproduces an in-process one.
 *
 * @since 0.1.0
 * @category training
 */
export const roundSeed = (seed: number, round: number, client: number): number => Prng.mixSeed(seed, round, client)
