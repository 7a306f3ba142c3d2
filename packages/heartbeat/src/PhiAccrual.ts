/**
 * The phi-accrual failure detector (Hayashibara et al., 2004), as Akka
 * implements it.
 *
 * Instead of a fixed timeout, the detector learns each client's heartbeat
 * inter-arrival distribution (mean and standard deviation over a sliding
 * window) and reports `phi = -log10(P_later(elapsed))`, where `P_later` is the
 * probability that the next beat arrives even later than `elapsed` if the
 * client is alive. A client is declared failed when `phi >= threshold`, so a
 * threshold of 2 means "a live client would be this late 1 time in 100": the
 * threshold is a false-positive rate. Like Akka, `P_later` uses the logistic
 * approximation of the normal tail, `mean` includes an acceptable heartbeat
 * pause, and the standard deviation is floored at a minimum.
 *
 * Because phi is monotone in `elapsed`, the crossing time has a closed form:
 * the tracker schedules it per client instead of evaluating phi on a timer.
 *
 * @since 0.1.0
 */
import { Duration } from "effect"
import type { FailureDetector, IntervalStats } from "./FailureDetector.ts"
import * as Normal from "./internal/Normal.ts"

/**
 * Options of the phi-accrual detector.
 *
 * - `threshold` (default 8, Akka's): phi at which a client is failed; see
 *   {@link thresholdFor}.
 * - `maxSampleSize` (default 1000): inter-arrival samples kept per client.
 *   Each costs 4 bytes, so 1000 samples are 4 KB per client: use ~100 for
 *   100,000 clients.
 * - `minStdDeviation` (default 100 ms): floor of the standard deviation, so
 *   that a very regular client is not declared failed at its first small
 *   delay.
 * - `acceptableHeartbeatPause` (default 0): added to the mean; a pause of this
 *   length (GC, network hiccup) does not raise phi.
 * - `firstHeartbeatEstimate` (default 30 s, fedguard's heartbeat interval):
 *   seeds a new client's window (as Akka does: `mean ± mean / 4`) until real
 *   intervals replace it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly threshold?: number | undefined
  readonly maxSampleSize?: number | undefined
  readonly minStdDeviation?: Duration.Input | undefined
  readonly acceptableHeartbeatPause?: Duration.Input | undefined
  readonly firstHeartbeatEstimate?: Duration.Input | undefined
}

/**
 * The defaults of {@link Options}.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  threshold: 8,
  maxSampleSize: 1000,
  minStdDeviation: "100 millis",
  acceptableHeartbeatPause: "0 millis",
  firstHeartbeatEstimate: "30 seconds",
} as const

const LN10 = Math.LN10
const A = 0.070566
const B = 1.5976

/**
 * The suspicion level of a client whose last beat was `elapsedMs` ago, given
 * an inter-arrival mean and standard deviation in milliseconds (Akka's
 * formula, written in a form that neither underflows nor overflows). The
 * caller applies any pause or floor; {@link make} does.
 *
 * @example
 * ```ts
 * import { PhiAccrual } from "@fedguard/heartbeat"
 * PhiAccrual.phi(1000, 1000, 100) // ≈ 0.30 (a beat is late half of the time)
 * ```
 *
 * @since 0.1.0
 * @category computations
 */
export const phi = (elapsedMs: number, meanMs: number, stdDeviationMs: number): number => {
  const y = (elapsedMs - meanMs) / stdDeviationMs
  const s = y * (B + A * y * y)
  // -log10(e / (1 + e)) with e = exp(-s) is softplus(s) / ln 10.
  return (s > 0 ? s + Math.log1p(Math.exp(-s)) : Math.log1p(Math.exp(s))) / LN10
}

/**
 * The number of standard deviations past the mean at which phi reaches
 * `threshold`: the real root of `A·y³ + B·y = ln(10^threshold - 1)`, by
 * Cardano's formula.
 */
const crossingDeviations = (threshold: number): number => {
  const target = threshold * LN10 + Math.log1p(-(10 ** -threshold))
  const p = B / A
  const q = -target / A
  const root = Math.sqrt((q * q) / 4 + (p * p * p) / 27)
  return Math.cbrt(-q / 2 + root) + Math.cbrt(-q / 2 - root)
}

/**
 * The phi threshold that gives a live client a probability `falsePositiveRate`
 * of being declared failed during any one inter-arrival gap:
 * `-log10(falsePositiveRate)`, phi's definition. This is the detector's
 * nominal rate for gaps that follow its model; see
 * {@link expectedFalsePositiveRate} for the rate normally distributed gaps
 * actually see in the `LivenessTracker`.
 *
 * @example
 * ```ts
 * import { PhiAccrual } from "@fedguard/heartbeat"
 * PhiAccrual.thresholdFor({ falsePositiveRate: 0.001 }) // 3
 * ```
 *
 * @since 0.1.0
 * @category computations
 */
export const thresholdFor = (options: { readonly falsePositiveRate: number }): number =>
  -Math.log10(options.falsePositiveRate)

