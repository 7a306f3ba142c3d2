/**
 * Diagnostics: collectors that run on their own cadence and report through
 * the injected `DiagnosticsSink`, batched, bounded and retried, without ever
 * failing or blocking the caller's work.
 *
 * The seed adds a master client to a training agent's collectors (log,
 * metric, stack): the collectors get the client injected, skip empty data,
 * report through it, and a failure to report never breaks training; its
 * follow-up list asks for batching, asynchronous reporting and metrics on
 * the reporting itself. Here the client is the `DiagnosticsSink` Layer and
 * this service is the pipeline between the collectors and it:
 *
 * - each collector runs in its own fiber on its `Schedule`; empty data is
 *   skipped (counted in `DiagnosticsMetrics.empty`, never reported);
 * - reports wait in a buffer of `bufferCapacity`; a report beyond it drops
 *   the oldest (`DiagnosticsDropped`, `DiagnosticsMetrics.dropped`), so a sink
 *   that is down costs bounded memory;
 * - one sender fiber sends a batch once `batchSize` reports wait or the
 *   oldest has waited `batchInterval`, whichever comes first;
 * - each send is bounded by `sendTimeout` and retried under a
 *   `@fedguard/retry` policy on retryable tags only; a batch that still fails
 *   is a `DiagnosticsSinkFailed` event and a metric, and is not retried again:
 *   the sender moves on to newer reports.
 *
 * Nothing here fails: `report`, `run` and `flush` have no error channel.
 *
 * @since 0.1.0
 */
import { Retry, RetryPolicy } from "@fedguard/retry"
import {
  Cause,
  Clock,
  type Config,
  Context,
  Duration,
  Effect,
  Exit,
  type FileSystem,
  Layer,
  Metric,
  Option,
  PubSub,
  Queue,
  type Schema,
  type Scope,
  Semaphore,
  Stream,
} from "effect"
import { type Collector, isValidName } from "./Collector.ts"
import * as DiagnosticsConfig from "./DiagnosticsConfig.ts"
import {
  DiagnosticsCollected,
  DiagnosticsCollectFailed,
  DiagnosticsDropped,
  type DiagnosticsEvent,
  DiagnosticsReported,
  DiagnosticsSinkFailed,
} from "./DiagnosticsEvent.ts"
import * as DiagnosticsMetrics from "./DiagnosticsMetrics.ts"
import type { DiagnosticsReport } from "./DiagnosticsReport.ts"
import * as DiagnosticsSink from "./DiagnosticsSink.ts"
import { isEmptyJson, jsonBytes } from "./internal/json.ts"
import { ReportBuffer } from "./internal/ReportBuffer.ts"
import * as LogTail from "./LogTail.ts"
import * as MetricsSnapshot from "./MetricsSnapshot.ts"
import * as ProcessReport from "./ProcessReport.ts"
import * as ResourceUsage from "./ResourceUsage.ts"

/**
 * Options of the reporting pipeline (defaults from
 * `DiagnosticsConfig.defaults`; a decoded `DiagnosticsConfig` is a valid
 * `Options`):
 *
 * - `batchSize` (50): a batch is sent once this many reports wait.
 * - `batchInterval` (10 s): … or once the oldest waiting report has waited
 *   this long.
 * - `bufferCapacity` (1000): most reports waiting; the oldest is dropped
 *   for a new one beyond it.
 * - `sendTimeout` (30 s): one send attempt still running after this long
 *   fails with `SinkTimeout` (retryable).
 * - `retry` (`RetryPolicy.defaults`: 3 retries, 1 s base, 30 s cap, additive
 *   jitter): how a failed send is retried.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly batchSize?: number | undefined
  readonly batchInterval?: Duration.Input | undefined
  readonly bufferCapacity?: number | undefined
  readonly sendTimeout?: Duration.Input | undefined
  readonly retry?: RetryPolicy.RetryPolicy | undefined
}

/**
 * The diagnostics service:
 *
 * - `run(collector)`: starts a collector in the caller's Scope; it stops
 *   when that Scope closes.
 * - `collectNow(collector)`: one run of a collector now, as its fiber does
 *   at each tick; returns the report it buffered, or `None` when the data was
 *   empty or the collector failed.
 * - `report(collector, data)`: buffers data from anywhere (empty data is
 *   skipped; a name outside 1 to 128 characters is a collect failure);
 *   returns at once.
 * - `flush`: sends everything buffered now, in batches, each as the sender
 *   would (retries included), and returns when done. Never fails.
 * - `buffered`: how many reports wait.
 * - `events` / `subscribe`: every `DiagnosticsEvent` (`subscribe` subscribes
 *   at once, in the caller's Scope).
 *
 * @since 0.1.0
 * @category services
 */
