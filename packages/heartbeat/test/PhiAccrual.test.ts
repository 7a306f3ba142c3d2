import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Random } from "effect"
import { TestClock } from "effect/testing"
import * as FailureDetector from "../src/FailureDetector.ts"
import { IntervalHistory } from "../src/internal/IntervalHistory.ts"
import * as LivenessTracker from "../src/LivenessTracker.ts"
import * as PhiAccrual from "../src/PhiAccrual.ts"
import { beatFrom, id, record, settle } from "./support.ts"

/** A standard normal sample from the seeded `Random` (Box–Muller). */
const gaussian = Effect.gen(function* () {
  const u = 1 - (yield* Random.next)
  const v = yield* Random.next
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
})

const MEAN = 1_000
const STD = 200

describe("PhiAccrual formulas", () => {
  it("turns a false-positive rate into a threshold", () => {
    assert.closeTo(PhiAccrual.thresholdFor({ falsePositiveRate: 0.001 }), 3, 1e-12)
    assert.closeTo(PhiAccrual.thresholdFor({ falsePositiveRate: 1e-8 }), 8, 1e-12)
  })

  it("puts phi at 0.3 (P_later = 1/2) at the mean and raises it with the delay", () => {
    assert.closeTo(PhiAccrual.phi(MEAN, MEAN, STD), Math.log10(2), 1e-12)
    let previous = Number.NEGATIVE_INFINITY
    for (let elapsed = 0; elapsed <= 5_000; elapsed += 50) {
      const value = PhiAccrual.phi(elapsed, MEAN, STD)
      assert.isTrue(value > previous, `phi does not increase at ${elapsed} ms`)
      assert.isTrue(Number.isFinite(value))
      previous = value
    }
  })

  it("predicts the latency at which phi crosses the threshold", () => {
    for (const threshold of [0.5, 1, 2, 3, 8, 16]) {
      const latency = PhiAccrual.detectionLatencyMillis(MEAN, STD, threshold)
      assert.closeTo(PhiAccrual.phi(latency, MEAN, STD), threshold, 1e-9)
      assert.isBelow(PhiAccrual.phi(latency - 1, MEAN, STD), threshold)
    }
    // threshold 2 (1 % false positives): 2.33 standard deviations past the mean, as for a normal tail
    const latency = PhiAccrual.expectedDetectionLatency({ mean: MEAN, stdDeviation: STD, threshold: 2 })
    assert.closeTo(Duration.toMillis(latency), MEAN + 2.326 * STD, 2)
  })

  it("applies the minimum standard deviation and the acceptable pause", () => {
    const detector = PhiAccrual.make({
      threshold: 2,
      minStdDeviation: "300 millis",
      acceptableHeartbeatPause: "500 millis",
    })
    const stats = { count: 10, mean: MEAN, stdDeviation: 100 }
    assert.closeTo(detector.timeoutAfter(stats), PhiAccrual.detectionLatencyMillis(MEAN + 500, 300, 2), 1e-9)
    assert.isFalse(FailureDetector.isFailed(detector, stats, detector.timeoutAfter(stats) - 1))
    assert.isTrue(FailureDetector.isFailed(detector, stats, detector.timeoutAfter(stats) + 1e-6))
  })

  it("keeps the fixed timeout inclusive at its boundary", () => {
    const detector = FailureDetector.fixedTimeout("90 seconds")
    const stats = FailureDetector.emptyStats
    assert.isFalse(FailureDetector.isFailed(detector, stats, 89_999))
    assert.isTrue(FailureDetector.isFailed(detector, stats, 90_000))
    assert.strictEqual(detector.timeoutAfter(stats), 90_000)
  })
})

