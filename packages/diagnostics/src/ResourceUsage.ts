/**
 * The resource-usage collector: CPU time (user and system), memory (RSS,
 * heap, external) and event-loop delay, so that a client that trains slowly
 * because it is starved (CPU), swelling (RSS) or blocked (event-loop delay:
 * a synchronous training step keeps timers and heartbeats from running) says
 * so.
 *
 * @since 0.1.0
 */
import { monitorEventLoopDelay } from "node:perf_hooks"
import { Clock, Context, type Duration, Effect, Layer, Option, type Schema } from "effect"
import * as Collector from "./Collector.ts"

/**
 * Event-loop delay over the interval since the previous reading, in
 * milliseconds: how late timers fired (`perf_hooks.monitorEventLoopDelay`).
 *
 * @since 0.1.0
 * @category models
 */
export interface EventLoopDelay {
  readonly minMs: number
  readonly meanMs: number
  readonly p50Ms: number
  readonly p99Ms: number
  readonly maxMs: number
}

/**
 * One reading: cumulative CPU time of the process in microseconds
 * (`process.cpuUsage()`), memory in bytes (`process.memoryUsage()`) and the
 * event-loop delay since the previous reading (none when no sample was
 * taken).
 *
 * @since 0.1.0
 * @category models
 */
export interface ResourceReading {
  readonly cpuUserMicros: number
  readonly cpuSystemMicros: number
  readonly rssBytes: number
  readonly heapUsedBytes: number
  readonly heapTotalBytes: number
  readonly externalBytes: number
  readonly eventLoopDelay: EventLoopDelay | undefined
}

/**
 * Where the collector reads the figures: a service, so that tests script
 * them on the `TestClock`.
 *
 * @since 0.1.0
 * @category services
 */
export class ResourceReadings extends Context.Service<
  ResourceReadings,
  {
    readonly read: Effect.Effect<ResourceReading>
  }
>()("@fedguard/diagnostics/ResourceReadings") {}

const nanosToMillis = (nanos: number) => Math.round(nanos / 1e3) / 1e3

/**
 * This process's readings. The event-loop delay monitor (sampling every
 * `resolution`, default 20 ms) runs for the Layer's lifetime, and each
 * reading resets it, so the delay reported is the delay since the previous
 * reading.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerReadings = (options: { readonly resolutionMs?: number } = {}): Layer.Layer<ResourceReadings> =>
  Layer.effect(
    ResourceReadings,
    Effect.gen(function* () {
      const monitor = yield* Effect.acquireRelease(
        Effect.sync(() => {
          const histogram = monitorEventLoopDelay({ resolution: options.resolutionMs ?? 20 })
          histogram.enable()
          return histogram
        }),
        (histogram) => Effect.sync(() => histogram.disable()),
      )
      return ResourceReadings.of({
        read: Effect.sync(() => {
          const cpu = process.cpuUsage()
          const memory = process.memoryUsage()
          const eventLoopDelay: EventLoopDelay | undefined =
            monitor.count === 0
              ? undefined
              : {
                  minMs: nanosToMillis(monitor.min),
                  meanMs: nanosToMillis(monitor.mean),
                  p50Ms: nanosToMillis(monitor.percentile(50)),
                  p99Ms: nanosToMillis(monitor.percentile(99)),
                  maxMs: nanosToMillis(monitor.max),
                }
          monitor.reset()
          return {
            cpuUserMicros: cpu.user,
            cpuSystemMicros: cpu.system,
            rssBytes: memory.rss,
            heapUsedBytes: memory.heapUsed,
            heapTotalBytes: memory.heapTotal,
            externalBytes: memory.external,
            eventLoopDelay,
          }
        }),
      })
    }),
  )

/**
 * What one run reports: CPU time used since the previous run (`cpu`:
 * `userMicros`, `systemMicros`, and `percent` of one core over the elapsed
 * `Clock` time), the memory figures in bytes (`memory`: `rss`, `heapUsed`,
 * `heapTotal`, `external`), and `eventLoopDelay` (milliseconds) when sampled.
 *
 * @since 0.1.0
 * @category models
 */
export interface ResourceUsageData {
  readonly cpu: { readonly userMicros: number; readonly systemMicros: number; readonly percent: number }
  readonly memory: {
    readonly rss: number
    readonly heapUsed: number
    readonly heapTotal: number
    readonly external: number
  }
  readonly eventLoopDelay?: EventLoopDelay
}

/**
 * Options of the collector: `name` (`"resource-usage"`) and `interval`
 * (10 s).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly name?: string | undefined
  readonly interval?: Duration.Input | undefined
}

/**
 * The resource-usage collector over the `ResourceReadings` in context
 * (`layerReadings()` for this process). The first run's CPU figures cover
 * the time since the collector was made.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const readings = yield* ResourceReadings
  const clock = yield* Clock.Clock
  let previous = yield* readings.read
  let previousAt = clock.currentTimeMillisUnsafe()

  const collect = Effect.map(readings.read, (reading) => {
    const at = clock.currentTimeMillisUnsafe()
    const userMicros = reading.cpuUserMicros - previous.cpuUserMicros
    const systemMicros = reading.cpuSystemMicros - previous.cpuSystemMicros
    const elapsedMicros = (at - previousAt) * 1000
    previous = reading
    previousAt = at
    const data: ResourceUsageData = {
      cpu: {
        userMicros,
        systemMicros,
        percent: elapsedMicros <= 0 ? 0 : Math.round(((userMicros + systemMicros) / elapsedMicros) * 1e4) / 100,
      },
      memory: {
        rss: reading.rssBytes,
        heapUsed: reading.heapUsedBytes,
        heapTotal: reading.heapTotalBytes,
        external: reading.externalBytes,
      },
      ...(reading.eventLoopDelay === undefined ? {} : { eventLoopDelay: reading.eventLoopDelay }),
    }
    return Option.some(data as unknown as Schema.Json)
  })

  return Collector.make({
    name: options.name ?? "resource-usage",
    interval: options.interval ?? "10 seconds",
    collect,
  })
})
