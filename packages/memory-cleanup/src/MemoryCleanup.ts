/**
 * Memory cleanup for long federated jobs: a pipeline of release steps and a
 * full GC, run every N completed rounds, whenever memory crosses a
 * threshold, or on demand.
 *
 * NVIDIA FLARE (PR #4036 for the server, PR #4211 for clients) cleans up
 * every N rounds because memory held from earlier rounds (references kept
 * alive, allocator arenas, the CUDA cache) grows RSS until the job is killed;
 * Fed-BioMed's researcher (issue #1101) ran out of memory at round 22 of a
 * 600 MB model because it kept every round's weights.
 * In Node the same shape applies: whoever owns memory that is no longer
 * needed (a cache, the previous round's buffers) registers a release hook,
 * and the cleanup runs the hooks, then a full GC, so that what they let go
 * (and the `ArrayBuffer`s behind it) is reclaimed now rather than whenever V8
 * gets to it.
 *
 * A run never fails its caller: a step that fails, dies or outlives
 * `stepTimeout` is logged, counted (`MemoryCleanupMetrics.stepFailures`) and
 * reported `failed`, and the steps after it still run. Runs never overlap.
 * Each one publishes `CleanupCompleted` with the figures before and after.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Clock,
  Context,
  Duration,
  Effect,
  Exit,
  Layer,
  Metric,
  Option,
  PubSub,
  Schedule,
  type Scope,
  Semaphore,
  Stream,
} from "effect"
import * as GarbageCollector from "./GarbageCollector.ts"
import { anyThreshold, crossed, figureNames, figuresOf, roundDue, type Thresholds } from "./internal/triggers.ts"
import * as MemoryCleanupConfig from "./MemoryCleanupConfig.ts"
import { CleanupCompleted, type StepReport, type Threshold, type Trigger } from "./MemoryCleanupEvent.ts"
import * as MemoryCleanupMetrics from "./MemoryCleanupMetrics.ts"
import * as MemoryReadings from "./MemoryReadings.ts"

/**
 * Options of a cleanup (defaults from `MemoryCleanupConfig.defaults`; a
 * decoded `MemoryCleanupConfig` is a valid `Options`):
 *
 * - `everyRounds` (0: off): run when `roundCompleted(round)` is called with a
 *   multiple of it.
 * - `thresholdBytes`, `thresholdRss` (none): run when heap used, or RSS, is
 *   above this many bytes.
 * - `heapFraction` (none): run when heap used is above this fraction
 *   (0 < f ≤ 1) of V8's `heap_size_limit`.
 * - `checkInterval` (10 s): time between threshold checks; no checker runs
 *   without a threshold.
 * - `minInterval` (60 s): a threshold crossing less than this after the
 *   last run ended does not run again (round and manual runs always run).
 * - `gc` (`true`): end each run with a full GC; with `false` the `gc` step
 *   is reported `skipped`.
 * - `stepTimeout` (30 s): a step still running after this long is
 *   interrupted and reported `failed`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly everyRounds?: number | undefined
  readonly thresholdBytes?: number | undefined
  readonly thresholdRss?: number | undefined
  readonly heapFraction?: number | undefined
  readonly checkInterval?: Duration.Input | undefined
  readonly minInterval?: Duration.Input | undefined
  readonly gc?: boolean | undefined
  readonly stepTimeout?: Duration.Input | undefined
}

/**
 * The memory cleanup service:
 *
 * - `register(name, release)`: adds a release step, run at every run in
 *   registration order before the GC; it is removed when the caller's Scope
 *   closes, or earlier by running the returned effect. `release` may fail or
 *   die: the step is reported `failed` and the run goes on.
 * - `roundCompleted(round)`: tells the cleanup that round `round` (counted
 *   from 1) completed; runs, and returns the run's event, when `round` is a
 *   multiple of `everyRounds`; otherwise returns `None` at once.
 * - `run`: runs now (`trigger: "manual"`), whatever the cadence and the
 *   thresholds.
 * - `checkThresholds`: one threshold check now, as the checker does every
 *   `checkInterval`: runs when memory is above a threshold and the last run
 *   ended at least `minInterval` ago.
 * - `events` / `subscribe`: `CleanupCompleted` as a Stream (`subscribe`
 *   subscribes at once, in the caller's Scope, so no run is missed between
 *   subscribing and consuming).
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryCleanup extends Context.Service<
  MemoryCleanup,
  {
    readonly register: (
      name: string,
      release: Effect.Effect<unknown, unknown>,
    ) => Effect.Effect<Effect.Effect<void>, never, Scope.Scope>
    readonly roundCompleted: (round: number) => Effect.Effect<Option.Option<CleanupCompleted>>
    readonly run: Effect.Effect<CleanupCompleted>
    readonly checkThresholds: Effect.Effect<Option.Option<CleanupCompleted>>
    readonly events: Stream.Stream<CleanupCompleted>
    readonly subscribe: Effect.Effect<Stream.Stream<CleanupCompleted>, never, Scope.Scope>
  }
>()("@fedguard/memory-cleanup/MemoryCleanup") {}

interface ReleaseHook {
  readonly name: string
  readonly release: Effect.Effect<unknown, unknown>
}

const describeError = (error: unknown): string => (error instanceof Error ? error.message : String(error))

const describeCause = (cause: Cause.Cause<unknown>): string =>
  Cause.hasFails(cause)
    ? `failed: ${describeError(Cause.squash(cause))}`
    : Cause.hasDies(cause)
      ? `died: ${describeError(Cause.squash(cause))}`
      : "was interrupted"

// The metrics with their attributes, built once rather than on every run.
const runsBy: Record<Trigger, Metric.Metric<number, Metric.CounterState<number>>> = {
  rounds: Metric.withAttributes(MemoryCleanupMetrics.runs, { trigger: "rounds" }),
  threshold: Metric.withAttributes(MemoryCleanupMetrics.runs, { trigger: "threshold" }),
  manual: Metric.withAttributes(MemoryCleanupMetrics.runs, { trigger: "manual" }),
}
const freedBy = figureNames.map((figure) => ({
  figure,
  gauge: Metric.withAttributes(MemoryCleanupMetrics.bytesFreed, { figure }),
  histogram: Metric.withAttributes(MemoryCleanupMetrics.bytesFreedPerRun, { figure }),
}))

const mib = (bytes: number): string => (bytes / (1024 * 1024)).toFixed(1)

/**
 * Builds a cleanup in the current Scope, with the `MemoryReadings` and the
 * `GarbageCollector` in context. With a threshold set, a checker fiber
 * (`Schedule.spaced(checkInterval)`, the first check one interval after the
 * start) runs in that Scope; closing it stops the checker and ends the
 * event streams.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { GarbageCollector, MemoryCleanup, MemoryReadings } from "@fedguard/memory-cleanup"
 *
 * const program = Effect.scoped(
 *   Effect.gen(function* () {
 *     const cleanup = yield* MemoryCleanup.make({ everyRounds: 5 })
 *     for (let round = 1; round <= 10; round++) {
 *       yield* cleanup.roundCompleted(round) // runs after rounds 5 and 10
 *     }
 *   }),
 * ).pipe(Effect.provide([MemoryReadings.layer, GarbageCollector.layer()]))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (
  options?: Options,
) => Effect.Effect<
  MemoryCleanup["Service"],
  never,
  Scope.Scope | MemoryReadings.MemoryReadings | GarbageCollector.GarbageCollector
> = Effect.fnUntraced(function* (options: Options = {}) {
  const defaults = MemoryCleanupConfig.defaults
  const everyRounds = Math.max(0, Math.floor(options.everyRounds ?? defaults.everyRounds))
  const thresholds: Thresholds = {
    heapUsed: options.thresholdBytes,
    rss: options.thresholdRss,
    heapFraction: options.heapFraction,
  }
  const checkInterval = Duration.fromInputUnsafe(options.checkInterval ?? defaults.checkInterval)
  const minIntervalMs = Duration.toMillis(Duration.fromInputUnsafe(options.minInterval ?? defaults.minInterval))
  const stepTimeout = Duration.fromInputUnsafe(options.stepTimeout ?? defaults.stepTimeout)
  const gcEnabled = options.gc ?? defaults.gc

  const readings = yield* MemoryReadings.MemoryReadings
  const collector = yield* GarbageCollector.GarbageCollector
  const clock = yield* Clock.Clock
  const now = () => clock.currentTimeMillisUnsafe()
  const pubsub = yield* PubSub.unbounded<CleanupCompleted>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  // One run at a time: a threshold check that finds a round's run in progress waits for it,
  // then sees it as the last run and respects `minInterval`.
  const lock = yield* Semaphore.make(1)

  // Registered hooks by a private id; Map order is registration order, the order they run in.
  const hooks = new Map<number, ReleaseHook>()
  let nextHookId = 0
  let lastRunEndedAt: number | undefined

  // A step's success is `undefined` (ok) or the reason it was skipped.
  const gcStep: Effect.Effect<string | undefined> = gcEnabled
    ? collector.collect.pipe(
        Effect.as(undefined),
        Effect.catchTag("GcUnavailable", (unavailable) => Effect.succeed(unavailable.reason)),
      )
    : Effect.succeed("disabled by configuration (gc: false)")

  const runStep = Effect.fnUntraced(function* (name: string, step: Effect.Effect<string | undefined, unknown>) {
    const startedAt = now()
    const exit = yield* Effect.exit(Effect.timeoutOption(step, stepTimeout))
    const durationMs = now() - startedAt
    let failure: string
    if (Exit.isSuccess(exit)) {
      if (Option.isSome(exit.value)) {
        const skipped = exit.value.value
        const report: StepReport =
          skipped === undefined
            ? { name, status: "ok", durationMs }
            : { name, status: "skipped", durationMs, reason: skipped }
        return report
      }
      failure = `timed out after ${Duration.toMillis(stepTimeout)} ms`
    } else {
      failure = describeCause(exit.cause)
    }
    yield* Metric.update(Metric.withAttributes(MemoryCleanupMetrics.stepFailures, { step: name }), 1)
    yield* Effect.logWarning(`memory cleanup: step "${name}" ${failure}`)
    const report: StepReport = { name, status: "failed", durationMs, reason: failure }
    return report
  })

  const runPipeline = Effect.fnUntraced(function* (
    trigger: Trigger,
    details: { readonly round?: number; readonly crossed?: ReadonlyArray<Threshold> },
  ) {
    const at = now()
    const before = figuresOf(yield* readings.read)
    const steps: Array<StepReport> = []
    // A snapshot: a hook registered or removed during the run takes effect from the next run.
    for (const hook of Array.from(hooks.values())) {
      steps.push(yield* runStep(hook.name, Effect.as(hook.release, undefined)))
    }
    steps.push(yield* runStep("gc", gcStep))
    const after = figuresOf(yield* readings.read)
    const endedAt = now()
    lastRunEndedAt = endedAt
    const event = new CleanupCompleted({ trigger, ...details, at, durationMs: endedAt - at, steps, before, after })

    yield* Metric.update(runsBy[trigger], 1)
    const freed = event.freed
    for (const { figure, gauge, histogram } of freedBy) {
      yield* Metric.update(gauge, freed[figure])
      yield* Metric.update(histogram, freed[figure])
    }
    const failed = steps.filter((step) => step.status === "failed").length
    yield* Effect.logInfo(
      `memory cleanup (${trigger}${details.round === undefined ? "" : ` after round ${details.round}`}): ` +
        `heap used ${mib(before.heapUsed)} → ${mib(after.heapUsed)} MiB, ` +
        `external ${mib(before.external)} → ${mib(after.external)} MiB, ` +
        `rss ${mib(before.rss)} → ${mib(after.rss)} MiB` +
        (failed === 0 ? "" : `, ${failed} of ${steps.length} steps failed`),
    )
    yield* PubSub.publish(pubsub, event)
    return event
  })

  const checkThresholds: Effect.Effect<Option.Option<CleanupCompleted>> = lock.withPermits(1)(
    Effect.gen(function* () {
      const over = crossed(yield* readings.read, thresholds)
      if (over.length === 0) return Option.none()
      if (lastRunEndedAt !== undefined && now() - lastRunEndedAt < minIntervalMs) {
        yield* Metric.update(MemoryCleanupMetrics.thresholdRunsSuppressed, 1)
        yield* Effect.logDebug(
          `memory cleanup: above ${over.join(", ")} threshold, but the last run ended ${now() - lastRunEndedAt} ms ago ` +
            `(minimum interval ${minIntervalMs} ms)`,
        )
        return Option.none()
      }
      return Option.some(yield* runPipeline("threshold", { crossed: over }))
    }),
  )

  if (anyThreshold(thresholds)) {
    yield* Effect.forkScoped(
      checkThresholds.pipe(
        // A check that dies (a reading that throws) is logged; the next check still comes.
        Effect.catchCause((cause) => Effect.logWarning("memory cleanup: threshold check failed", cause)),
        Effect.schedule(Schedule.spaced(checkInterval)),
      ),
    )
  }

  const register = Effect.fn("MemoryCleanup.register")(function* (
    name: string,
    release: Effect.Effect<unknown, unknown>,
  ) {
    const id = nextHookId++
    hooks.set(id, { name, release })
    const deregister = Effect.sync(() => void hooks.delete(id))
    yield* Effect.addFinalizer(() => deregister)
    return deregister
  })

  const roundCompleted = Effect.fn("MemoryCleanup.roundCompleted")(function* (round: number) {
    if (!roundDue(round, everyRounds)) return Option.none<CleanupCompleted>()
    return Option.some(yield* lock.withPermits(1)(runPipeline("rounds", { round })))
  })

  return MemoryCleanup.of({
    register,
    roundCompleted,
    run: lock.withPermits(1)(runPipeline("manual", {})).pipe(Effect.withSpan("MemoryCleanup.run")),
    checkThresholds,
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  })
})

/**
 * The cleanup as a Layer over given `MemoryReadings` and `GarbageCollector`
 * (tests provide scripted ones; an application may choose
 * `GarbageCollector.layer({ enableAtRuntime: false })`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNoDeps = (
  options: Options = {},
): Layer.Layer<MemoryCleanup, never, MemoryReadings.MemoryReadings | GarbageCollector.GarbageCollector> =>
  Layer.effect(MemoryCleanup, make(options))

/**
 * The cleanup of this Node process: `options` over the process's readings
 * (`MemoryReadings.layer`) and its GC (`GarbageCollector.layer()`: from
 * `--expose-gc`, else enabled at runtime).
 *
 * @example
 * ```ts
 * import { MemoryCleanup } from "@fedguard/memory-cleanup"
 * const CleanupLive = MemoryCleanup.layer({ everyRounds: 5, thresholdRss: 6 * 1024 ** 3 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<MemoryCleanup> =>
  layerNoDeps(options).pipe(Layer.provide([MemoryReadings.layer, GarbageCollector.layer()]))

/**
 * The cleanup of this Node process configured from the `ConfigProvider`
 * (section `path`, default `"memoryCleanup"`; see `MemoryCleanupConfig`).
 * Fails with a `Config.ConfigError` naming the wrong key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (path?: string) =>
  Layer.effect(MemoryCleanup, Effect.flatMap(MemoryCleanupConfig.config(path), make)).pipe(
    Layer.provide([MemoryReadings.layer, GarbageCollector.layer()]),
  )
