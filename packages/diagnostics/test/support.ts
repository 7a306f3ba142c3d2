import { Effect, Layer, Metric, type Scope, Stream } from "effect"
import * as Diagnostics from "../src/Diagnostics.ts"
import type { DiagnosticsReport } from "../src/DiagnosticsReport.ts"
import * as DiagnosticsSink from "../src/DiagnosticsSink.ts"

/** Lets forked fibers run until they suspend, without moving the clock. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 100; i++) yield* Effect.yieldNow
})

/** Records every element of a subscribed event stream into an array. */
export const record = <A>(
  subscribe: Effect.Effect<Stream.Stream<A>, never, Scope.Scope>,
): Effect.Effect<Array<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seen: Array<A> = []
    const stream = yield* subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
    return seen
  })

/** Runs an effect with a registry of its own, so that metric values start at zero in every test. */
export const freshMetrics = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, Metric.MetricRegistry, new Map())

/** The value of a counter with the given attributes. */
export const count = (
  metric: Metric.Metric<number, Metric.CounterState<number>>,
  attributes: Record<string, string> = {},
) => Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)

/**
 * A sink that records what it took: `batches` are the delivered batches; `attempts` counts every
 * call of `send`; `behaviour(attempt)` decides each call (succeed by default).
 */
export const recordingSink = (
  behaviour: (attempt: number) => Effect.Effect<void, DiagnosticsSink.SinkError> = () => Effect.void,
  name = "test",
) => {
  const batches: Array<ReadonlyArray<DiagnosticsReport>> = []
  let attempts = 0
  const sink = DiagnosticsSink.DiagnosticsSink.of({
    name,
    send: (reports) =>
      Effect.suspend(() => {
        attempts++
        return behaviour(attempts).pipe(Effect.tap(() => Effect.sync(() => batches.push(reports))))
      }),
  })
  return {
    batches,
    attempts: () => attempts,
    layer: Layer.succeed(DiagnosticsSink.DiagnosticsSink, sink),
  }
}

/** A diagnostics pipeline over `sink`, with its events recorded. */
export const setup = (options: Diagnostics.Options, sink: ReturnType<typeof recordingSink>) =>
  Effect.gen(function* () {
    const diagnostics = yield* Diagnostics.make(options).pipe(Effect.provide(sink.layer))
    const events = yield* record(diagnostics.subscribe)
    return { diagnostics, events }
  })

/** The collectors' names and data of every delivered report, in delivery order. */
export const delivered = (sink: ReturnType<typeof recordingSink>) =>
  sink.batches.flat().map((report) => [report.collector, report.data])
