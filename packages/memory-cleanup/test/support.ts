import { Effect, Metric, Ref, type Scope, Stream } from "effect"
import * as GarbageCollector from "../src/GarbageCollector.ts"
import * as MemoryCleanup from "../src/MemoryCleanup.ts"
import * as MemoryReadings from "../src/MemoryReadings.ts"

export const MiB = 1024 * 1024
export const GiB = 1024 * MiB

/** A plausible reading of a trainer: 100 MiB heap, 40 MiB external, 400 MiB RSS, 4 GiB heap limit. */
export const reading = (overrides: Partial<MemoryReadings.MemoryReading> = {}): MemoryReadings.MemoryReading => ({
  heapUsed: 100 * MiB,
  heapTotal: 160 * MiB,
  external: 40 * MiB,
  arrayBuffers: 30 * MiB,
  rss: 400 * MiB,
  heapSizeLimit: 4 * GiB,
  ...overrides,
})

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

/**
 * A cleanup over scripted memory: `memory` is what the next reading returns (`reads` counts the
 * readings), and the scripted GC counts its calls and applies `afterGc` (when set) to the memory,
 * as a real GC would lower it; with `unavailable` the GC fails with GcUnavailable instead.
 */
export const setup = (
  options: MemoryCleanup.Options = {},
  gc: { readonly afterGc?: MemoryReadings.MemoryReading; readonly unavailable?: string } = {},
) =>
  Effect.gen(function* () {
    const memory = yield* Ref.make(reading())
    const reads = yield* Ref.make(0)
    const gcCalls = yield* Ref.make(0)
    const collector: GarbageCollector.GarbageCollector["Service"] =
      gc.unavailable === undefined
        ? {
            collect: Effect.gen(function* () {
              yield* Ref.update(gcCalls, (n) => n + 1)
              if (gc.afterGc !== undefined) yield* Ref.set(memory, gc.afterGc)
            }),
          }
        : { collect: Effect.fail(new GarbageCollector.GcUnavailable({ reason: gc.unavailable })) }
    const cleanup = yield* MemoryCleanup.make(options).pipe(
      Effect.provideService(
        MemoryReadings.MemoryReadings,
        MemoryReadings.MemoryReadings.of({
          read: Effect.andThen(
            Ref.update(reads, (n) => n + 1),
            Ref.get(memory),
          ),
        }),
      ),
      Effect.provideService(GarbageCollector.GarbageCollector, GarbageCollector.GarbageCollector.of(collector)),
    )
    const events = yield* record(cleanup.subscribe)
    return { cleanup, memory, reads, gcCalls, events }
  })

/** Runs an effect with a registry of its own, so that metric values start at zero in every test. */
export const freshMetrics = <A, E, R>(self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.provideService(self, Metric.MetricRegistry, new Map())

/** The value of a counter with the given attributes. */
export const count = (
  metric: Metric.Metric<number, Metric.CounterState<number>>,
  attributes: Record<string, string> = {},
) => Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)
