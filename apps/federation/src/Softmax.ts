/**
 * Softmax (multinomial logistic) regression, 784 → 10: the default model,
 * fast enough to train in milliseconds per client round.
 *
 * Parameter layout: `W` (784 × 10, row `j` = the 10 class weights of pixel
 * `j`) then `b` (10): 7,850 values. Rows per pixel keep the inner loop over
 * the 10 classes contiguous and let blank pixels be skipped entirely.
 *
 * @since 0.1.0
 */
import * as Dataset from "./Dataset.ts"
import * as Kernel from "./internal/Kernel.ts"
import type { Model } from "./Model.ts"

const inputs = Dataset.pixels
const outputs = Dataset.classes
const biasOffset = inputs * outputs

/**
 * 7,850: 784 × 10 weights + 10 biases.
 *
 * @since 0.1.0
 * @category constants
 */
export const paramCount = biasOffset + outputs

const makeKernel = (): Kernel.Kernel => {
  const logits = new Float64Array(outputs)
  const nzIndex = new Int32Array(inputs)
  const nzValue = new Float64Array(inputs)
  let nnz = 0
  return {
    paramCount,
    logits,
    forward: (params, images, offset) => {
      nnz = Kernel.nonZeros(images, offset, nzIndex, nzValue)
      for (let c = 0; c < outputs; c++) logits[c] = params[biasOffset + c]!
      for (let t = 0; t < nnz; t++) {
        const row = nzIndex[t]! * outputs
        const v = nzValue[t]!
        for (let c = 0; c < outputs; c++) logits[c] = logits[c]! + v * params[row + c]!
      }
    },
    backward: (_params, _images, _offset, delta, grad) => {
      for (let t = 0; t < nnz; t++) {
        const row = nzIndex[t]! * outputs
        const v = nzValue[t]!
        for (let c = 0; c < outputs; c++) grad[row + c] = grad[row + c]! + v * delta[c]!
      }
      for (let c = 0; c < outputs; c++) grad[biasOffset + c] = grad[biasOffset + c]! + delta[c]!
    },
  }
}

/**
 * A softmax-regression {@link Model}. `init` returns zeros whatever the seed
 * (the loss is convex, so the start point does not matter and all clients
 * agree on it).
 *
 * @example
 * ```ts
 * const model = Softmax.make()
 * const { loss, grad } = model.lossAndGradient(model.init(0), train, [0, 1, 2])
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): Model =>
  Kernel.toModel({
    name: "softmax",
    architecture: "784-10 softmax regression",
    kernel: makeKernel(),
    init: () => new Float32Array(paramCount),
  })
