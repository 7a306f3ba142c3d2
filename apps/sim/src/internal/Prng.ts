/**
 * The sim's seeded numbers: mulberry32 (a 32-bit generator, enough for
 * fault schedules and a toy model) and a seed mixer, so every draw is a pure
 * function of the run's seed.
 *
 * @internal
 */

/** A generator of uniform numbers in [0, 1) from `seed`; the same seed gives the same sequence. */
export const make = (seed: number): (() => number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** One seed from several integers (a murmur3-style finaliser over each), for independent streams. */
export const mix = (...parts: ReadonlyArray<number>): number => {
  let h = 0x9e3779b9
  for (const part of parts) {
    h = Math.imul(h ^ (part >>> 0), 0x85ebca6b)
    h ^= h >>> 13
    h = Math.imul(h, 0xc2b2ae35)
    h ^= h >>> 16
  }
  return h >>> 0
}

/** An integer in [min, max] drawn from `next`. */
export const between = (next: () => number, min: number, max: number): number =>
  min + Math.floor(next() * (max - min + 1))