describe("PhiAccrual false positives and detection latency", () => {
  // The detector alone, learning every gap (Hayashibara's model): the share of
  // gaps longer than the detection latency computed from the window before
  // them is the nominal 10^-threshold. 200,000 gaps: 2,000 ± 45 expected
  // false positives at threshold 2, 200 ± 14 at threshold 3, plus the window's
  // estimation noise: tolerance ±15 % and ±25 %.
  it.effect.each([
    { falsePositiveRate: 0.01, tolerance: 0.15 },
    { falsePositiveRate: 0.001, tolerance: 0.25 },
  ])(
    "measures the nominal false-positive rate $falsePositiveRate on normally jittered gaps",
    ({ falsePositiveRate, tolerance }) =>
      Effect.gen(function* () {
        const threshold = PhiAccrual.thresholdFor({ falsePositiveRate })
        const detector = PhiAccrual.make({ threshold, firstHeartbeatEstimate: "1 second" })
        const history = new IntervalHistory(detector.windowSize, 0, detector.bootstrapIntervals)
        const gaps = 200_000
        let falsePositives = 0
        for (let i = 0; i < 1_000 + gaps; i++) {
          const gap = Math.max(1, MEAN + STD * (yield* gaussian))
          if (i >= 1_000 && gap >= detector.timeoutAfter(history)) falsePositives++
          history.add(gap)
        }
        const measured = falsePositives / gaps
        assert.closeTo(measured, falsePositiveRate, tolerance * falsePositiveRate, `measured ${measured}`)
      }).pipe(Random.withSeed(`fedguard-phi-${falsePositiveRate}`)),
  )

  it.effect(
    "takes a jittery but live client offline at the predicted rate, and a stopped one at the predicted latency",
    () =>
      Effect.gen(function* () {
        const falsePositiveRate = 0.01
        const threshold = PhiAccrual.thresholdFor({ falsePositiveRate })
        const tracker = yield* LivenessTracker.make({
          minClients: 0,
          detector: PhiAccrual.make({ threshold, firstHeartbeatEstimate: "1 second" }),
        })
        const events = yield* record(tracker.subscribe)
        const client = id("jittery")
        yield* tracker.register(client)
        yield* tracker.beat(client, beatFrom(client, 0))

        const offlineCount = Effect.map(settle, () => events.filter((e) => e._tag === "ClientWentOffline").length)
        const warmup = 1_000
        const gaps = 20_000
        let warmedUpAt = 0
        for (let seq = 1; seq <= warmup + gaps; seq++) {
          if (seq === warmup + 1) warmedUpAt = yield* offlineCount
          yield* TestClock.adjust(Math.max(1, Math.round(MEAN + STD * (yield* gaussian))))
          yield* tracker.beat(client, beatFrom(client, seq))
        }
        const falsePositives = (yield* offlineCount) - warmedUpAt
        const measuredRate = falsePositives / gaps
        const predictedRate = PhiAccrual.expectedFalsePositiveRate({ threshold })
        assert.closeTo(measuredRate, predictedRate, 0.2 * predictedRate, `measured ${measuredRate}`)

        const observed = yield* tracker.detectionLatency(client)
        assert.isAbove(observed.samples, 900)
        assert.closeTo(observed.meanIntervalMs, MEAN, 0.05 * MEAN)
        assert.closeTo(observed.stdDeviationMs, STD, 0.1 * STD)
        const predicted = Duration.toMillis(
          PhiAccrual.expectedDetectionLatency({
            mean: observed.meanIntervalMs,
            stdDeviation: observed.stdDeviationMs,
            threshold,
          }),
        )
        assert.closeTo(Duration.toMillis(observed.latency), predicted, 1e-6)
        const fromTrueDistribution = Duration.toMillis(
          PhiAccrual.expectedDetectionLatency({ mean: MEAN, stdDeviation: STD, threshold }),
        )
        assert.closeTo(predicted, fromTrueDistribution, 0.05 * fromTrueDistribution)

        // the beats stop: offline at the predicted latency after the last one, not before
        const lastBeatAt = (yield* tracker.client(client)).lastSeenAt!
        const before = yield* offlineCount
        yield* TestClock.adjust(Math.floor(predicted) - 1)
        assert.strictEqual((yield* tracker.client(client)).state, "online")
        yield* TestClock.adjust(2)
        const snapshot = yield* tracker.client(client)
        assert.strictEqual(snapshot.state, "offline")
        assert.strictEqual(yield* offlineCount, before + 1)
        assert.closeTo(snapshot.offlineAt! - lastBeatAt, predicted, 1)
      }).pipe(Random.withSeed("fedguard-phi-accrual")),
    60_000,
  )
})