export class Diagnostics extends Context.Service<
  Diagnostics,
  {
    readonly run: <R>(collector: Collector<R>) => Effect.Effect<void, never, Scope.Scope | R>
    readonly collectNow: <R>(collector: Collector<R>) => Effect.Effect<Option.Option<DiagnosticsReport>, never, R>
    readonly report: (collector: string, data: Schema.Json) => Effect.Effect<void>
    readonly flush: Effect.Effect<void>
    readonly buffered: Effect.Effect<number>
    readonly events: Stream.Stream<DiagnosticsEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<DiagnosticsEvent>, never, Scope.Scope>
  }
>()("@fedguard/diagnostics/Diagnostics") {}

const describeCause = (cause: Cause.Cause<unknown>): { readonly tag: string; readonly reason: string } => {
  const error = Cause.squash(cause)
  const tag = Cause.hasFails(cause) ? Retry.errorTagOf(error) : "Defect"
  return { tag, reason: error instanceof Error ? error.message : String(error) }
}

/**
 * Builds the pipeline in the current Scope over the `DiagnosticsSink` in
 * context, and starts `collectors` in that Scope. The sender fiber lives in
 * the Scope; when it closes, the collectors stop, whatever is buffered gets
 * one last send attempt (no retries, bounded by `sendTimeout`), and the
 * event streams end.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* <R = never>(
  options: Options = {},
  collectors: ReadonlyArray<Collector<R>> = [],
): Effect.fn.Return<Diagnostics["Service"], never, Scope.Scope | DiagnosticsSink.DiagnosticsSink | R> {
  const defaults = DiagnosticsConfig.defaults
  const batchSize = Math.max(1, Math.floor(options.batchSize ?? defaults.batchSize))
  const batchIntervalMs = Duration.toMillis(Duration.fromInputUnsafe(options.batchInterval ?? defaults.batchInterval))
  const capacity = Math.max(1, Math.floor(options.bufferCapacity ?? defaults.bufferCapacity))
  const sendTimeout = Duration.fromInputUnsafe(options.sendTimeout ?? defaults.sendTimeout)
  const policy = options.retry ?? RetryPolicy.defaults

  const sink = yield* DiagnosticsSink.DiagnosticsSink
  const clock = yield* Clock.Clock
  const now = () => clock.currentTimeMillisUnsafe()
  const pubsub = yield* PubSub.unbounded<DiagnosticsEvent>()
  const buffer = new ReportBuffer<DiagnosticsReport>(capacity)
  // Rung whenever a report is buffered; sliding, so a burst of reports is one wake-up.
  const doorbell = yield* Queue.sliding<void>(1)
  // One batch in flight at a time, whether the sender or `flush` sends it.
  const sending = yield* Semaphore.make(1)
  let totalDropped = 0

  const sinkAttributes = { sink: sink.name }
  const reported = Metric.withAttributes(DiagnosticsMetrics.reported, sinkAttributes)
  const failedReports = Metric.withAttributes(DiagnosticsMetrics.failedReports, sinkAttributes)
  const sendRetries = Metric.withAttributes(DiagnosticsMetrics.sendRetries, sinkAttributes)
  const sendLatency = Metric.withAttributes(DiagnosticsMetrics.sendLatency, sinkAttributes)

  const publish = (event: DiagnosticsEvent) => PubSub.publish(pubsub, event)

  const enqueue = Effect.fnUntraced(function* (report: DiagnosticsReport) {
    const at = now()
    const dropped = buffer.push(report, at)
    Queue.offerUnsafe(doorbell, undefined)
    yield* Metric.update(DiagnosticsMetrics.buffered, buffer.size)
    if (dropped === undefined) return
    totalDropped++
    yield* Metric.update(DiagnosticsMetrics.dropped, 1)
    yield* publish(
      new DiagnosticsDropped({
        collector: dropped.item.collector,
        collectedAt: dropped.item.at,
        at,
        totalDropped,
      }),
    )
  })

  const collectFailed = Effect.fnUntraced(function* (collector: string, at: number, reason: string) {
    yield* Metric.update(Metric.withAttributes(DiagnosticsMetrics.collectFailures, { collector }), 1)
    yield* Effect.logWarning(`diagnostics: collector "${collector}" failed: ${reason}`)
    yield* publish(new DiagnosticsCollectFailed({ collector, at, reason }))
  })

  const accept = Effect.fnUntraced(function* (collector: string, at: number, data: Schema.Json) {
    if (!isValidName(collector)) {
      yield* collectFailed(collector.slice(0, 128), at, "a collector name has 1 to 128 characters")
      return Option.none<DiagnosticsReport>()
    }
    if (isEmptyJson(data)) {
      yield* Metric.update(Metric.withAttributes(DiagnosticsMetrics.empty, { collector }), 1)
      return Option.none<DiagnosticsReport>()
    }
    const report: DiagnosticsReport = { collector, at, data }
    yield* Metric.update(Metric.withAttributes(DiagnosticsMetrics.collected, { collector }), 1)
    yield* publish(new DiagnosticsCollected({ collector, at, bytes: jsonBytes(data) }))
    yield* enqueue(report)
    return Option.some(report)
  })

  const collectNow = <R2>(collector: Collector<R2>): Effect.Effect<Option.Option<DiagnosticsReport>, never, R2> =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(collector.collect)
      const at = now()
      if (Exit.isSuccess(exit)) {
        if (Option.isSome(exit.value)) return yield* accept(collector.name, at, exit.value.value)
        yield* Metric.update(Metric.withAttributes(DiagnosticsMetrics.empty, { collector: collector.name }), 1)
        return Option.none<DiagnosticsReport>()
      }
      if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
      yield* collectFailed(collector.name, at, describeCause(exit.cause).reason)
      return Option.none<DiagnosticsReport>()
    })

  // One batch, as many attempts as the policy allows; the outcome is an event and metrics.
  const sendBatch = Effect.fnUntraced(function* (batch: ReadonlyArray<DiagnosticsReport>, retry: boolean) {
    const startedAt = now()
    let attempts = 0
    const attempt = Effect.suspend(() => {
      attempts++
      return sink.send(batch)
    }).pipe(
      Effect.timeoutOrElse({
        duration: sendTimeout,
        orElse: () =>
          Effect.fail(new DiagnosticsSink.SinkTimeout({ sink: sink.name, timeoutMs: Duration.toMillis(sendTimeout) })),
      }),
    )
    const exit = yield* Effect.exit(
      retry
        ? Retry.retry(attempt, policy, {
            isRetryable: DiagnosticsSink.isRetryable,
            onEvent: (event) => (event._tag === "RetryScheduled" ? Metric.update(sendRetries, 1) : Effect.void),
          })
        : attempt,
    )
    const at = now()
    const latencyMs = at - startedAt
    yield* Metric.update(DiagnosticsMetrics.batchSize, batch.length)
    yield* Metric.update(sendLatency, latencyMs)
    if (Exit.isSuccess(exit)) {
      yield* Metric.update(reported, batch.length)
      yield* publish(new DiagnosticsReported({ sink: sink.name, reports: batch.length, attempts, latencyMs, at }))
      return
    }
    if (Cause.hasInterruptsOnly(exit.cause)) return yield* Effect.interrupt
    const { tag, reason } = describeCause(exit.cause)
    yield* Metric.update(Metric.withAttributes(DiagnosticsMetrics.sinkFailures, { sink: sink.name, error: tag }), 1)
    yield* Metric.update(failedReports, batch.length)
    yield* Effect.logWarning(
      `diagnostics: sink ${sink.name} did not take ${batch.length} reports after ${attempts} attempts: ${reason}`,
    )
    yield* publish(
      new DiagnosticsSinkFailed({ sink: sink.name, reports: batch.length, attempts, errorTag: tag, reason, at }),
    )
  })

  const takeAndSend = (retry: boolean) =>
    Effect.suspend(() => {
      const batch = buffer.take(batchSize)
      if (batch.length === 0) return Effect.void
      return Metric.update(DiagnosticsMetrics.buffered, buffer.size).pipe(Effect.andThen(sendBatch(batch, retry)))
    })

  // Waits until a batch is due: `batchSize` reports wait, or the oldest has waited `batchInterval`.
  const batchDue = Effect.gen(function* () {
    while (true) {
      const oldest = buffer.oldest
      if (oldest === undefined) {
        yield* Queue.take(doorbell)
        continue
      }
      if (buffer.size >= batchSize) return
      const wait = oldest.enqueuedAt + batchIntervalMs - now()
      if (wait <= 0) return
      yield* Effect.timeoutOption(Queue.take(doorbell), Duration.millis(wait))
    }
  })

  yield* Effect.forkScoped(Effect.forever(batchDue.pipe(Effect.andThen(sending.withPermits(1)(takeAndSend(true))))))

  const flushWith = (retry: boolean) =>
    sending.withPermits(1)(
      Effect.gen(function* () {
        while (buffer.size > 0) yield* takeAndSend(retry)
      }),
    )

  // Finalizers run in reverse order: this one runs after the collectors below stop and before the
  // sender above is interrupted. One attempt, no retries: closing must not wait out a backoff.
  yield* Effect.addFinalizer(() =>
    flushWith(false).pipe(Effect.timeoutOption(sendTimeout), Effect.andThen(PubSub.shutdown(pubsub))),
  )

  const run = <R2>(collector: Collector<R2>): Effect.Effect<void, never, Scope.Scope | R2> =>
    Effect.forkScoped(Effect.schedule(collectNow(collector), collector.schedule)).pipe(Effect.asVoid)

  for (const collector of collectors) yield* run(collector)

  return Diagnostics.of({
    run,
    collectNow,
    report: (collector, data) => Effect.suspend(() => accept(collector, now(), data)).pipe(Effect.asVoid),
    flush: flushWith(true).pipe(Effect.withSpan("Diagnostics.flush")),
    buffered: Effect.sync(() => buffer.size),
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  })
})

/**
 * The pipeline as a Layer over the `DiagnosticsSink` in context, running
 * `collectors` for the Layer's lifetime.
 *
 * @example
 * ```ts
 * import { Diagnostics, JsonLinesSink, MetricsSnapshot } from "@fedguard/diagnostics"
 * import { Layer } from "effect"
 *
 * const DiagnosticsLive = Diagnostics.layer({ batchSize: 20 }, [MetricsSnapshot.collector({ interval: "1 minute" })]).pipe(
 *   Layer.provide(JsonLinesSink.layer("diagnostics.jsonl")),
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <R = never>(
  options: Options = {},
  collectors: ReadonlyArray<Collector<R>> = [],
): Layer.Layer<Diagnostics, never, DiagnosticsSink.DiagnosticsSink | Exclude<R, Scope.Scope>> =>
  Layer.effect(Diagnostics, make(options, collectors))

/**
 * The built-in collectors a configuration turns on, each at its interval
 * (an interval of zero leaves it off): the log tail (only with
 * `logTailPath`), the metrics snapshot, the process report and the resource
 * usage, over the `FileSystem`, `ResourceReadings` and `ProcessReportSource`
 * in context.
 *
 * @since 0.1.0
 * @category constructors
 */
