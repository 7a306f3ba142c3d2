/**
 * FedAvg run in-process, with no network: every round each of the K clients
 * trains from the global model on its shard, the server averages the results
 * weighted by sample count and evaluates on the test set. The reference for
 * what the networked apps should reach, and the engine of `results.js`.
 *
 * @since 0.1.0
 */
import { Clock, Effect } from "effect"
import type * as Dataset from "./Dataset.ts"
import * as FedAvg from "./FedAvg.ts"
import * as Model from "./Model.ts"
import * as Partition from "./Partition.ts"
import * as Training from "./Training.ts"

/**
 * A simulated run. All clients take part in every round (C = 1).
 *
 * | option         | default    | meaning                                   |
 * | -------------- | ---------- | ----------------------------------------- |
 * | `model`        | `softmax`  | which {@link Model.Name}                  |
 * | `partition`    | `iid`      | which {@link Partition.Kind}              |
 * | `clients`      | 4          | K                                         |
 * | `rounds`       | 10         | R                                         |
 * | `epochs`       | 1          | local epochs E                            |
 * | `maxSteps`     | none       | cap on local SGD steps per round          |
 * | `batchSize`    | 10         | local minibatch B                         |
 * | `learningRate` | 0.05       | local SGD step size                       |
 * | `seed`         | —          | shards, initial model, local shuffles     |
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly seed: number
  readonly model?: Model.Name
  readonly partition?: Partition.Kind
  readonly clients?: number
  readonly rounds?: number
  readonly epochs?: number
  readonly maxSteps?: number | undefined
  readonly batchSize?: number
  readonly learningRate?: number
}

/**
 * What one round produced: test accuracy and loss of the new global model,
 * and the wall-clock time spent training (all clients) and evaluating.
 *
 * @since 0.1.0
 * @category models
 */
export interface Round {
  readonly round: number
  readonly accuracy: number
  readonly loss: number
  readonly trainMillis: number
  readonly evalMillis: number
}

/**
 * The result of {@link run}: one {@link Round} per round (1-based), the
 * accuracy of the initial model, and the final global parameters.
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly initial: Model.Evaluation
  readonly rounds: ReadonlyArray<Round>
  readonly params: Float32Array
}

/**
 * Runs FedAvg for `rounds` rounds and returns the test accuracy after each.
 * Deterministic in `seed` (timings aside). `onRound` is called after each
 * round, e.g. to log progress.
 *
 * @example
 * ```ts
 * const split = yield* Dataset.split(yield* Mnist.load, { seed: 1 })
 * const { rounds } = yield* Simulation.run(split, { seed: 1, partition: "noniid", rounds: 10 })
 * ```
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fnUntraced(function* <E = never, R = never>(
  split: Dataset.Split,
  options: Options,
  onRound?: (round: Round) => Effect.Effect<void, E, R>,
): Effect.fn.Return<
  Result,
  E | Partition.InvalidPartition | Training.InvalidTrainingOptions | Model.ParamCountMismatch | FedAvg.FedAvgError,
  R
> {
  const model = Model.make(options.model ?? "softmax")
  const clients = options.clients ?? 4
  const rounds = options.rounds ?? 10
  const shards = yield* Partition.shards(split.train, {
    kind: options.partition ?? "iid",
    clients,
    seed: options.seed,
  })
  let global = model.init(options.seed)
  const initial = model.evaluate(global, split.test)
  const history: Array<Round> = []
  for (let round = 1; round <= rounds; round++) {
    const started = yield* Clock.currentTimeMillis
    const updates: Array<FedAvg.Update> = []
    for (let k = 0; k < clients; k++) {
      const trained = yield* Training.train(model, global, split.train, {
        indices: shards[k]!,
        seed: Training.roundSeed(options.seed, round, k),
        ...(options.epochs === undefined ? {} : { epochs: options.epochs }),
        maxSteps: options.maxSteps,
        ...(options.batchSize === undefined ? {} : { batchSize: options.batchSize }),
        ...(options.learningRate === undefined ? {} : { learningRate: options.learningRate }),
      })
      updates.push({ weights: trained.params, samples: trained.samples })
    }
    global = yield* FedAvg.aggregate(updates)
    const trainedAt = yield* Clock.currentTimeMillis
    const evaluation = model.evaluate(global, split.test)
    const evaluatedAt = yield* Clock.currentTimeMillis
    const result: Round = {
      round,
      accuracy: evaluation.accuracy,
      loss: evaluation.loss,
      trainMillis: trainedAt - started,
      evalMillis: evaluatedAt - trainedAt,
    }
    history.push(result)
    if (onRound !== undefined) yield* onRound(result)
  }
  return { initial, rounds: history, params: global }
})
