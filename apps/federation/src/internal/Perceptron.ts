/**
 * The multilayer perceptron behind both `TwoNN` and `Mlp`: 784 → H1 → … →
 * HL → 10 with ReLU hidden layers, its flat parameter layout, its seeded
 * initialisation and its per-sample kernel.
 *
 * Layout: for each layer in order, its weight matrix stored input-major (row
 * `i` = the weights leaving input unit `i`, `fanIn × fanOut` values), then
 * its bias (`fanOut`). For hidden widths `[H, H]` this is exactly the 2NN's
 * `W1, b1, W2, b2, W3, b3`. Input-major rows keep every inner loop contiguous
 * and let the forward and backward passes skip blank pixels and inactive
 * ReLUs, which is most of the work on MNIST.
 *
 * The loops below perform the 2NN kernel's float64 operations in the same
 * order for any depth (a layer at a time, bias first, inputs ascending), so a
 * 2-hidden-layer network gives the 2NN's results bit for bit; keep it that
 * way (`test/Mlp.test.ts` pins the 2NN's hashes).
 *
 * @internal
 */
import * as Dataset from "../Dataset.ts"
import type { Model, Name } from "../Model.ts"
import * as Kernel from "./Kernel.ts"
import * as Prng from "./Prng.ts"

/**
 * One fully connected layer: `fanIn × fanOut` weights at `weights`, then
 * `fanOut` biases at `bias`.
 *
 * @internal
 */
export interface Layer {
  readonly fanIn: number
  readonly fanOut: number
  readonly weights: number
  readonly bias: number
}

/**
 * Where every layer's parameters live in the flat vector.
 *
 * @internal
 */
export interface Layout {
  readonly layers: ReadonlyArray<Layer>
  readonly paramCount: number
}

/**
 * The layout of 784 → `hidden[0]` → … → 10. Widths are not checked here
 * (`Mlp.checkShape` does).
 *
 * @internal
 */
export const layout = (hidden: ReadonlyArray<number>): Layout => {
  const widths = [Dataset.pixels, ...hidden, Dataset.classes]
  const layers: Array<Layer> = []
  let offset = 0
  for (let i = 1; i < widths.length; i++) {
    const fanIn = widths[i - 1]!
    const fanOut = widths[i]!
    layers.push({ fanIn, fanOut, weights: offset, bias: offset + fanIn * fanOut })
    offset += fanIn * fanOut + fanOut
  }
  return { layers, paramCount: offset }
}

// Activations of the previous layer → this layer's pre-activations: bias, then every active
// input's row added in ascending order (the 2NN's order, for bit-identical sums).
const dense = (p: Float32Array, layer: Layer, input: Float64Array, out: Float64Array): void => {
  const n = layer.fanOut
  const bias = layer.bias
  for (let m = 0; m < n; m++) out[m] = p[bias + m]!
  const fanIn = layer.fanIn
  for (let k = 0; k < fanIn; k++) {
    const v = input[k]!
    if (v === 0) continue
    const row = layer.weights + k * n
    for (let m = 0; m < n; m++) out[m] = out[m]! + v * p[row + m]!
  }
}

const relu = (values: Float64Array): void => {
  for (let m = 0; m < values.length; m++) if (values[m]! < 0) values[m] = 0
}

const makeKernel = (l: Layout): Kernel.Kernel => {
  const layers = l.layers
  const last = layers.length - 1
  const first = layers[0]!
  const nzIndex = new Int32Array(Dataset.pixels)
  const nzValue = new Float64Array(Dataset.pixels)
  // outputs[i]: layer i's activations (post-ReLU for hidden layers, the logits for the last).
  const outputs = layers.map((layer) => new Float64Array(layer.fanOut))
  // deltas[i]: d(loss)/d(pre-activation) of hidden layer i, zero where its ReLU was off.
  const deltas = layers.slice(0, last).map((layer) => new Float64Array(layer.fanOut))
  let nnz = 0

  const forward = (p: Float32Array, images: Float32Array, offset: number): void => {
    nnz = Kernel.nonZeros(images, offset, nzIndex, nzValue)
    // First layer: only the rows of non-blank pixels contribute.
    const h = outputs[0]!
    const n = first.fanOut
    for (let m = 0; m < n; m++) h[m] = p[first.bias + m]!
    for (let t = 0; t < nnz; t++) {
      const row = first.weights + nzIndex[t]! * n
      const v = nzValue[t]!
      for (let m = 0; m < n; m++) h[m] = h[m]! + v * p[row + m]!
    }
    if (last > 0) relu(h)
    for (let i = 1; i <= last; i++) {
      dense(p, layers[i]!, outputs[i - 1]!, outputs[i]!)
      if (i < last) relu(outputs[i]!)
    }
  }

  const backward = (
    p: Float32Array,
    _images: Float32Array,
    _offset: number,
    delta: Float64Array,
    g: Float32Array,
  ): void => {
    // From the output layer down to the second: weight and bias gradients, and the delta of
    // the layer below through its ReLU (an inactive unit passes nothing back).
    let dOut = delta
    for (let i = last; i >= 1; i--) {
      const layer = layers[i]!
      const input = outputs[i - 1]!
      const dIn = deltas[i - 1]!
      const n = layer.fanOut
      const bias = layer.bias
      for (let m = 0; m < n; m++) g[bias + m] = g[bias + m]! + dOut[m]!
      const fanIn = layer.fanIn
      for (let k = 0; k < fanIn; k++) {
        const v = input[k]!
        if (v === 0) {
          dIn[k] = 0
          continue
        }
        const row = layer.weights + k * n
        let back = 0
        for (let m = 0; m < n; m++) {
          const d = dOut[m]!
          g[row + m] = g[row + m]! + v * d
          back += p[row + m]! * d
        }
        dIn[k] = back
      }
      dOut = dIn
    }
    // First layer: only the rows of non-blank pixels receive gradient.
    const n = first.fanOut
    for (let m = 0; m < n; m++) g[first.bias + m] = g[first.bias + m]! + dOut[m]!
    for (let t = 0; t < nnz; t++) {
      const row = first.weights + nzIndex[t]! * n
      const v = nzValue[t]!
      for (let m = 0; m < n; m++) g[row + m] = g[row + m]! + v * dOut[m]!
    }
  }

  return { paramCount: l.paramCount, logits: outputs[last]!, forward, backward }
}

// He-uniform (limit sqrt(6 / fan_in)) for the ReLU layers, Glorot-uniform
// (sqrt(6 / (fan_in + fan_out))) for the output layer, zero biases; one PRNG
// stream drawn layer by layer, so the 2NN's first draws are its W1, W2, W3.
const initialise =
  (l: Layout) =>
  (seed: number): Float32Array => {
    const params = new Float32Array(l.paramCount)
    const prng = Prng.make(Prng.mixSeed(seed, 0x2a2a))
    const last = l.layers.length - 1
    l.layers.forEach((layer, i) => {
      const limit = Math.sqrt(6 / (i < last ? layer.fanIn : layer.fanIn + layer.fanOut))
      const end = layer.weights + layer.fanIn * layer.fanOut
      for (let j = layer.weights; j < end; j++) params[j] = (prng.nextFloat() * 2 - 1) * limit
    })
    return params
  }

/**
 * A perceptron {@link Model} with the given hidden widths, published under
 * `name`.
 *
 * @internal
 */
export const make = (name: Name, hidden: ReadonlyArray<number>): Model => {
  const l = layout(hidden)
  return Kernel.toModel({
    name,
    architecture: `784-${hidden.join("-")}-10 ReLU`,
    kernel: makeKernel(l),
    init: initialise(l),
  })
}
