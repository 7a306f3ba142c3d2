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
  const first = updates[0]
  if (first === undefined) return yield* new NothingToAggregate({ reason: "no updates" })
  const length = first.weights.length
  let total = 0
  for (let k = 0; k < updates.length; k++) {
    const update = updates[k]!
    if (update.weights.length !== length) {
      return yield* new UpdateLengthMismatch({ index: k, expected: length, actual: update.weights.length })
    }
    if (!Number.isInteger(update.samples) || update.samples < 0) {
      return yield* new InvalidSampleCount({ index: k, samples: update.samples })
    }
    total += update.samples
  }
  if (total === 0) {
    return yield* new NothingToAggregate({ reason: `the ${updates.length} updates declare 0 samples in total` })
  }
  const sum = new Float64Array(length)
  for (const update of updates) {
    if (update.samples === 0) continue
    const share = update.samples / total
    const w = update.weights
    for (let i = 0; i < length; i++) sum[i] = sum[i]! + share * w[i]!
  }
  return Float32Array.from(sum)
})