/**
 * The false-positive rate per inter-arrival gap that a live client with
 * normally distributed gaps actually sees in the `LivenessTracker` at
 * `threshold` (no acceptable pause, deviation above the floor).
 *
 * It differs from the nominal `10^-threshold` ({@link thresholdFor}) for two
 * reasons. (1) The tracker follows Akka: the gap that ends an outage —
 * including a false positive — is not learned, so the window misses its
 * longest gaps and underestimates the deviation. Truncating the normal at the
 * crossing point `z` gives a window mean `-φ(z)/Φ(z)` and deviation
 * `√(1 - zφ(z)/Φ(z) - (φ(z)/Φ(z))²)` (in σ units), whose crossing point must
 * be `z` again; this solves that fixed point. (2) Akka's phi uses a logistic
 * approximation of the normal tail, which is lighter than the true tail far
 * out: the crossing sits at 5.22σ for threshold 8 where the true 1e-8 tail
 * starts at 5.61σ. The result is `P(Z > z)`: 1.43 % at threshold 2 (nominal
 * 1 %), 0.12 % at 3, 8.7e-8 at 8 (nominal 1e-8). Meaningful for thresholds
 * of 2 and more (below, the truncation feeds on itself).
 *
 * @example
 * ```ts
 * import { PhiAccrual } from "@fedguard/heartbeat"
 * PhiAccrual.expectedFalsePositiveRate({ threshold: 2 }) // ≈ 0.0142
 * ```
 *
 * @since 0.1.0
 * @category computations
 */
export const expectedFalsePositiveRate = (options: { readonly threshold: number }): number => {
  const deviations = crossingDeviations(options.threshold)
  let z = deviations
  for (let i = 0; i < 200; i++) {
    const ratio = Normal.density(z) / (1 - Normal.upperTail(z))
    const next = -ratio + deviations * Math.sqrt(Math.max(0, 1 - z * ratio - ratio * ratio))
    if (Math.abs(next - z) < 1e-12) break
    z = next
  }
  return Normal.upperTail(z)
}

/**
 * The detection latency, in milliseconds: the time after a client's last beat
 * at which phi crosses `threshold`, given the observed inter-arrival mean and
 * standard deviation (ms) and the detector's floor and pause (ms).
 *
 * @since 0.1.0
 * @category computations
 */
export const detectionLatencyMillis = (
  meanMs: number,
  stdDeviationMs: number,
  threshold: number,
  minStdDeviationMs = 0,
  acceptableHeartbeatPauseMs = 0,
): number =>
  meanMs + acceptableHeartbeatPauseMs + crossingDeviations(threshold) * Math.max(stdDeviationMs, minStdDeviationMs)

/**
 * The expected detection latency of a client whose heartbeat inter-arrival
 * times have the given mean and standard deviation: how long after its last
 * beat the detector declares it failed if it stops. Options default as in
 * {@link defaults}. `LivenessTracker.detectionLatency(id)` reports the same
 * figure from a client's observed window.
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import { PhiAccrual } from "@fedguard/heartbeat"
 * const latency = PhiAccrual.expectedDetectionLatency({
 *   mean: "1 second",
 *   stdDeviation: "200 millis",
 *   threshold: PhiAccrual.thresholdFor({ falsePositiveRate: 0.01 }),
 * })
 * Duration.toMillis(latency) // ≈ 1465: 2.33 standard deviations past the mean
 * ```
 *
 * @since 0.1.0
 * @category computations
 */
export const expectedDetectionLatency = (
  options: {
    readonly mean: Duration.Input
    readonly stdDeviation: Duration.Input
  } & Omit<Options, "maxSampleSize" | "firstHeartbeatEstimate">,
): Duration.Duration =>
  Duration.millis(
    detectionLatencyMillis(
      Duration.toMillis(options.mean),
      Duration.toMillis(options.stdDeviation),
      options.threshold ?? defaults.threshold,
      Duration.toMillis(options.minStdDeviation ?? defaults.minStdDeviation),
      Duration.toMillis(options.acceptableHeartbeatPause ?? defaults.acceptableHeartbeatPause),
    ),
  )

/**
 * Builds a phi-accrual `FailureDetector` for the `LivenessTracker`. The
 * tracker keeps a window of up to `maxSampleSize` inter-arrival samples per
 * client and reschedules the client's deadline on each beat to the time at
 * which phi would cross `threshold`.
 *
 * @example
 * ```ts
 * import { LivenessTracker, PhiAccrual } from "@fedguard/heartbeat"
 * const layer = LivenessTracker.layer({
 *   detector: PhiAccrual.make({ threshold: PhiAccrual.thresholdFor({ falsePositiveRate: 1e-6 }) }),
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): FailureDetector => {
  const threshold = options.threshold ?? defaults.threshold
  const maxSampleSize = Math.max(2, Math.floor(options.maxSampleSize ?? defaults.maxSampleSize))
  const minStd = Duration.toMillis(options.minStdDeviation ?? defaults.minStdDeviation)
  const pause = Duration.toMillis(options.acceptableHeartbeatPause ?? defaults.acceptableHeartbeatPause)
  const first = Duration.toMillis(options.firstHeartbeatEstimate ?? defaults.firstHeartbeatEstimate)
  const deviations = crossingDeviations(threshold)
  return {
    name: "phi-accrual",
    windowSize: maxSampleSize,
    bootstrapIntervals: [first - first / 4, first + first / 4],
    threshold,
    suspicion: (stats: IntervalStats, elapsedMs: number) =>
      phi(elapsedMs, stats.mean + pause, Math.max(stats.stdDeviation, minStd)),
    timeoutAfter: (stats: IntervalStats) => stats.mean + pause + deviations * Math.max(stats.stdDeviation, minStd),
  }
}
