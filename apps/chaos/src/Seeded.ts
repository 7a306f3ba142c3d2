/**
 * Seeded draws for a run's fault plan: one `Random` generator per seed (and
 * per `stream`, so concurrent peers of one run draw independent, repeatable
 * sequences), read synchronously while a plan or a garbage frame is built.
 * The same seed gives the same plan, which is what makes a failing seed
 * replayable.
 *
 * @since 0.1.0
 */
import { Effect, Random } from "effect"

/**
 * A seeded source of numbers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Draw {
  /** A number in `[low, high)`. */
  readonly between: (low: number, high: number) => number
  /** An integer in `[low, high]`. */
  readonly int: (low: number, high: number) => number
  readonly pick: <A>(choices: ReadonlyArray<A>) => A
  readonly chance: (p: number) => boolean
  readonly bytes: (n: number) => Uint8Array
  /** `k` distinct items of `choices`, in a seeded order. */
  readonly sample: <A>(choices: ReadonlyArray<A>, k: number) => ReadonlyArray<A>
}

/**
 * The draws of `seed` (and `stream`, default 0).
 *
 * @since 0.1.0
 * @category constructors
 */
export const draw = (seed: number, stream = 0): Effect.Effect<Draw> =>
  Effect.map(
    Effect.gen(function* () {
      return yield* Random.Random
    }).pipe(Random.withSeed(`${seed}/${stream}`)),
    (random) => {
      const next = () => random.nextDoubleUnsafe()
      const int = (low: number, high: number) => low + Math.floor(next() * (high - low + 1))
      return {
        between: (low, high) => low + next() * (high - low),
        int,
        pick: (choices) => choices[Math.floor(next() * choices.length)]!,
        chance: (p) => next() < p,
        // Four bytes from each draw (a 32-bit integer): update streams of random bytes are large.
        bytes: (n) => {
          const out = new Uint8Array(n)
          for (let i = 0; i < n; i += 4) {
            let word = Math.floor(next() * 0x100000000)
            for (let j = i; j < Math.min(n, i + 4); j++, word >>>= 8) out[j] = word & 0xff
          }
          return out
        },
        sample: (choices, k) => {
          const pool = [...choices]
          for (let i = pool.length - 1; i > 0; i--) {
            const j = int(0, i)
            ;[pool[i], pool[j]] = [pool[j]!, pool[i]!]
          }
          return pool.slice(0, k)
        },
      } satisfies Draw
    },
  )
