/**
 * Labelled 28×28 grey-scale digits in flat typed arrays, and the seeded
 * train/test split every process of a federation computes identically.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import * as Prng from "./internal/Prng.ts"

/**
 * Pixels per image (28 × 28). Image `i` occupies
 * `images[i * pixels … (i + 1) * pixels)`.
 *
 * @since 0.1.0
 * @category constants
 */
export const pixels = 784

/**
 * Number of classes (digits 0–9).
 *
 * @since 0.1.0
 * @category constants
 */
export const classes = 10

/**
 * A set of labelled images: `images` holds `count × 784` pixel intensities in
 * [0, 1] row after row, `labels[i]` is the digit of image `i`. Everything
 * downstream (models, partitions, training) reads these arrays in place;
 * subsets are index arrays (`Uint32Array`) or copies made by {@link subset}.
 *
 * @since 0.1.0
 * @category models
 */
export interface Dataset {
  readonly images: Float32Array
  readonly labels: Uint8Array
  readonly count: number
}

/**
 * The images and labels do not describe one dataset: `images.length` is not
 * `784 × labels.length`, or a label is outside 0–9.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidDataset extends Schema.TaggedError<InvalidDataset>()("InvalidDataset", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid dataset: ${this.reason}`
  }
}

/**
 * A split was asked for more samples than the dataset holds, or for a negative
 * or fractional size.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSplit extends Schema.TaggedError<InvalidSplit>()("InvalidSplit", {
  trainSize: Schema.Number,
  testSize: Schema.Number,
  available: Schema.Number,
}) {
  override get message(): string {
    return `cannot split ${this.available} samples into ${this.trainSize} train + ${this.testSize} test (sizes must be non-negative integers summing to at most ${this.available})`
  }
}

/**
 * Builds a {@link Dataset} from flat arrays after checking that they fit
 * together (784 pixels per label, labels 0–9). The arrays are used as they
 * are, not copied.
 *
 * @example
 * ```ts
 * const data = yield* Dataset.make(new Float32Array(2 * 784), Uint8Array.of(3, 7))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  images: Float32Array,
  labels: Uint8Array,
): Effect.fn.Return<Dataset, InvalidDataset> {
  if (images.length !== labels.length * pixels) {
    return yield* new InvalidDataset({
      reason: `${images.length} pixel values for ${labels.length} labels (expected ${labels.length * pixels})`,
    })
  }
  for (let i = 0; i < labels.length; i++) {
    if (labels[i]! >= classes) {
      return yield* new InvalidDataset({ reason: `label ${labels[i]} at index ${i} is not a digit 0-9` })
    }
  }
  return { images, labels, count: labels.length }
})

/**
 * Copies the samples at `indices` (in that order) into a new, contiguous
 * {@link Dataset}. Use it to materialise a split or a client's shard so that
 * training reads memory sequentially. Indices must lie in `[0, data.count)`.
 *
 * @since 0.1.0
 * @category combinators
 */
export const subset = (data: Dataset, indices: ArrayLike<number>): Dataset => {
  const n = indices.length
  const images = new Float32Array(n * pixels)
  const labels = new Uint8Array(n)
  for (let i = 0; i < n; i++) {
    const src = indices[i]!
    images.set(data.images.subarray(src * pixels, (src + 1) * pixels), i * pixels)
    labels[i] = data.labels[src]!
  }
  return { images, labels, count: n }
}

/**
 * How many samples of each digit `data` holds (over `indices` when given):
 * a length-10 array.
 *
 * @since 0.1.0
 * @category getters
 */
export const classCounts = (data: Dataset, indices?: ArrayLike<number>): Array<number> => {
  const counts = new Array<number>(classes).fill(0)
  if (indices === undefined) {
    for (let i = 0; i < data.count; i++) counts[data.labels[i]!]!++
  } else {
    for (let i = 0; i < indices.length; i++) counts[data.labels[indices[i]!]!]!++
  }
  return counts
}

