import type * as Dataset from "../src/Dataset.ts"

/** A float64 loss of flat parameters: the independent reference a model's gradient is checked against. */
export type ReferenceLoss = (params: Float64Array, data: Dataset.Dataset, indices: ReadonlyArray<number>) => number

/** Mean cross-entropy of rows of logits, in float64 via log-sum-exp. */
export const crossEntropy = (logits: ReadonlyArray<number>, label: number): number => {
  const max = Math.max(...logits)
  const sum = logits.reduce((s, z) => s + Math.exp(z - max), 0)
  return Math.log(sum) + max - logits[label]!
}

export interface Mismatch {
  readonly coordinate: number
  readonly analytic: number
  readonly numeric: number
}

/**
 * Central differences (h = 1e-5, float64) of `reference` at `coordinates`
 * compared with `grad`; returns the coordinates where
 * |analytic − numeric| > 1e-4 · max(|analytic|, |numeric|) + 1e-7.
 */
export const compareGradient = (
  reference: ReferenceLoss,
  params: Float32Array,
  grad: Float32Array,
  data: Dataset.Dataset,
  indices: ReadonlyArray<number>,
  coordinates: Iterable<number>,
): Array<Mismatch> => {
  const h = 1e-5
  const x = Float64Array.from(params)
  const mismatches: Array<Mismatch> = []
  for (const i of coordinates) {
    const original = x[i]!
    x[i] = original + h
    const up = reference(x, data, indices)
    x[i] = original - h
    const down = reference(x, data, indices)
    x[i] = original
    const numeric = (up - down) / (2 * h)
    const analytic = grad[i]!
    if (Math.abs(analytic - numeric) > 1e-4 * Math.max(Math.abs(analytic), Math.abs(numeric)) + 1e-7) {
      mismatches.push({ coordinate: i, analytic, numeric })
    }
  }
  return mismatches
}

/** `count` distinct coordinates below `size`, deterministic. */
export const sampleCoordinates = (size: number, count: number, next: () => number): Array<number> => {
  const chosen = new Set<number>()
  while (chosen.size < Math.min(count, size)) chosen.add(Math.floor(next() * size))
  return [...chosen]
}
