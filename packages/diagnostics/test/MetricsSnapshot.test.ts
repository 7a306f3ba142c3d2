import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as MetricsSnapshot from "../src/MetricsSnapshot.ts"
import { freshMetrics, recordingSink, settle } from "./support.ts"

const rounds = Metric.counter("app_rounds_total", { incremental: true })
const loss = Metric.gauge("app_loss")
const uploadMs = Metric.histogram("app_upload_millis", { boundaries: [10, 100] })
const outcomes = Metric.frequency("app_outcomes")

const data = (result: Option.Option<unknown>) =>
  Option.getOrUndefined(result) as { metrics: Array<MetricsSnapshot.MetricData>; omitted?: number }

describe("MetricsSnapshot", () => {
  it.effect("reports every metric of the registry as JSON, sorted by id, with attributes and state", () =>
    Effect.gen(function* () {
      yield* Metric.update(Metric.withAttributes(rounds, { client: "c1" }), 3)
      yield* Metric.update(loss, 0.25)
      yield* Metric.update(uploadMs, 42)
      yield* Metric.update(outcomes, "accepted")
      yield* Metric.update(outcomes, "accepted")
      const snapshot = data(yield* MetricsSnapshot.collector().collect)
      assert.deepStrictEqual(
        snapshot.metrics.map((m) => m.id),
        ["app_loss", "app_outcomes", "app_rounds_total", "app_upload_millis"],
      )
      const byId = Object.fromEntries(snapshot.metrics.map((m) => [m.id, m]))
      assert.deepStrictEqual(byId.app_rounds_total, {
        id: "app_rounds_total",
        type: "Counter",
        attributes: { client: "c1" },
        count: 3,
      })
      assert.deepStrictEqual(byId.app_loss, { id: "app_loss", type: "Gauge", value: 0.25 })
      assert.deepStrictEqual(byId.app_outcomes?.occurrences, { accepted: 2 })
      assert.deepStrictEqual(
        [byId.app_upload_millis?.count, byId.app_upload_millis?.sum, byId.app_upload_millis?.buckets],
        [
          1,
          42,
          [
            [10, 0],
            [100, 1],
          ],
        ],
      )
      assert.doesNotThrow(() => JSON.parse(JSON.stringify(snapshot)))
    }).pipe(freshMetrics),
  )

  it.effect("reports nothing when the registry holds no included metric", () =>
    Effect.gen(function* () {
      assert.isTrue(Option.isNone(yield* MetricsSnapshot.collector().collect))
      yield* Metric.update(loss, 1)
      const onlyFedguard = MetricsSnapshot.collector({ include: (id) => id.startsWith("fedguard_") })
      assert.isTrue(Option.isNone(yield* onlyFedguard.collect))
    }).pipe(freshMetrics),
  )

  it.effect("bounds a report to maxMetrics and says how many were left out; an empty histogram's min is null", () =>
    Effect.gen(function* () {
      yield* Metric.update(loss, 1)
      yield* Metric.update(rounds, 1)
      yield* Metric.value(uploadMs)
      const snapshot = data(yield* MetricsSnapshot.collector({ maxMetrics: 2 }).collect)
      assert.deepStrictEqual(
        snapshot.metrics.map((m) => m.id),
        ["app_loss", "app_rounds_total"],
      )
      assert.strictEqual(snapshot.omitted, 1)
      const all = data(yield* MetricsSnapshot.collector().collect)
      const histogram = all.metrics.find((m) => m.id === "app_upload_millis")
      assert.deepStrictEqual([histogram?.count, histogram?.min, histogram?.max], [0, null, null])
    }).pipe(freshMetrics),
  )

  it.effect("runs at its interval (60 s by default), not before and not between", () =>
    Effect.gen(function* () {
      yield* Metric.update(loss, 1)
      const sink = recordingSink()
      yield* Diagnostics.make({ batchSize: 1 }, [MetricsSnapshot.collector()]).pipe(Effect.provide(sink.layer))
      yield* TestClock.adjust(60_000 - 1)
      assert.strictEqual(sink.batches.length, 0)
      yield* TestClock.adjust(1)
      yield* settle
      assert.strictEqual(sink.batches.length, 1)
      yield* TestClock.adjust(60_000 - 1)
      assert.strictEqual(sink.batches.length, 1)
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(
        sink.batches.map((batch) => [batch[0]?.collector, batch[0]?.at]),
        [
          ["metrics", 60_000],
          ["metrics", 120_000],
        ],
      )
    }).pipe(freshMetrics),
  )
})
