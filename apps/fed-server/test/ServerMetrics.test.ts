import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Metric } from "effect"
import * as ServerEvent from "../src/ServerEvent.ts"
import * as ServerEvents from "../src/ServerEvents.ts"
import * as ServerMetrics from "../src/ServerMetrics.ts"
import { settle } from "./support/Harness.ts"

const round = (n: number, bytesIn: number, bytesOut: number) =>
  new ServerEvent.RoundCompleted({
    round: n,
    participants: ["a", "b"],
    excluded: [],
    rejectedUpdates: 0,
    modelUpdated: true,
    testAccuracy: 0.5 + n / 10,
    testLoss: 1,
    modelSha256: "00",
    durationMs: 300,
    bytesIn,
    bytesOut,
  })

const counter = (metric: Metric.Metric<number, Metric.CounterState<number>>) =>
  Effect.map(Metric.value(metric), (state) => state.count)

// A registry of the test's own: the figures are this test's alone.
const withRecorder = <A, E, R>(self: Effect.Effect<A, E, R>) =>
  self.pipe(
    Effect.provide(ServerMetrics.layer.pipe(Layer.provideMerge(ServerEvents.layer))),
    Effect.provideService(Metric.MetricRegistry, new Map()),
  )

describe("ServerMetrics: metrics from the server's events", () => {
  it.effect("counts completed rounds and their bytes, and sets the last accuracy, from RoundCompleted", () =>
    Effect.gen(function* () {
      const events = yield* ServerEvents.ServerEvents
      assert.strictEqual(yield* counter(ServerMetrics.roundsCompleted), 0)
      yield* events.publish(round(1, 100, 200))
      yield* events.publish(round(2, 10, 20))
      yield* settle()
      assert.strictEqual(yield* counter(ServerMetrics.roundsCompleted), 2)
      assert.strictEqual(yield* counter(ServerMetrics.bytesIn), 110)
      assert.strictEqual(yield* counter(ServerMetrics.bytesOut), 220)
      assert.strictEqual((yield* Metric.value(ServerMetrics.testAccuracy)).value, 0.7)
      assert.strictEqual((yield* Metric.value(ServerMetrics.roundDuration)).count, 2)
    }).pipe(withRecorder),
  )

  it.effect("counts exclusions by the reason's first word, and other events change no figure", () =>
    Effect.gen(function* () {
      const events = yield* ServerEvents.ServerEvents
      yield* events.publish(
        new ServerEvent.ClientExcluded({ round: 1, id: "a", reason: "rejected: non-finite weights" }),
      )
      yield* events.publish(new ServerEvent.ClientExcluded({ round: 1, id: "b", reason: "rejected: stale round 3" }))
      yield* events.publish(new ServerEvent.ClientExcluded({ round: 2, id: "b", reason: "straggler" }))
      yield* events.publish(new ServerEvent.ClientJoined({ id: "c", remote: "x" }))
      yield* settle()
      const by = (reason: string) => counter(Metric.withAttributes(ServerMetrics.exclusions, { reason }))
      assert.strictEqual(yield* by("rejected"), 2)
      assert.strictEqual(yield* by("straggler"), 1)
      assert.strictEqual(yield* by("offline"), 0)
      assert.strictEqual(yield* counter(ServerMetrics.roundsCompleted), 0)
    }).pipe(withRecorder),
  )

  it("labels a reason by its text up to the first colon", () => {
    assert.strictEqual(ServerMetrics.reasonLabel("send-failed: SendTimeout"), "send-failed")
    assert.strictEqual(ServerMetrics.reasonLabel("offline"), "offline")
    assert.strictEqual(ServerMetrics.reasonLabel(""), "unknown")
  })
})
