/**
 * What the client and its training worker (`TrainerThread`,
 * `internal/trainerWorker.ts`) exchange over the task agent, and the
 * training faults both trainers apply. Both sides decode what they receive
 * as untrusted: a worker is our own code, but a bug in it must be a typed
 * error on the site, not a wrong model.
 *
 * - `load` task: meta {@link LoadMeta} (the shard settings and the faults),
 *   no data; result: the shard's sample count as one little-endian `u32`.
 * - `train` task: meta {@link TrainMeta} (the round's training settings and
 *   the attempt), data: the global parameters as little-endian `f32`s;
 *   result: {@link encodeTrained} (a 24-byte header, then the parameters),
 *   moved back, not copied. A training error is `failTask` with the error
 *   as JSON ({@link encodeTrainFailure}).
 *
 * @since 0.5.0
 */
import { Model, Partition, Training, Weights, type Workload } from "@fedguard/federation"
import { Clock, Effect, Schema } from "effect"
import type { BlockTraining } from "../TrainerSettings.ts"

const NonNegativeInt = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
const PositiveInt = Schema.Int.check(Schema.isGreaterThan(0))

/**
 * The training faults of a worker: `blockTraining` (every attempt at that
 * round busy-loops first) and `crashTraining` (the worker exits on its first
 * attempt at that round, as a crashing native binding would).
 *
 * @since 0.5.0
 */
export const Faults = Schema.Struct({
  blockTraining: Schema.optionalKey(Schema.Struct({ ms: PositiveInt, round: PositiveInt })),
  crashTraining: Schema.optionalKey(PositiveInt),
})

/**
 * @since 0.5.0
 */
export type Faults = typeof Faults.Type

/**
 * The `load` task's meta: which shard, and the faults.
 *
 * @since 0.5.0
 */
export const LoadMeta = Schema.Struct({
  seed: NonNegativeInt,
  partition: Partition.Kind,
  shardCount: PositiveInt,
  shardIndex: NonNegativeInt,
  faults: Faults,
})

/**
 * The `train` task's meta: the model, the round's `Workload.RoundTraining`
 * and which `attempt` at the round this is (0 first).
 *
 * @since 0.5.0
 */
// Only the shape: the values' ranges are `Training.train`'s to check, so a bad one comes back as
// the same `InvalidTrainingOptions` as inline.
export const TrainMeta = Schema.Struct({
  model: Model.Name,
  round: Schema.Int,
  seed: Schema.Int,
  epochs: Schema.Number,
  maxSteps: Schema.optionalKey(Schema.Number),
  batchSize: Schema.Number,
  learningRate: Schema.Number,
  attempt: NonNegativeInt,
})

/**
 * @since 0.5.0
 */
export type TrainMeta = typeof TrainMeta.Type

/**
 * The meta of a `train` task from the trainer's arguments.
 *
 * @since 0.5.0
 */
export const trainMeta = (model: Model.Name, options: Workload.RoundTraining, attempt: number): TrainMeta => ({
  model,
  round: options.round,
  seed: options.seed,
  epochs: options.epochs,
  ...(options.maxSteps === undefined ? {} : { maxSteps: options.maxSteps }),
  batchSize: options.batchSize,
  learningRate: options.learningRate,
  attempt,
})

/**
 * The errors training itself reports, carried as JSON in `failTask`.
 *
 * @since 0.5.0
 */
export const TrainFailure = Schema.Union([Training.InvalidTrainingOptions, Model.ParamCountMismatch])

/**
 * @since 0.5.0
 */
export const encodeTrainFailure = Schema.encodeSync(Schema.fromJsonString(TrainFailure))

/**
 * @since 0.5.0
 */
export const decodeTrainFailure = Schema.decodeUnknownEffect(Schema.fromJsonString(TrainFailure))

const headerBytes = 24

/**
 * A trained round as bytes: `samples`, `steps`, `loss` as three
 * little-endian `f64`s, then the parameters (`Weights.encode`). One fresh
 * buffer, so it can be transferred.
 *
 * @since 0.5.0
 */
export const encodeTrained = (trained: Training.Trained): Uint8Array => {
  const bytes = new Uint8Array(headerBytes + trained.params.byteLength)
  const view = new DataView(bytes.buffer)
  view.setFloat64(0, trained.samples, true)
  view.setFloat64(8, trained.steps, true)
  view.setFloat64(16, trained.loss, true)
  bytes.set(Weights.encode(trained.params), headerBytes)
  return bytes
}

/**
 * The result of a `train` task (its parameters a view of `bytes`, not a
 * copy), or why it is not one: a length other than the header plus
 * `paramCount` parameters, or counts that are not non-negative integers.
 *
 * @since 0.5.0
 */
export const decodeTrained = (bytes: Uint8Array, paramCount: number): Effect.Effect<Training.Trained, string> =>
  Effect.gen(function* () {
    if (bytes.byteLength !== headerBytes + 4 * paramCount) {
      return yield* Effect.fail(
        `${bytes.byteLength} bytes, expected ${headerBytes + 4 * paramCount} for ${paramCount} parameters`,
      )
    }
    const view = new DataView(bytes.buffer, bytes.byteOffset, headerBytes)
    const samples = view.getFloat64(0, true)
    const steps = view.getFloat64(8, true)
    const loss = view.getFloat64(16, true)
    if (!Number.isInteger(samples) || samples < 0 || !Number.isInteger(steps) || steps < 0) {
      return yield* Effect.fail(`samples ${samples} and steps ${steps} must be non-negative integers`)
    }
    const params = yield* Effect.mapError(Weights.decode(bytes.subarray(headerBytes), paramCount), (e) => e.message)
    return { params, samples, steps, loss }
  })

/**
 * The shard's sample count as a `load` result, and back.
 *
 * @since 0.5.0
 */
export const encodeSamples = (samples: number): Uint8Array => {
  const bytes = new Uint8Array(4)
  new DataView(bytes.buffer).setUint32(0, samples, true)
  return bytes
}

/**
 * @since 0.5.0
 */
export const decodeSamples = (bytes: Uint8Array): number | undefined =>
  bytes.byteLength === 4 ? new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true) : undefined

/**
 * The global parameters as bytes in a fresh buffer the caller may transfer
 * (one copy; the caller's array is left as it is, as `LocalWork.train`
 * promises).
 *
 * @since 0.5.0
 */
export const encodeParams = (params: Float32Array): Uint8Array => Weights.encode(params).slice()

// Deliberately synchronous: this is the blocking user code (a native binding, a tight loop) the
// fault stands for. It spins on the Clock, so it blocks exactly as long on every thread.
const busyLoop = (ms: number) =>
  Clock.clockWith((clock) =>
    Effect.sync(() => {
      const until = clock.currentTimeMillisUnsafe() + ms
      while (clock.currentTimeMillisUnsafe() < until) {
        // spin
      }
    }),
  )

/**
 * `train` with the block fault: before round `block.round` trains, its
 * thread busy-loops `block.ms` milliseconds (the inline trainer's and the
 * worker's own thread alike; the same code in both).
 *
 * @since 0.5.0
 */
export const withBlock = <
  E,
  A extends {
    readonly train: (
      model: Model.Name,
      params: Float32Array,
      options: Workload.RoundTraining,
    ) => Effect.Effect<Training.Trained, E>
  },
>(
  work: A,
  block: BlockTraining | undefined,
): A =>
  block === undefined
    ? work
    : {
        ...work,
        train: (model, params, options) =>
          options.round === block.round
            ? Effect.andThen(busyLoop(block.ms), work.train(model, params, options))
            : work.train(model, params, options),
      }
