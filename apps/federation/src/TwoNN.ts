/**
 * McMahan et al.'s "2NN": a perceptron with two hidden ReLU layers,
 * 784-200-200-10 (199,210 parameters).
 *
 * Parameter layout (each weight matrix stored input-major, row `i` = the
 * weights leaving unit `i`): `W1` (784 × H), `b1` (H), `W2` (H × H), `b2` (H),
 * `W3` (H × 10), `b3` (10). Input-major rows keep every inner loop contiguous
 * and let the forward and backward passes skip blank pixels and inactive
 * ReLUs, which is most of the work on MNIST.
 *
 * The 2NN is the two-hidden-layer case of `Mlp` (the same kernel, layout and
 * initialisation), kept under its own name: `"2nn"` and `"mlp:200,200"` give
 * bit-identical parameters, gradients and training runs.
 *
 * @since 0.1.0
 */
import * as Perceptron from "./internal/Perceptron.ts"
import type { Model } from "./Model.ts"

/**
 * Options of {@link make}. `hidden` is the width of both hidden layers;
 * default 200 as in the paper.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly hidden?: number
}

/**
 * The paper's hidden width, 200.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultHidden = 200

/**
 * Number of parameters for hidden width `hidden`: 199,210 for the default 200.
 *
 * @since 0.1.0
 * @category getters
 */
export const paramCount = (hidden: number = defaultHidden): number => Perceptron.layout([hidden, hidden]).paramCount

/**
 * A 2NN {@link Model} with two hidden layers of `hidden` units (default 200).
 * `init(seed)` draws He-uniform weights for the ReLU layers and
 * Glorot-uniform for the output layer, zero biases.
 *
 * @example
 * ```ts
 * const model = TwoNN.make()           // 784-200-200-10
 * const tiny = TwoNN.make({ hidden: 8 }) // for tests
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Model => {
  const hidden = options.hidden ?? defaultHidden
  return Perceptron.make("2nn", [hidden, hidden])
}
