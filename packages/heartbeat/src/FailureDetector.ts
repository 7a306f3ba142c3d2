/**
 * The interface every failure detector implements, and the default one: a
 * fixed timeout.
 *
 * A detector answers one question for the `LivenessTracker`: given what we
 * know about a client's beats, how long after its last sign of life do we
 * declare it failed? The tracker schedules exactly that deadline per client,
 * so detectors never poll.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"

/**
 * What a detector may know about a client's heartbeat inter-arrival times:
 * the number of samples in its window and their mean and (population)
 * standard deviation, in milliseconds. Detectors with `windowSize: 0` always
 * receive {@link emptyStats}.
 *
 * @since 0.1.0
 * @category models
 */
export interface IntervalStats {
  readonly count: number
  readonly mean: number
  readonly stdDeviation: number
}

/**
 * A failure detector, as the `LivenessTracker` uses it.
 *
 * - `suspicion(stats, elapsedMs)` is the detector's level of suspicion that a
 *   client whose last sign of life was `elapsedMs` ago has failed (phi for
 *   phi-accrual, `elapsed / timeout` for the fixed timeout). It never
 *   decreases with `elapsedMs`.
 * - `threshold`: the client is declared failed once `suspicion >= threshold`.
 * - `timeoutAfter(stats)` is the smallest `elapsedMs` at which that happens;
 *   the tracker schedules the client's deadline at `lastSeen + timeoutAfter`.
 * - `windowSize` is how many inter-arrival samples the tracker keeps per
 *   client for this detector (0: none, the per-client cost of the fixed
 *   timeout), and `bootstrapIntervals` seeds a new window before any interval
 *   has been observed.
 *
 * Implement this interface to plug another detector into the tracker; use
 * {@link fixedTimeout} (the default) or `PhiAccrual.make` otherwise.
 *
 * @since 0.1.0
 * @category models
 */
export interface FailureDetector {
  readonly name: string
  readonly windowSize: number
  readonly bootstrapIntervals: ReadonlyArray<number>
  readonly threshold: number
  readonly suspicion: (stats: IntervalStats, elapsedMs: number) => number
  readonly timeoutAfter: (stats: IntervalStats) => number
}

/**
 * The statistics given to detectors that keep no window.
 *
 * @since 0.1.0
 * @category constants
 */
export const emptyStats: IntervalStats = { count: 0, mean: 0, stdDeviation: 0 }

/**
 * The fixed-timeout detector: a client is failed `timeout` after its last
 * sign of life, whatever its history. Suspicion is `elapsed / timeout` with a
 * threshold of 1, so the boundary is inclusive: a client last seen at `t` is
 * alive at `t + timeout - 1 ms` and failed from `t + timeout` on. It keeps no
 * per-client window. This is the tracker's default, with `timeout` 90 s.
 *
 * @example
 * ```ts
 * import { FailureDetector } from "@fedguard/heartbeat"
 * const detector = FailureDetector.fixedTimeout("90 seconds")
 * detector.timeoutAfter(FailureDetector.emptyStats) // 90000
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const fixedTimeout = (timeout: Duration.Input): FailureDetector => {
  const timeoutMs = Duration.toMillis(timeout)
  return {
    name: "fixed-timeout",
    windowSize: 0,
    bootstrapIntervals: [],
    threshold: 1,
    suspicion: (_stats, elapsedMs) => (timeoutMs <= 0 ? Number.POSITIVE_INFINITY : elapsedMs / timeoutMs),
    timeoutAfter: () => timeoutMs,
  }
}

/**
 * Whether `detector` declares a client failed `elapsedMs` after its last sign
 * of life, given its interval statistics.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isFailed = (detector: FailureDetector, stats: IntervalStats, elapsedMs: number): boolean =>
  detector.suspicion(stats, elapsedMs) >= detector.threshold