export const builtinCollectors = Effect.fnUntraced(function* (config: DiagnosticsConfig.DiagnosticsConfig) {
  const on = (interval: Duration.Duration) => Duration.isPositive(interval)
  const collectors: Array<Collector> = []
  if (config.logTailPath !== undefined && on(config.logTailInterval)) {
    collectors.push(
      yield* LogTail.make({
        path: config.logTailPath,
        interval: config.logTailInterval,
        maxBytes: config.logTailMaxBytes,
        maxLines: config.logTailMaxLines,
      }),
    )
  }
  if (on(config.metricsInterval)) collectors.push(MetricsSnapshot.collector({ interval: config.metricsInterval }))
  if (on(config.processReportInterval)) {
    collectors.push(yield* ProcessReport.make({ interval: config.processReportInterval }))
  }
  if (on(config.resourceUsageInterval)) {
    collectors.push(yield* ResourceUsage.make({ interval: config.resourceUsageInterval }))
  }
  return collectors
})

/**
 * Diagnostics of this Node process configured from the `ConfigProvider`
 * (section `path`, default `"diagnostics"`; see `DiagnosticsConfig`): the
 * pipeline with its options and the built-in collectors it turns on
 * (`builtinCollectors`), plus `extra` collectors of the application's own,
 * over the `DiagnosticsSink` and the `FileSystem` in context. Fails with a
 * `Config.ConfigError` naming the wrong key.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { Diagnostics, JsonLinesSink } from "@fedguard/diagnostics"
 * import { Layer } from "effect"
 *
 * const DiagnosticsLive = Diagnostics.layerConfig().pipe(
 *   Layer.provide(JsonLinesSink.layer("diagnostics.jsonl")),
 *   Layer.provide(NodeFileSystem.layer),
 * )
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  path?: string,
  extra: ReadonlyArray<Collector> = [],
): Layer.Layer<Diagnostics, Config.ConfigError, DiagnosticsSink.DiagnosticsSink | FileSystem.FileSystem> =>
  Layer.effect(
    Diagnostics,
    Effect.gen(function* () {
      const config = yield* DiagnosticsConfig.config(path)
      const collectors = yield* builtinCollectors(config)
      return yield* make(config, [...collectors, ...extra])
    }),
  ).pipe(Layer.provide([ResourceUsage.layerReadings(), ProcessReport.layerSource]))
