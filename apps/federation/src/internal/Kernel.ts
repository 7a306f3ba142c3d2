/**
 * The per-sample numeric core a model supplies, and the batch loops (loss and
 * gradient, evaluation, prediction) shared by every model on top of it.
 *
 * @internal
 */
import * as Dataset from "../Dataset.ts"
import type { Evaluation, LossAndGradient, Model, Name } from "../Model.ts"

/**
 * One model's forward and backward pass over a single image, writing into
 * scratch buffers it owns. `backward` reuses the activations of the
 * immediately preceding `forward` on the same image; the loops below always
 * call them in that order. The functions are synchronous, so two fibers can
 * share a kernel without interleaving inside a pass.
 *
 * @internal
 */
export interface Kernel {
  readonly paramCount: number
  /** Written by `forward`: the 10 class scores (pre-softmax). */
  readonly logits: Float64Array
  readonly forward: (params: Float32Array, images: Float32Array, offset: number) => void
  /** Adds d(loss)/d(params) for `delta` = d(loss)/d(logits) into `grad`. */
  readonly backward: (
    params: Float32Array,
    images: Float32Array,
    offset: number,
    delta: Float64Array,
    grad: Float32Array,
  ) => void
}

/**
 * Softmax of `logits` into `probs`; returns the cross-entropy of `label`
 * computed as log-sum-exp minus the label's logit (stable for large logits).
 *
 * @internal
 */
export const softmaxCrossEntropy = (logits: Float64Array, label: number, probs: Float64Array): number => {
  let max = logits[0]!
  for (let c = 1; c < logits.length; c++) if (logits[c]! > max) max = logits[c]!
  let sum = 0
  for (let c = 0; c < logits.length; c++) {
    const e = Math.exp(logits[c]! - max)
    probs[c] = e
    sum += e
  }
  const inv = 1 / sum
  for (let c = 0; c < logits.length; c++) probs[c] = probs[c]! * inv
  return Math.log(sum) + max - logits[label]!
}

const argmax = (values: Float64Array): number => {
  let best = 0
  for (let c = 1; c < values.length; c++) if (values[c]! > values[best]!) best = c
  return best
}

/**
 * Collects the non-zero pixels of the image at `offset` (MNIST is ~80 %
 * background) so the first layer touches only the rows that matter.
 *
 * @internal
 */
export const nonZeros = (images: Float32Array, offset: number, indices: Int32Array, values: Float64Array): number => {
  let n = 0
  for (let j = 0; j < Dataset.pixels; j++) {
    const v = images[offset + j]!
    if (v !== 0) {
      indices[n] = j
      values[n] = v
      n++
    }
  }
  return n
}

/**
 * Builds the public {@link Model} from a kernel.
 *
 * @internal
 */
export const toModel = (options: {
  readonly name: Name
  readonly architecture: string
  readonly kernel: Kernel
  readonly init: (seed: number) => Float32Array
}): Model => {
  const { kernel } = options
  const probs = new Float64Array(Dataset.classes)

  const lossAndGradient = (
    params: Float32Array,
    data: Dataset.Dataset,
    indices: ArrayLike<number>,
    grad: Float32Array = new Float32Array(kernel.paramCount),
  ): LossAndGradient => {
    grad.fill(0)
    const n = indices.length
    if (n === 0) return { loss: 0, grad }
    const scale = 1 / n
    let loss = 0
    for (let s = 0; s < n; s++) {
      const index = indices[s]!
      const offset = index * Dataset.pixels
      const label = data.labels[index]!
      kernel.forward(params, data.images, offset)
      loss += softmaxCrossEntropy(kernel.logits, label, probs)
      // d(mean CE)/d(logits) = (p - onehot) / n, scaled here so grad is the mean.
      probs[label] = probs[label]! - 1
      for (let c = 0; c < probs.length; c++) probs[c] = probs[c]! * scale
      kernel.backward(params, data.images, offset, probs, grad)
    }
    return { loss: loss * scale, grad }
  }

  const evaluate = (params: Float32Array, data: Dataset.Dataset, indices?: ArrayLike<number>): Evaluation => {
    const n = indices === undefined ? data.count : indices.length
    if (n === 0) return { accuracy: 0, loss: 0, count: 0 }
    let correct = 0
    let loss = 0
    for (let s = 0; s < n; s++) {
      const index = indices === undefined ? s : indices[s]!
      const label = data.labels[index]!
      kernel.forward(params, data.images, index * Dataset.pixels)
      loss += softmaxCrossEntropy(kernel.logits, label, probs)
      if (argmax(kernel.logits) === label) correct++
    }
    return { accuracy: correct / n, loss: loss / n, count: n }
  }

  const predict = (params: Float32Array, data: Dataset.Dataset, indices?: ArrayLike<number>): Uint8Array => {
    const n = indices === undefined ? data.count : indices.length
    const out = new Uint8Array(n)
    for (let s = 0; s < n; s++) {
      const index = indices === undefined ? s : indices[s]!
      kernel.forward(params, data.images, index * Dataset.pixels)
      out[s] = argmax(kernel.logits)
    }
    return out
  }

  return {
    name: options.name,
    architecture: options.architecture,
    paramCount: kernel.paramCount,
    init: options.init,
    lossAndGradient,
    evaluate,
    predict,
  }
}
