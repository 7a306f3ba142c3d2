/**
 * Where the cleanup reads the process's memory figures: a service, so that
 * tests script the figures (`layerFromRef`) and drive thresholds on the
 * `TestClock`, and the real layer reads Node.
 *
 * @since 0.1.0
 */
import * as v8 from "node:v8"
import { Context, Effect, Layer, Ref } from "effect"
import type { MemoryFigures } from "./MemoryCleanupEvent.ts"

/**
 * One reading: the event's `MemoryFigures` (bytes) plus what the thresholds
 * need besides: `heapTotal` (bytes V8 reserved for the heap) and
 * `heapSizeLimit` (V8's `heap_size_limit`, the heap size at which V8 aborts
 * with an out-of-memory error; set by `--max-old-space-size`).
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryReading extends MemoryFigures {
  readonly heapTotal: number
  readonly heapSizeLimit: number
}

/**
 * The memory readings service: `read` returns the current figures.
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryReadings extends Context.Service<
  MemoryReadings,
  {
    readonly read: Effect.Effect<MemoryReading>
  }
>()("@fedguard/memory-cleanup/MemoryReadings") {}

/**
 * The process's figures: `process.memoryUsage()` (heap used and total,
 * external, array buffers, RSS) and `v8.getHeapStatistics().heap_size_limit`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const readProcess: Effect.Effect<MemoryReading> = Effect.sync(() => {
  const usage = process.memoryUsage()
  return {
    heapUsed: usage.heapUsed,
    heapTotal: usage.heapTotal,
    external: usage.external,
    arrayBuffers: usage.arrayBuffers,
    rss: usage.rss,
    heapSizeLimit: v8.getHeapStatistics().heap_size_limit,
  }
})

/**
 * The readings of this Node process (`readProcess`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<MemoryReadings> = Layer.succeed(
  MemoryReadings,
  MemoryReadings.of({ read: readProcess }),
)

/**
 * Readings that return the current value of `ref`: a test sets the figures
 * it wants the next check or run to see.
 *
 * @example
 * ```ts
 * import { Effect, Ref } from "effect"
 * import { MemoryReadings } from "@fedguard/memory-cleanup"
 *
 * const program = Effect.gen(function* () {
 *   const memory = yield* Ref.make<MemoryReadings.MemoryReading>({
 *     heapUsed: 100, heapTotal: 200, external: 0, arrayBuffers: 0, rss: 300, heapSizeLimit: 1000,
 *   })
 *   const layer = MemoryReadings.layerFromRef(memory)
 * })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromRef = (ref: Ref.Ref<MemoryReading>): Layer.Layer<MemoryReadings> =>
  Layer.succeed(MemoryReadings, MemoryReadings.of({ read: Ref.get(ref) }))
