/**
 * A multilayer perceptron of any depth and width, 784 → H1 → … → HL → 10
 * with ReLU hidden layers: the model to choose when the size of the model is
 * the point (a 20–100 MiB federation on a laptop, a transport under load).
 * Its name is `mlp:H1,H2,…` (`Model.Name`); the 2NN is `mlp:200,200`.
 *
 * Parameter layout (the 2NN's, for any depth): for each layer in order, its
 * weight matrix stored input-major (row `i` = the weights leaving unit `i`),
 * then its bias: `W1` (784 × H1), `b1` (H1), `W2` (H1 × H2), `b2` (H2), …,
 * `W_out` (HL × 10), `b_out` (10). Initialisation: He-uniform weights for the
 * ReLU layers, Glorot-uniform for the output layer, zero biases, drawn layer
 * by layer from one stream of the seed, so `mlp:200,200` and `2nn` start
 * from, train to and send the same float32 values bit for bit.
 *
 * Sizes, in float32 bytes on the wire: `mlp:200,200` 199,210 parameters
 * (0.76 MiB); `mlp:1024,1024` 1.86 M (7.1 MiB); `mlp:2048,2048` 5.82 M
 * (22.2 MiB); `mlp:4096,3072` 15.83 M (60.4 MiB); `mlp:4096,3302`
 * 16,776,684 (64.00 MiB, the widest 784-4096-W-10 within 64 MiB);
 * `mlp:4096,4096` 20.04 M (76.4 MiB).
 *
 * @since 0.4.0
 */
import { Result, Schema } from "effect"
import * as Perceptron from "./internal/Perceptron.ts"
import type { Model } from "./Model.ts"

/**
 * The widest hidden layer allowed, 65,536 units.
 *
 * @since 0.4.0
 * @category constants
 */
export const maxWidth = 65_536

/**
 * The most hidden layers allowed, 64 (plain ReLU perceptrons stop training
 * well long before that).
 *
 * @since 0.4.0
 * @category constants
 */
export const maxHiddenLayers = 64

/**
 * The most parameters a perceptron may have, 512 Mi (536,870,912): 2 GiB of
 * float32, well inside one `Float32Array` and one wire transfer's length
 * field.
 *
 * @since 0.4.0
 * @category constants
 */
export const maxParams = 512 * 1024 * 1024

/**
 * Options of {@link make}: the hidden-layer widths, input side first
 * (`[200, 200]` is the 2NN).
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly hidden: ReadonlyArray<number>
}

/**
 * The hidden widths break a rule: none given, more than
 * {@link maxHiddenLayers}, a width that is not an integer from 1 to
 * {@link maxWidth}, or more than {@link maxParams} parameters in all.
 * `reason` says which, naming the layer (1 = nearest the input). Final.
 *
 * @since 0.4.0
 * @category errors
 */
export class InvalidShape extends Schema.TaggedError<InvalidShape>()("InvalidMlpShape", {
  hidden: Schema.Array(Schema.Number),
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid MLP hidden widths [${this.hidden.join(", ")}]: ${this.reason}`
  }
}

const grouped = new Intl.NumberFormat("en-US")

/**
 * Number of parameters of 784 → `hidden` → 10: Σ (fan_in + 1) × fan_out over
 * the layers. 199,210 for `[200, 200]`.
 *
 * @since 0.4.0
 * @category getters
 */
export const paramCount = (hidden: ReadonlyArray<number>): number => Perceptron.layout(hidden).paramCount

/**
 * Succeeds with `hidden` when it is a shape {@link make} accepts, fails with
 * {@link InvalidShape} naming the first rule it breaks otherwise.
 *
 * @example
 * ```ts
 * Mlp.checkShape([4096, 3072]) // Success: 15,832,074 parameters (60.4 MiB)
 * Mlp.checkShape([0])          // Failure: hidden layer 1 has width 0; …
 * ```
 *
 * @since 0.4.0
 * @category guards
 */
export const checkShape = (hidden: ReadonlyArray<number>): Result.Result<ReadonlyArray<number>, InvalidShape> => {
  const fail = (reason: string) => Result.fail(new InvalidShape({ hidden: [...hidden], reason }))
  if (hidden.length === 0) return fail("no hidden layers (an MLP needs at least one width)")
  if (hidden.length > maxHiddenLayers) {
    return fail(`${hidden.length} hidden layers, more than the ${maxHiddenLayers} allowed`)
  }
  for (let i = 0; i < hidden.length; i++) {
    const width = hidden[i]!
    if (!Number.isInteger(width) || width < 1 || width > maxWidth) {
      return fail(
        `hidden layer ${i + 1} has width ${width}; a width is an integer from 1 to ${grouped.format(maxWidth)}`,
      )
    }
  }
  const count = paramCount(hidden)
  if (count > maxParams) {
    const gib = (count * 4) / 1024 ** 3
    return fail(
      `${grouped.format(count)} parameters (${gib.toFixed(1)} GiB of float32), more than the ${grouped.format(maxParams)} (2 GiB) allowed`,
    )
  }
  return Result.succeed(hidden)
}

/**
 * The {@link Model.Name} of the perceptron with these hidden widths:
 * `mlp:` and the widths joined by commas.
 *
 * @since 0.4.0
 * @category getters
 */
export const nameOf = (hidden: ReadonlyArray<number>): `mlp:${string}` => `mlp:${hidden.join(",")}`

/**
 * A perceptron {@link Model} named `mlp:H1,H2,…` with the given hidden
 * widths. Throws {@link InvalidShape} for a shape {@link checkShape}
 * refuses: check shapes from users first, or decode a `Model.Name` and call
 * `Model.make`.
 *
 * @example
 * ```ts
 * const model = Mlp.make({ hidden: [4096, 3072] }) // 784-4096-3072-10 ReLU, 60.4 MiB
 * const params = model.init(42)
 * ```
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = (options: Options): Model => {
  const hidden = Result.getOrThrow(checkShape(options.hidden))
  return Perceptron.make(nameOf(hidden), hidden)
}
