/**
 * Federated averaging (McMahan et al. 2017): the new global model is the
 * sample-weighted mean of the clients' models, `w = Σ_k (n_k / n) · w_k`.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"

/**
 * One client's contribution to a round: its trained parameters and how many
 * samples it trained on.
 *
 * @since 0.1.0
 * @category models
 */
export interface Update {
  readonly weights: Float32Array
  readonly samples: number
}

/**
 * There is nothing to average: no updates, or updates whose sample counts
 * add up to 0.
 *
 * @since 0.1.0
 * @category errors
 */
export class NothingToAggregate extends Schema.TaggedError<NothingToAggregate>()("NothingToAggregate", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `nothing to aggregate: ${this.reason}`
  }
}

/**
 * Update `index` has a different number of parameters than update 0.
 *
 * @since 0.1.0
 * @category errors
 */
export class UpdateLengthMismatch extends Schema.TaggedError<UpdateLengthMismatch>()("UpdateLengthMismatch", {
  index: Schema.Number,
  expected: Schema.Number,
  actual: Schema.Number,
}) {
  override get message(): string {
    return `update ${this.index} has ${this.actual} parameters, update 0 has ${this.expected}`
  }
}

/**
 * Update `index` declares a sample count that is negative, fractional or not
 * finite.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSampleCount extends Schema.TaggedError<InvalidSampleCount>()("InvalidSampleCount", {
  index: Schema.Number,
  samples: Schema.Number,
}) {
  override get message(): string {
    return `update ${this.index} declares ${this.samples} samples (must be a non-negative integer)`
  }
}

/**
 * Every way {@link aggregate} can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type FedAvgError = NothingToAggregate | UpdateLengthMismatch | InvalidSampleCount

// Checks the updates (equal lengths, non-negative integer sample counts, a positive total) and
// returns each one's share n_k / n. Both reducers below take their shares from here and add with
// `accumulate`, so they do the same float64 operations in the same order.
const shares = <U extends { readonly samples: number }>(
  updates: ReadonlyArray<U>,
  lengthOf: (update: U) => number,
): Effect.Effect<ReadonlyArray<number>, FedAvgError> => {
  const first = updates[0]
  if (first === undefined) return Effect.fail(new NothingToAggregate({ reason: "no updates" }))
  const length = lengthOf(first)
  let total = 0
  for (let k = 0; k < updates.length; k++) {
    const update = updates[k]!
    const actual = lengthOf(update)
    if (actual !== length) return Effect.fail(new UpdateLengthMismatch({ index: k, expected: length, actual }))
    if (!Number.isInteger(update.samples) || update.samples < 0) {
      return Effect.fail(new InvalidSampleCount({ index: k, samples: update.samples }))
    }
    total += update.samples
  }
  if (total === 0) {
    return Effect.fail(new NothingToAggregate({ reason: `the ${updates.length} updates declare 0 samples in total` }))
  }
  return Effect.succeed(updates.map((update) => update.samples / total))
}

// sum[i] += share · w[i] for the first `length` parameters: the one place FedAvg adds.
const accumulate = (sum: Float64Array, share: number, w: Float32Array, length: number): void => {
  for (let i = 0; i < length; i++) sum[i] = sum[i]! + share * w[i]!
}

/**
 * The sample-weighted mean of the updates, as a new array (inputs are not
 * modified). Sums run in float64 and are rounded once, so the result does not
 * depend on how many clients took part beyond float32 rounding. An update
 * with 0 samples is allowed and has no influence.
 *
 * @example
 * ```ts
 * const global = yield* FedAvg.aggregate([
 *   { weights: a, samples: 600 },
 *   { weights: b, samples: 200 }, // counts a third as much as a
 * ])
 * ```
 *
 * @since 0.1.0
 * @category aggregation
 */
export const aggregate = Effect.fnUntraced(function* (
  updates: ReadonlyArray<Update>,
): Effect.fn.Return<Float32Array, FedAvgError> {
  const share = yield* shares(updates, (update) => update.weights.length)
  const length = updates[0]!.weights.length
  const sum = new Float64Array(length)
  for (let k = 0; k < updates.length; k++) {
    if (updates[k]!.samples === 0) continue
    accumulate(sum, share[k]!, updates[k]!.weights, length)
  }
  return Float32Array.from(sum)
})

/**
 * One client's contribution to {@link aggregateChunked}: its sample count,
 * its parameter count, and `read(start, length)`, which returns its weights
 * `[start, start + length)` (from a file, a socket, a database). The array
 * returned is only read before the next call of any update's `read`, so every
 * reader may return a view of one shared buffer.
 *
 * @since 0.2.0
 * @category models
 */
export interface ChunkedUpdate<E = never, R = never> {
  readonly samples: number
  readonly length: number
  readonly read: (start: number, length: number) => Effect.Effect<Float32Array, E, R>
}

/**
 * Options of {@link aggregateChunked}: `chunkSize`, the parameters reduced
 * at a time (default 262 144, i.e. 1 MiB of float32 read per update and a
 * 2 MiB float64 accumulator).
 *
 * @since 0.2.0
 * @category models
 */
export interface ChunkedOptions {
  readonly chunkSize?: number | undefined
}

/**
 * {@link aggregate} without holding the updates: the model is reduced
 * `chunkSize` parameters at a time, each chunk read from every update in the
 * order given, added into one float64 chunk accumulator and rounded once into
 * the result. Memory is the result plus one chunk, whatever the number of
 * updates. Each parameter gets exactly the operations `aggregate` does, in
 * the same order (`Σ_k (n_k / n) · w_k` in float64 from 0, skipping 0-sample
 * updates, one rounding to float32), so for the same updates in the same
 * order the two are bit-identical whatever `chunkSize`. Fails as `aggregate`
 * does, with `UpdateLengthMismatch` when a read returns another length than
 * asked, and with the readers' own errors.
 *
 * @example
 * ```ts
 * const global = yield* FedAvg.aggregateChunked(
 *   files.map((file) => ({ samples: file.samples, length: paramCount, read: file.read })),
 *   { chunkSize: 65_536 },
 * )
 * ```
 *
 * @since 0.2.0
 * @category aggregation
 */
export const aggregateChunked = Effect.fnUntraced(function* <E, R>(
  updates: ReadonlyArray<ChunkedUpdate<E, R>>,
  options: ChunkedOptions = {},
): Effect.fn.Return<Float32Array, FedAvgError | E, R> {
  const share = yield* shares(updates, (update) => update.length)
  const length = updates[0]!.length
  const chunkSize = Math.max(1, Math.min(options.chunkSize ?? 262_144, length))
  const result = new Float32Array(length)
  const sum = new Float64Array(chunkSize)
  for (let start = 0; start < length; start += chunkSize) {
    const size = Math.min(chunkSize, length - start)
    sum.fill(0)
    for (let k = 0; k < updates.length; k++) {
      const update = updates[k]!
      if (update.samples === 0) continue
      const w = yield* update.read(start, size)
      if (w.length !== size) {
        return yield* new UpdateLengthMismatch({ index: k, expected: length, actual: start + w.length })
      }
      accumulate(sum, share[k]!, w, size)
    }
    // TypedArray#set rounds each float64 to float32 exactly as Float32Array.from does.
    result.set(size === chunkSize ? sum : sum.subarray(0, size), start)
  }
  return result
})
