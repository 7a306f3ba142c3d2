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
 * @since 0.1.0
 */
import * as Dataset from "./Dataset.ts"
import * as Kernel from "./internal/Kernel.ts"
import * as Prng from "./internal/Prng.ts"
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

interface Layout {
  readonly hidden: number
  readonly w1: number
  readonly b1: number
  readonly w2: number
  readonly b2: number
  readonly w3: number
  readonly b3: number
  readonly paramCount: number
}

const layout = (hidden: number): Layout => {
  const w1 = 0
  const b1 = w1 + Dataset.pixels * hidden
  const w2 = b1 + hidden
  const b2 = w2 + hidden * hidden
  const w3 = b2 + hidden
  const b3 = w3 + hidden * Dataset.classes
  return { hidden, w1, b1, w2, b2, w3, b3, paramCount: b3 + Dataset.classes }
}

/**
 * Number of parameters for hidden width `hidden`: 199,210 for the default 200.
 *
 * @since 0.1.0
 * @category getters
 */
export const paramCount = (hidden: number = defaultHidden): number => layout(hidden).paramCount

const makeKernel = (l: Layout): Kernel.Kernel => {
  const H = l.hidden
  const C = Dataset.classes
  const logits = new Float64Array(C)
  const nzIndex = new Int32Array(Dataset.pixels)
  const nzValue = new Float64Array(Dataset.pixels)
  const h1 = new Float64Array(H)
  const h2 = new Float64Array(H)
  const d1 = new Float64Array(H)
  const d2 = new Float64Array(H)
  let nnz = 0

  const forward = (p: Float32Array, images: Float32Array, offset: number): void => {
    nnz = Kernel.nonZeros(images, offset, nzIndex, nzValue)
    for (let m = 0; m < H; m++) h1[m] = p[l.b1 + m]!
    for (let t = 0; t < nnz; t++) {
      const row = l.w1 + nzIndex[t]! * H
      const v = nzValue[t]!
      for (let m = 0; m < H; m++) h1[m] = h1[m]! + v * p[row + m]!
    }
    for (let m = 0; m < H; m++) if (h1[m]! < 0) h1[m] = 0

    for (let m = 0; m < H; m++) h2[m] = p[l.b2 + m]!
    for (let k = 0; k < H; k++) {
      const v = h1[k]!
      if (v === 0) continue
      const row = l.w2 + k * H
      for (let m = 0; m < H; m++) h2[m] = h2[m]! + v * p[row + m]!
    }
    for (let m = 0; m < H; m++) if (h2[m]! < 0) h2[m] = 0

    for (let c = 0; c < C; c++) logits[c] = p[l.b3 + c]!
    for (let k = 0; k < H; k++) {
      const v = h2[k]!
      if (v === 0) continue
      const row = l.w3 + k * C
      for (let c = 0; c < C; c++) logits[c] = logits[c]! + v * p[row + c]!
    }
  }

  const backward = (
    p: Float32Array,
    _images: Float32Array,
    _offset: number,
    delta: Float64Array,
    g: Float32Array,
  ): void => {
    // Output layer; d2 = dL/dh2 through the ReLU (zero where the unit was off).
    for (let c = 0; c < C; c++) g[l.b3 + c] = g[l.b3 + c]! + delta[c]!
    for (let k = 0; k < H; k++) {
      const v = h2[k]!
      if (v === 0) {
        d2[k] = 0
        continue
      }
      const row = l.w3 + k * C
      let back = 0
      for (let c = 0; c < C; c++) {
        g[row + c] = g[row + c]! + v * delta[c]!
        back += p[row + c]! * delta[c]!
      }
      d2[k] = back
    }
    // Second hidden layer; d1 = dL/dh1 through the ReLU.
    for (let m = 0; m < H; m++) g[l.b2 + m] = g[l.b2 + m]! + d2[m]!
    for (let k = 0; k < H; k++) {
      const v = h1[k]!
      if (v === 0) {
        d1[k] = 0
        continue
      }
      const row = l.w2 + k * H
      let back = 0
      for (let m = 0; m < H; m++) {
        const d = d2[m]!
        g[row + m] = g[row + m]! + v * d
        back += p[row + m]! * d
      }
      d1[k] = back
    }
    // First layer: only the rows of non-blank pixels receive gradient.
    for (let m = 0; m < H; m++) g[l.b1 + m] = g[l.b1 + m]! + d1[m]!
    for (let t = 0; t < nnz; t++) {
      const row = l.w1 + nzIndex[t]! * H
      const v = nzValue[t]!
      for (let m = 0; m < H; m++) g[row + m] = g[row + m]! + v * d1[m]!
    }
  }

  return { paramCount: l.paramCount, logits, forward, backward }
}

// He-uniform (limit sqrt(6 / fan_in)) for the ReLU layers, Glorot-uniform for
// the output layer, zero biases.
const fill = (prng: Prng.Prng, params: Float32Array, from: number, count: number, limit: number): void => {
  for (let i = 0; i < count; i++) params[from + i] = (prng.nextFloat() * 2 - 1) * limit
}

const initialise =
  (l: Layout) =>
  (seed: number): Float32Array => {
    const H = l.hidden
    const params = new Float32Array(l.paramCount)
    const prng = Prng.make(Prng.mixSeed(seed, 0x2a2a))
    fill(prng, params, l.w1, Dataset.pixels * H, Math.sqrt(6 / Dataset.pixels))
    fill(prng, params, l.w2, H * H, Math.sqrt(6 / H))
    fill(prng, params, l.w3, H * Dataset.classes, Math.sqrt(6 / (H + Dataset.classes)))
    return params
  }

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
  const l = layout(options.hidden ?? defaultHidden)
  return Kernel.toModel({
    name: "2nn",
    architecture: `784-${l.hidden}-${l.hidden}-10 ReLU`,
    kernel: makeKernel(l),
    init: initialise(l),
  })
}
