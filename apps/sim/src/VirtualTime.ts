/**
 * Driving real services on the `TestClock` without a test script: virtual
 * time advances only when nothing can run.
 *
 * `TestClock.adjust(d)` already works as a discrete-event scheduler: it pops
 * the earliest pending sleep, sets the clock to its deadline, wakes it, and
 * waits until every task that wake scheduled (and every task those
 * scheduled, transitively) has run and the fibers are suspended again on a
 * queue, a latch or a later sleep; then it pops the next one, up to `now +
 * d`. So the driver only has to call `adjust` in steps until the work is
 * done. Two details keep that exact:
 *
 * - the work is *started* from inside a wake ({@link startTracked}), so even
 *   the first handshakes are tracked and time cannot move while they run;
 * - the TestClock's "busy" warning delay, after which it stops waiting for a
 *   wake's work (real time), is set far beyond any run, so a long cascade
 *   on a slow machine delays the run instead of changing its order.
 *
 * The order in which runnable fibers run is Effect's scheduler's FIFO,
 * which depends on nothing but the program; with no real I/O, no real
 * randomness and no wall clock read, a run is a function of its inputs.
 *
 * @since 0.1.0
 */
import { Clock, Effect, type Layer } from "effect"
import { TestClock } from "effect/testing"

/**
 * The TestClock for a simulation: it waits for a wake's work however long
 * it takes (one hour of real time before it would give up).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<TestClock.TestClock> = TestClock.layer({ warningDelay: "1 hour" })

/**
 * Runs `effect` in a new fiber from inside the first wake of the clock (at
 * 1 ms), so every task it schedules is tracked by the clock.
 *
 * @since 0.1.0
 * @category driving
 */
export const startTracked = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.forkChild(Effect.andThen(Effect.sleep(1), effect))

/**
 * Advances the clock `stepMs` at a time until `done()` holds or the clock
 * reaches `limitMs`; says which (`true` when done).
 *
 * @since 0.1.0
 * @category driving
 */
export const runUntil = (done: () => boolean, options: { readonly stepMs: number; readonly limitMs: number }) =>
  Effect.gen(function* () {
    while (!done()) {
      if ((yield* Clock.currentTimeMillis) >= options.limitMs) return false
      yield* TestClock.adjust(options.stepMs)
    }
    return true
  })