/**
 * Options of {@link split}. Defaults: 8,000 train, 2,000 test, not
 * stratified. `seed` is required because every process must cut the same
 * split.
 *
 * @since 0.1.0
 * @category models
 */
export interface SplitOptions {
  readonly seed: number
  readonly trainSize?: number
  readonly testSize?: number
  /** Keep each digit's share the same in train and test (largest-remainder rounding). */
  readonly stratify?: boolean
}

/**
 * A train and a test set cut from one dataset; disjoint.
 *
 * @since 0.1.0
 * @category models
 */
export interface Split {
  readonly train: Dataset
  readonly test: Dataset
}

/**
 * Default sizes of {@link split}: the 10,000 digits of the `mnist` package cut
 * 80/20.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultSplit = { trainSize: 8000, testSize: 2000 } as const

/**
 * Cuts a seeded, deterministic train/test split (copies, see {@link subset}).
 * The same data and options give byte-identical sets in every process, which
 * is what lets clients compute their own shard. Samples beyond
 * `trainSize + testSize` are left out, so small sizes give fast test fixtures.
 * With `stratify`, each digit contributes to train and test in proportion to
 * its share of the whole (sizes stay exact).
 *
 * @example
 * ```ts
 * const { train, test } = yield* Dataset.split(mnist, { seed: 1 }) // 8,000 / 2,000
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const split = Effect.fnUntraced(function* (
  data: Dataset,
  options: SplitOptions,
): Effect.fn.Return<Split, InvalidSplit> {
  const trainSize = options.trainSize ?? defaultSplit.trainSize
  const testSize = options.testSize ?? defaultSplit.testSize
  if (
    !Number.isInteger(trainSize) ||
    !Number.isInteger(testSize) ||
    trainSize < 0 ||
    testSize < 0 ||
    trainSize + testSize > data.count
  ) {
    return yield* new InvalidSplit({ trainSize, testSize, available: data.count })
  }
  const prng = Prng.make(Prng.mixSeed(options.seed, 0x5b117))
  if (options.stratify !== true) {
    const order = Prng.shuffle(prng, Prng.range(data.count))
    return {
      train: subset(data, order.subarray(0, trainSize)),
      test: subset(data, order.subarray(trainSize, trainSize + testSize)),
    }
  }
  const byClass = Array.from({ length: classes }, () => [] as number[])
  for (let i = 0; i < data.count; i++) byClass[data.labels[i]!]!.push(i)
  for (const members of byClass) Prng.shuffle(prng, members)
  const counts = byClass.map((members) => members.length)
  const testPerClass = apportion(counts, testSize)
  const remaining = counts.map((n, c) => n - testPerClass[c]!)
  const trainPerClass = apportion(remaining, trainSize)
  const train: number[] = []
  const test: number[] = []
  byClass.forEach((members, c) => {
    const t = testPerClass[c]!
    test.push(...members.slice(0, t))
    train.push(...members.slice(t, t + trainPerClass[c]!))
  })
  return {
    train: subset(data, Prng.shuffle(prng, Uint32Array.from(train))),
    test: subset(data, Prng.shuffle(prng, Uint32Array.from(test))),
  }
})

// Largest-remainder apportionment of `total` over `weights`, never exceeding a weight.
const apportion = (weights: ReadonlyArray<number>, total: number): Array<number> => {
  const sum = weights.reduce((a, b) => a + b, 0)
  if (sum === 0) return weights.map(() => 0)
  const exact = weights.map((w) => (w * total) / sum)
  const out = exact.map(Math.floor)
  let left = total - out.reduce((a, b) => a + b, 0)
  const order = exact.map((e, i) => ({ i, r: e - Math.floor(e) })).sort((a, b) => b.r - a.r || a.i - b.i)
  for (let k = 0; left > 0 && k < order.length * 2; k++) {
    const i = order[k % order.length]!.i
    if (out[i]! < weights[i]!) {
      out[i]!++
      left--
    }
  }
  return out
}
