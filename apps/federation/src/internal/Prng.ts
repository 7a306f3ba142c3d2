/**
 * A small seeded PRNG (xoshiro128**, seeded through splitmix32) in plain
 * 32-bit integer arithmetic.
 *
 * Why not Effect's `Random`: shards are computed independently by every client
 * process from `--seed`, so the sequence must be fixed by this file alone, not
 * by whatever algorithm a future `effect` release ships. Integer operations
 * (`Math.imul`, shifts) are bit-exact on every platform; floats derived from
 * them use one exact division by 2^32.
 *
 * @internal
 */

/** @internal */
export interface Prng {
  /** Next unsigned 32-bit integer. */
  readonly nextU32: () => number
  /** Next float in [0, 1), 32 bits of resolution. */
  readonly nextFloat: () => number
  /** Next integer in [0, bound), `bound` at most 2^32. */
  readonly nextInt: (bound: number) => number
}

const splitmix32 = (state: number): { readonly value: number; readonly state: number } => {
  const next = (state + 0x9e3779b9) | 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  z ^= z >>> 16
  return { value: z >>> 0, state: next }
}

/**
 * Hashes any number of integers (seeds, round numbers, client indices) into one
 * 32-bit seed, so sub-streams (`seed`, `round 3`, `client 2`) are independent.
 *
 * @internal
 */
export const mixSeed = (...parts: ReadonlyArray<number>): number => {
  let h = 0x811c9dc5
  for (const part of parts) {
    // Fold the high bits of seeds beyond 2^32 in as well.
    const lo = part >>> 0
    const hi = Math.floor(part / 4294967296) >>> 0
    h = splitmix32(h ^ lo).value
    h = splitmix32(h ^ hi).value
  }
  return h
}

/** @internal */
export const make = (seed: number): Prng => {
  let state = mixSeed(seed)
  const words: Array<number> = []
  for (let i = 0; i < 4; i++) {
    const r = splitmix32(state)
    state = r.state
    words.push(r.value)
  }
  let s0 = words[0]! | 0
  let s1 = words[1]! | 0
  let s2 = words[2]! | 0
  let s3 = words[3]! | 0
  if ((s0 | s1 | s2 | s3) === 0) s0 = 1

  const nextU32 = (): number => {
    const m = Math.imul(s1, 5)
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0
    const t = s1 << 9
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = (s3 << 11) | (s3 >>> 21)
    return result
  }
  const nextFloat = (): number => nextU32() / 4294967296
  const nextInt = (bound: number): number => Math.floor(nextFloat() * bound)
  return { nextU32, nextFloat, nextInt }
}

/**
 * Fisher–Yates shuffle in place.
 *
 * @internal
 */
export const shuffle = <A extends { length: number; [index: number]: number }>(prng: Prng, array: A): A => {
  for (let i = array.length - 1; i > 0; i--) {
    const j = prng.nextInt(i + 1)
    const tmp = array[i]!
    array[i] = array[j]!
    array[j] = tmp
  }
  return array
}

/**
 * `[0, 1, …, n-1]` as a Uint32Array.
 *
 * @internal
 */
export const range = (n: number): Uint32Array => {
  const out = new Uint32Array(n)
  for (let i = 0; i < n; i++) out[i] = i
  return out
}
