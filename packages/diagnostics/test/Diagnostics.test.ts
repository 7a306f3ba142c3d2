import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@fedguard/retry"
import { TransportError } from "@fedguard/transport"
import { Effect, Fiber, Option, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as Collector from "../src/Collector.ts"
import * as DiagnosticsMetrics from "../src/DiagnosticsMetrics.ts"
import * as DiagnosticsSink from "../src/DiagnosticsSink.ts"
import { count, delivered, freshMetrics, recordingSink, settle, setup } from "./support.ts"

// Retries 100 ms, 200 ms, … apart, without jitter, so the clock can be moved to the exact attempt.
const quickRetry = (maxRetries: number) =>
  RetryPolicy.make({ maxRetries, baseDelay: "100 millis", maxDelay: "1 second", jitter: "none" })

const unavailable = Effect.fail(new DiagnosticsSink.SinkUnavailable({ sink: "test", reason: "server down" }))

describe("Diagnostics", () => {
  describe("collectors", () => {
    it.effect("collects at every interval of its schedule (10 s, 20 s), not before or between", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup({ batchSize: 1 }, sink)
        const runs = yield* Ref.make(0)
        yield* diagnostics.run(
          Collector.make({
            name: "ticks",
            interval: "10 seconds",
            collect: Effect.map(
              Ref.updateAndGet(runs, (n) => n + 1),
              (n) => Option.some({ n }),
            ),
          }),
        )
        yield* settle
        assert.strictEqual(yield* Ref.get(runs), 0, "no collection at start")
        yield* TestClock.adjust(10_000 - 1)
        assert.strictEqual(yield* Ref.get(runs), 0)
        yield* TestClock.adjust(1)
        assert.strictEqual(yield* Ref.get(runs), 1)
        yield* TestClock.adjust(10_000 - 1)
        assert.strictEqual(yield* Ref.get(runs), 1)
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(yield* Ref.get(runs), 2)
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsCollected").map((e) => [e.collector, e.at]),
          [
            ["ticks", 10_000],
            ["ticks", 20_000],
          ],
        )
        assert.deepStrictEqual(delivered(sink), [
          ["ticks", { n: 1 }],
          ["ticks", { n: 2 }],
        ])
        assert.strictEqual(yield* count(DiagnosticsMetrics.collected, { collector: "ticks" }), 2)
      }).pipe(freshMetrics),
    )

    it.effect("skips empty data (none, null, '', [], {}) and never reports it; non-empty data is reported", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup({ batchSize: 1 }, sink)
        const values = [Option.none(), Option.some(null), Option.some(""), Option.some([]), Option.some({})]
        for (const value of values) {
          const result = yield* diagnostics.collectNow(
            Collector.make({ name: "empty", collect: Effect.succeed(value) }),
          )
          assert.isTrue(Option.isNone(result))
        }
        yield* diagnostics.report("empty", {})
        yield* diagnostics.flush
        yield* settle
        assert.deepStrictEqual(events, [])
        assert.deepStrictEqual(sink.batches, [])
        assert.strictEqual(yield* count(DiagnosticsMetrics.empty, { collector: "empty" }), 6)
        assert.strictEqual(yield* count(DiagnosticsMetrics.collected, { collector: "empty" }), 0)

        const some = yield* diagnostics.collectNow(Collector.make({ name: "full", collect: Effect.succeedSome([0]) }))
        assert.isTrue(Option.isSome(some))
        yield* settle
        assert.deepStrictEqual(delivered(sink), [["full", [0]]])
      }).pipe(freshMetrics),
    )

    it.effect("a collector that fails or dies is an event and a metric, and its next run still comes", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup({ batchSize: 1 }, sink)
        const runs = yield* Ref.make(0)
        yield* diagnostics.run(
          Collector.make({
            name: "flaky",
            interval: "1 second",
            collect: Effect.flatMap(
              Ref.updateAndGet(runs, (n) => n + 1),
              (n) =>
                n === 1 ? Effect.fail(new Error("disk gone")) : n === 2 ? Effect.die("boom") : Effect.succeedSome(n),
            ),
          }),
        )
        yield* TestClock.adjust("3 seconds")
        yield* settle
        assert.deepStrictEqual(
          events.map((e) => (e._tag === "DiagnosticsCollectFailed" ? [e._tag, e.reason] : [e._tag])),
          [
            ["DiagnosticsCollectFailed", "disk gone"],
            ["DiagnosticsCollectFailed", "boom"],
            ["DiagnosticsCollected"],
            ["DiagnosticsReported"],
          ],
        )
        assert.deepStrictEqual(delivered(sink), [["flaky", 3]])
        assert.strictEqual(yield* count(DiagnosticsMetrics.collectFailures, { collector: "flaky" }), 2)
      }).pipe(freshMetrics),
    )

    it.effect("refuses collector names a receiver would refuse: empty or over 128 characters", () =>
      Effect.gen(function* () {
        assert.throws(() => Collector.make({ name: "", collect: Effect.succeedNone }), /1 to 128 characters/)
        assert.throws(() => Collector.make({ name: "x".repeat(129), collect: Effect.succeedNone }), /1 to 128/)
        assert.doesNotThrow(() => Collector.make({ name: "x".repeat(128), collect: Effect.succeedNone }))
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup({ batchSize: 1 }, sink)
        yield* diagnostics.report("", { a: 1 })
        yield* diagnostics.flush
        yield* settle
        assert.deepStrictEqual(
          events.map((e) => e._tag),
          ["DiagnosticsCollectFailed"],
        )
        assert.deepStrictEqual(sink.batches, [])
      }).pipe(freshMetrics),
    )
  })

  describe("batching", () => {
    it.effect("sends a batch as soon as batchSize reports wait, without waiting for the interval", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics } = yield* setup({ batchSize: 3, batchInterval: "1 minute" }, sink)
        yield* diagnostics.report("a", 1)
        yield* diagnostics.report("a", 2)
        yield* settle
        assert.deepStrictEqual(sink.batches, [], "2 of 3: not yet")
        yield* diagnostics.report("a", 3)
        yield* settle
        assert.deepStrictEqual(
          sink.batches.map((batch) => batch.map((r) => r.data)),
          [[1, 2, 3]],
        )
        yield* diagnostics.report("a", 4)
        yield* settle
        assert.strictEqual(sink.batches.length, 1, "the fourth waits for its own batch")
      }).pipe(freshMetrics),
    )

    it.effect("sends a partial batch once its oldest report waited batchInterval, not a millisecond before", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup({ batchSize: 10, batchInterval: "5 seconds" }, sink)
        yield* diagnostics.report("a", 1)
        yield* TestClock.adjust("2 seconds")
        yield* diagnostics.report("a", 2)
        yield* TestClock.adjust(3_000 - 1)
        assert.deepStrictEqual(sink.batches, [])
        yield* TestClock.adjust(1)
        yield* settle
        assert.deepStrictEqual(
          sink.batches.map((batch) => batch.map((r) => [r.data, r.at])),
          [
            [
              [1, 0],
              [2, 2_000],
            ],
          ],
        )
        const reported = events.filter((e) => e._tag === "DiagnosticsReported")
        assert.deepStrictEqual(
          reported.map((e) => [e.sink, e.reports, e.attempts, e.at]),
          [["test", 2, 1, 5_000]],
        )
        assert.strictEqual(yield* count(DiagnosticsMetrics.reported, { sink: "test" }), 2)
      }).pipe(freshMetrics),
    )
  })

  describe("bounded buffer", () => {
    it.effect("drops the oldest report when full, counts it, and sends the newest ones", () =>
      Effect.gen(function* () {
        const sink = recordingSink()
        const { diagnostics, events } = yield* setup(
          { batchSize: 100, batchInterval: "1 minute", bufferCapacity: 3 },
          sink,
        )
        for (let i = 1; i <= 3; i++) yield* diagnostics.report(`c${i}`, i)
        yield* settle
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsDropped"),
          [],
          "3 of 3: nothing dropped",
        )
        yield* TestClock.adjust("1 second")
        for (let i = 4; i <= 5; i++) yield* diagnostics.report(`c${i}`, i)
        yield* settle
        assert.strictEqual(yield* diagnostics.buffered, 3)
        assert.deepStrictEqual(
          events
            .filter((e) => e._tag === "DiagnosticsDropped")
            .map((e) => [e.collector, e.collectedAt, e.totalDropped]),
          [
            ["c1", 0, 1],
            ["c2", 0, 2],
          ],
        )
        assert.strictEqual(yield* count(DiagnosticsMetrics.dropped), 2)
        yield* diagnostics.flush
        assert.deepStrictEqual(delivered(sink), [
          ["c3", 3],
          ["c4", 4],
          ["c5", 5],
        ])
      }).pipe(freshMetrics),
    )
  })

  describe("sink failures", () => {
    it.effect("a sink that always fails leaves the training fiber running every round, and counts the failures", () =>
      Effect.gen(function* () {
        const sink = recordingSink(() => unavailable)
        const { diagnostics, events } = yield* setup(
          { batchSize: 1, retry: quickRetry(2), sendTimeout: "1 second" },
          sink,
        )
        const rounds = 10
        const training = yield* Effect.forkChild(
          Effect.gen(function* () {
            const completed: Array<number> = []
            for (let round = 1; round <= rounds; round++) {
              yield* Effect.sleep("1 second")
              yield* diagnostics.report("training", { round })
              completed.push(round)
            }
            return completed
          }),
        )
        yield* TestClock.adjust(`${rounds + 2} seconds`)
        const completed = yield* Fiber.join(training)
        assert.deepStrictEqual(
          completed,
          Array.from({ length: rounds }, (_, i) => i + 1),
        )
        yield* settle
        const failed = events.filter((e) => e._tag === "DiagnosticsSinkFailed")
        assert.strictEqual(failed.length, rounds)
        assert.deepStrictEqual(
          [failed[0]?.attempts, failed[0]?.errorTag, failed[0]?.reports],
          [3, "SinkUnavailable", 1],
        )
        assert.strictEqual(sink.attempts(), rounds * 3)
        assert.deepStrictEqual(sink.batches, [])
        assert.strictEqual(
          yield* count(DiagnosticsMetrics.sinkFailures, { sink: "test", error: "SinkUnavailable" }),
          rounds,
        )
        assert.strictEqual(yield* count(DiagnosticsMetrics.failedReports, { sink: "test" }), rounds)
        assert.strictEqual(yield* count(DiagnosticsMetrics.sendRetries, { sink: "test" }), rounds * 2)
        assert.strictEqual(yield* count(DiagnosticsMetrics.reported, { sink: "test" }), 0)
      }).pipe(freshMetrics),
    )

    it.effect("retries a transient failure: fails twice, then one report is delivered, with 2 retries counted", () =>
      Effect.gen(function* () {
        const sink = recordingSink((attempt) =>
          attempt <= 2
            ? Effect.fail(new TransportError.ConnectionClosed({ peer: "server", reason: "reset" }))
            : Effect.void,
        )
        const { diagnostics, events } = yield* setup({ batchSize: 1, retry: quickRetry(3) }, sink)
        yield* diagnostics.report("log-tail", { lines: ["x"] })
        yield* settle
        assert.strictEqual(sink.attempts(), 1)
        yield* TestClock.adjust(100 - 1)
        assert.strictEqual(sink.attempts(), 1, "the first retry waits 100 ms")
        yield* TestClock.adjust(1)
        assert.strictEqual(sink.attempts(), 2)
        yield* TestClock.adjust(200)
        yield* settle
        assert.strictEqual(sink.attempts(), 3)
        assert.deepStrictEqual(delivered(sink), [["log-tail", { lines: ["x"] }]])
        assert.deepStrictEqual(
          events
            .filter((e) => e._tag !== "DiagnosticsCollected")
            .map((e) => [e._tag, "attempts" in e ? e.attempts : 0]),
          [["DiagnosticsReported", 3]],
        )
        const reported = events.find((e) => e._tag === "DiagnosticsReported")
        assert.strictEqual(reported?._tag === "DiagnosticsReported" ? reported.latencyMs : -1, 300)
        assert.strictEqual(yield* count(DiagnosticsMetrics.sendRetries, { sink: "test" }), 2)
        assert.strictEqual(yield* count(DiagnosticsMetrics.reported, { sink: "test" }), 1)
        assert.strictEqual(
          yield* count(DiagnosticsMetrics.sinkFailures, { sink: "test", error: "ConnectionClosed" }),
          0,
        )
      }).pipe(freshMetrics),
    )

    it.effect("does not retry a final failure (SinkRejected) nor a defect: one attempt, then SinkFailed", () =>
      Effect.gen(function* () {
        const sink = recordingSink((attempt) =>
          attempt === 1
            ? Effect.fail(new DiagnosticsSink.SinkRejected({ sink: "test", reason: "diagnostics not accepted" }))
            : Effect.die(new Error("sink bug")),
        )
        const { diagnostics, events } = yield* setup({ batchSize: 1, retry: quickRetry(3) }, sink)
        yield* diagnostics.report("a", 1)
        yield* settle
        yield* diagnostics.report("a", 2)
        yield* settle
        yield* TestClock.adjust("10 seconds")
        assert.strictEqual(sink.attempts(), 2)
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsSinkFailed").map((e) => [e.errorTag, e.attempts, e.reason]),
          [
            ["SinkRejected", 1, "diagnostics sink test rejected the reports: diagnostics not accepted"],
            ["Defect", 1, "sink bug"],
          ],
        )
        assert.strictEqual(yield* count(DiagnosticsMetrics.sendRetries, { sink: "test" }), 0)
      }).pipe(freshMetrics),
    )

    it.effect("a send that hangs fails with SinkTimeout after sendTimeout, and the next batch is sent", () =>
      Effect.gen(function* () {
        const sink = recordingSink((attempt) => (attempt === 1 ? Effect.never : Effect.void))
        const { diagnostics, events } = yield* setup(
          { batchSize: 1, retry: quickRetry(0), sendTimeout: "2 seconds" },
          sink,
        )
        yield* diagnostics.report("a", 1)
        yield* diagnostics.report("a", 2)
        yield* TestClock.adjust(2_000 - 1)
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsSinkFailed"),
          [],
        )
        yield* TestClock.adjust(1)
        yield* settle
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsSinkFailed").map((e) => [e.errorTag, e.at]),
          [["SinkTimeout", 2_000]],
        )
        assert.deepStrictEqual(delivered(sink), [["a", 2]])
      }).pipe(freshMetrics),
    )
  })
})
