/**
 * The contract every model of the federation implements: a flat
 * `Float32Array` parameter vector (the unit FedAvg averages and the wire
 * carries), seeded initialisation, mean cross-entropy loss with its gradient,
 * and evaluation.
 *
 * @since 0.1.0
 */
import { Effect, Result, Schema } from "effect"
import type * as Dataset from "./Dataset.ts"
import * as Mlp from "./Mlp.ts"
import * as Softmax from "./Softmax.ts"
import * as TwoNN from "./TwoNN.ts"

/**
 * A model name: `"softmax"`, `"2nn"` or `` `mlp:${widths}` `` (the type of
 * {@link Name}; the template admits strings {@link Name} refuses, so decode
 * names from users).
 *
 * @since 0.1.0
 * @category models
 */
export type Name = "softmax" | "2nn" | `mlp:${string}`

/**
 * A model name is not one the federation knows: not `softmax`, `2nn` or
 * `mlp:W1,W2,…`, or an `mlp:` whose widths break a rule of {@link Mlp}.
 * `reason` says what is wrong, naming the hidden layer. Final.
 *
 * @since 0.4.0
 * @category errors
 */
export class InvalidModelName extends Schema.TaggedError<InvalidModelName>()("InvalidModelName", {
  name: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid model name "${this.name}": ${this.reason}`
  }
}

type Spec =
  | { readonly kind: "softmax" }
  | { readonly kind: "2nn" }
  | { readonly kind: "mlp"; readonly hidden: ReadonlyArray<number> }

const mlpPrefix = "mlp:"
const digits = /^[0-9]+$/

// The one reading of a model name: `Name`, `parseName` and `make` all go through it.
const parse = (input: string): Result.Result<Spec, InvalidModelName> => {
  if (input === "softmax" || input === "2nn") return Result.succeed({ kind: input })
  const fail = (reason: string) => Result.fail(new InvalidModelName({ name: input, reason }))
  if (!input.startsWith(mlpPrefix)) {
    return fail("expected softmax, 2nn or mlp:W1,W2,… (hidden-layer widths, e.g. mlp:200,200)")
  }
  const list = input.slice(mlpPrefix.length)
  if (list === "") return fail("no hidden-layer widths after mlp: (e.g. mlp:200,200)")
  const entries = list.split(",")
  const hidden: Array<number> = []
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i]!
    const layer = `hidden layer ${i + 1}`
    if (entry === "") return fail(`${layer} has no width (an empty entry between commas)`)
    if (!digits.test(entry)) return fail(`${layer} has width "${entry}", not a positive integer (digits only)`)
    // One spelling per shape, so equal models have equal names (a resumed job compares them).
    if (entry.length > 1 && entry.startsWith("0")) {
      return fail(`${layer} has width "${entry}" with a leading zero (write ${Number(entry)})`)
    }
    hidden.push(Number(entry))
  }
  return Result.match(Mlp.checkShape(hidden), {
    onFailure: (error) => fail(error.reason),
    onSuccess: (shape) => Result.succeed({ kind: "mlp", hidden: shape }),
  })
}

/**
 * Succeeds with `input` as a {@link Name} when it names a model, fails with
 * {@link InvalidModelName} saying why not otherwise.
 *
 * @example
 * ```ts
 * Model.parseName("mlp:4096,3072") // Success
 * Model.parseName("mlp:200,,200")  // Failure: hidden layer 2 has no width (an empty entry between commas)
 * ```
 *
 * @since 0.4.0
 * @category parsing
 */
export const parseName = (input: string): Result.Result<Name, InvalidModelName> =>
  Result.map(parse(input), () => input as Name)

/**
 * The models the apps can choose, as a Schema so CLI flags and protocol
 * messages decode them:
 *
 * - `"softmax"`: multinomial logistic regression, 784→10 (the apps' default);
 * - `"2nn"`: McMahan et al.'s 784-200-200-10 ReLU perceptron;
 * - `"mlp:W1,W2,…"`: a ReLU perceptron 784 → W1 → W2 → … → 10 with any
 *   number (1 to 64) of hidden layers, each 1 to 65,536 wide, at most 512 Mi
 *   parameters (`mlp:200,200` is the 2NN bit for bit).
 *
 * A refused name fails with the reason of {@link InvalidModelName}.
 *
 * @since 0.1.0
 * @category models
 */
export const Name = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter(
      (input: string) =>
        Result.match(parse(input), { onFailure: (error) => error.message, onSuccess: () => true as const }),
      { expected: "softmax, 2nn or mlp:W1,W2,…" },
      true,
    ),
  ),
  Schema.refine((input: string): input is Name => Result.isSuccess(parse(input))),
)

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
 * A new instance of the named model (each instance owns its scratch
 * buffers). Throws {@link InvalidModelName} for a name {@link Name} refuses
 * (one that was never decoded, such as `"mlp:0"` written in code).
 *
 * @example
 * ```ts
 * const model = Model.make("2nn")
 * const params = model.init(42) // 199,210 parameters
 * const big = Model.make("mlp:4096,3072") // 15,832,074 parameters, 60.4 MiB
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (name: Name): Model => {
  const spec = Result.getOrThrow(parse(name))
  switch (spec.kind) {
    case "softmax":
      return Softmax.make()
    case "2nn":
      return TwoNN.make()
    case "mlp":
      return Mlp.make({ hidden: spec.hidden })
  }
}

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
