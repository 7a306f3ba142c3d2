/**
 * What a federation learns, as the apps use it: the size and seeded start of
 * the model a name stands for, the server's held-out evaluation and a
 * client's local training on its shard. The apps never call `Model.make`,
 * `Mnist.load` or `Training.train` themselves; they ask the `Workload` in
 * context, whose default ({@link mnist}) is exactly that. A deterministic
 * simulation (`apps/sim`) provides a cheap one instead, so it measures the
 * fault-tolerance code rather than SGD, and loads no MNIST.
 *
 * @since 0.5.0
 */
import { Context, Effect, type FileSystem, type Path, Schema } from "effect"
import * as Dataset from "./Dataset.ts"
import * as Mnist from "./Mnist.ts"
import * as Model from "./Model.ts"
import * as Partition from "./Partition.ts"
import * as Training from "./Training.ts"

/**
 * The workload's data could not be loaded (MNIST unreadable, a split or a
 * shard that cannot be cut); `reason` says why. Final.
 *
 * @since 0.5.0
 * @category errors
 */
export class WorkloadUnavailable extends Schema.TaggedError<WorkloadUnavailable>()("WorkloadUnavailable", {
  reason: Schema.String,
}) {
  override get message(): string {
    return this.reason
  }
}

/**
 * How a client trains one round, as the server's welcome and the round say:
 * the `round`, its training `seed` (`Training.roundSeed(seed, round, shard)`),
 * the local epochs, their optional cap on steps, the minibatch size and the
 * learning rate.
 *
 * @since 0.5.0
 * @category models
 */
export interface RoundTraining {
  readonly round: number
  readonly seed: number
  readonly epochs: number
  readonly maxSteps?: number | undefined
  readonly batchSize: number
  readonly learningRate: number
}

/**
 * A client's share of the work: `samples`, the size of its shard (FedAvg's
 * `n_k`, declared at join), and `train`, which trains the global `params` of
 * model `model` on that shard (a fresh array; the input is not modified).
 * Fails with `InvalidTrainingOptions` for settings it cannot train with and
 * `ParamCountMismatch` for a vector of the wrong length.
 *
 * @since 0.5.0
 * @category models
 */
export interface LocalWork {
  readonly samples: number
  readonly train: (
    model: Model.Name,
    params: Float32Array,
    options: RoundTraining,
  ) => Effect.Effect<Training.Trained, Training.InvalidTrainingOptions | Model.ParamCountMismatch>
}

/**
 * The server's held-out evaluation: `evaluate(model, params)`, accuracy
 * (0–1) and mean loss of a global model.
 *
 * @since 0.5.0
 * @category models
 */
export interface Evaluation {
  readonly evaluate: (model: Model.Name, params: Float32Array) => Model.Evaluation
}

/**
 * The settings that decide a client's shard; every process of a federation
 * must use the same `seed`, `partition` and `shardCount`.
 *
 * @since 0.5.0
 * @category models
 */
export interface ShardOptions {
  readonly seed: number
  readonly partition: Partition.Kind
  readonly shardCount: number
  readonly shardIndex: number
}

/**
 * The workload as the apps use it:
 *
 * - `paramCount(model)`: the length of the model's parameter vector (what
 *   FedAvg averages and the wire carries); both sides must agree;
 * - `init(model, seed)`: the first global model, deterministic in `seed`;
 * - `loadEvaluation(seed)`: the server's held-out data, loaded once;
 * - `loadLocal(options)`: a client's shard, loaded once.
 *
 * A `Context.Reference` whose default is {@link mnist}: every composition
 * trains on MNIST without wiring; a simulation provides its own.
 *
 * @since 0.5.0
 * @category services
 */
export interface WorkloadService {
  readonly paramCount: (model: Model.Name) => number
  readonly init: (model: Model.Name, seed: number) => Float32Array
  readonly loadEvaluation: (
    seed: number,
  ) => Effect.Effect<Evaluation, WorkloadUnavailable, FileSystem.FileSystem | Path.Path>
  readonly loadLocal: (
    options: ShardOptions,
  ) => Effect.Effect<LocalWork, WorkloadUnavailable, FileSystem.FileSystem | Path.Path>
}

// One instance per model name: a model owns its scratch buffers, and the apps train one model.
const modelCache = () => {
  const models = new Map<string, Model.Model>()
  return (name: Model.Name): Model.Model => {
    const known = models.get(name)
    if (known !== undefined) return known
    const made = Model.make(name)
    models.set(name, made)
    return made
  }
}

/**
 * Evaluation of the MNIST models on `test`.
 *
 * @since 0.5.0
 * @category constructors
 */
export const evaluationOf = (test: Dataset.Dataset): Evaluation => {
  const modelOf = modelCache()
  return { evaluate: (model, params) => modelOf(model).evaluate(params, test) }
}

/**
 * Local SGD of the MNIST models (`Training.train`) on the samples `shard`
 * of `train` (all of them when omitted).
 *
 * @since 0.5.0
 * @category constructors
 */
export const localWorkOf = (train: Dataset.Dataset, shard?: Uint32Array): LocalWork => {
  const indices = shard ?? Uint32Array.from({ length: train.count }, (_, i) => i)
  const modelOf = modelCache()
  return {
    samples: indices.length,
    train: (model, params, options) =>
      Training.train(modelOf(model), params, train, {
        seed: options.seed,
        epochs: options.epochs,
        maxSteps: options.maxSteps,
        batchSize: options.batchSize,
        learningRate: options.learningRate,
        indices,
      }),
  }
}

const unavailable = (error: { readonly message: string }) => new WorkloadUnavailable({ reason: error.message })

/**
 * Today's workload: the models of `Model.make`, MNIST split with the
 * federation's seed (`Dataset.split`: 8,000 train / 2,000 test), the test
 * split for the server, `Partition.shard` of the train split for a client,
 * and `Training.train` on it.
 *
 * @since 0.5.0
 * @category constructors
 */
export const mnist: WorkloadService = {
  paramCount: (model) => Model.make(model).paramCount,
  init: (model, seed) => Model.make(model).init(seed),
  loadEvaluation: (seed) =>
    Effect.gen(function* () {
      const { test } = yield* Dataset.split(yield* Mnist.load, { seed })
      return evaluationOf(test)
    }).pipe(Effect.mapError(unavailable)),
  loadLocal: (options) =>
    Effect.gen(function* () {
      const { train } = yield* Dataset.split(yield* Mnist.load, { seed: options.seed })
      const shard = yield* Partition.shard(train, {
        kind: options.partition,
        clients: options.shardCount,
        seed: options.seed,
        index: options.shardIndex,
      })
      return localWorkOf(train, shard)
    }).pipe(Effect.mapError(unavailable)),
}

/**
 * The workload in context; {@link mnist} unless one is provided
 * (`Effect.provideService(Workload, mine)` or `Layer.succeed(Workload, mine)`).
 *
 * @since 0.5.0
 * @category services
 */
export const Workload: Context.Reference<WorkloadService> = Context.Reference<WorkloadService>(
  "@fedguard/federation/Workload",
  { defaultValue: () => mnist },
)
