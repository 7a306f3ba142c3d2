/**
 * The contract every model of the federation implements: a flat
 * `Float32Array` parameter vector (the unit FedAvg averages and the wire
 * carries), seeded initialisation, mean cross-entropy loss with its gradient,
 * and evaluation.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type * as Dataset from "./Dataset.ts"
import * as Softmax from "./Softmax.ts"
import * as TwoNN from "./TwoNN.ts"

/**
 * The models the apps can choose: `"softmax"` (multinomial logistic
 * regression, 784→10, the default) and `"2nn"` (McMahan et al.'s
 * 784-200-200-10 ReLU perceptron). A Schema so CLI flags and protocol
 * messages decode it.
 *
 * @since 0.1.0
 * @category models
 */
export const Name = Schema.Literals(["softmax", "2nn"])

/**
 * A model name, `"softmax"` or `"2nn"` (the type of {@link Name}).
 *
 * @since 0.1.0
 * @category models
 */
export type Name = typeof Name.Type

/**
 * Mean cross-entropy of a minibatch and its gradient with respect to every
 * parameter (same layout as the parameters).
 *
 * @since 0.1.0
 * @category models
 */
export interface LossAndGradient {
  readonly loss: number
  readonly grad: Float32Array
}

/**
 * Accuracy (fraction correct, 0–1) and mean cross-entropy over `count`
 * samples. All three are 0 for an empty set.
 *
 * @since 0.1.0
 * @category models
 */
export interface Evaluation {
  readonly accuracy: number
  readonly loss: number
  readonly count: number
}

/**
 * A model over a flat parameter vector of `paramCount` float32 values.
 * The numeric functions are plain synchronous code (the hot loops) and share
 * scratch buffers inside the model instance; they neither allocate per sample
 * nor check `params.length` (use {@link checkParams} at boundaries).
 *
 * - `init(seed)`: fresh parameters, deterministic in `seed`.
 * - `lossAndGradient(params, data, indices, grad?)`: mean cross-entropy over
 *   the samples `indices` of `data`; writes the gradient into `grad` (a new
 *   array if omitted) and returns it.
 * - `evaluate(params, data, indices?)`: accuracy and loss over all of `data`
 *   or the given samples.
 * - `predict(params, data, indices?)`: the most likely digit per sample.
 *
 * @since 0.1.0
 * @category models
 */
export interface Model {
  readonly name: Name
  /** Human-readable layer sizes, e.g. `"784-200-200-10 ReLU"`. */
  readonly architecture: string
  readonly paramCount: number
  readonly init: (seed: number) => Float32Array
  readonly lossAndGradient: (
    params: Float32Array,
    data: Dataset.Dataset,
    indices: ArrayLike<number>,
    grad?: Float32Array,
  ) => LossAndGradient
  readonly evaluate: (params: Float32Array, data: Dataset.Dataset, indices?: ArrayLike<number>) => Evaluation
  readonly predict: (params: Float32Array, data: Dataset.Dataset, indices?: ArrayLike<number>) => Uint8Array
}

/**
 * A parameter vector does not have the length the model needs (a weights
 * message for another model, or a truncated one). Final.
 *
 * @since 0.1.0
 * @category errors
 */
export class ParamCountMismatch extends Schema.TaggedError<ParamCountMismatch>()("ParamCountMismatch", {
  model: Schema.String,
  expected: Schema.Number,
  actual: Schema.Number,
}) {
  override get message(): string {
    return `model ${this.model} has ${this.expected} parameters, got a vector of ${this.actual}`
  }
}

/**
 * A new instance of the named model with its default sizes (each instance
 * owns its scratch buffers).
 *
 * @example
 * ```ts
 * const model = Model.make("2nn")
 * const params = model.init(42) // 199,210 parameters
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: Name): Model => (name === "softmax" ? Softmax.make() : TwoNN.make())

/**
 * Succeeds with `params` when it has exactly `model.paramCount` values, fails
 * with {@link ParamCountMismatch} otherwise.
 *
 * @since 0.1.0
 * @category guards
 */
export const checkParams = (model: Model, params: Float32Array): Effect.Effect<Float32Array, ParamCountMismatch> =>
  params.length === model.paramCount
    ? Effect.succeed(params)
    : Effect.fail(new ParamCountMismatch({ model: model.name, expected: model.paramCount, actual: params.length }))
