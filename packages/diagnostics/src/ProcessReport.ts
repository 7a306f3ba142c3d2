/**
 * The process-report collector: a bounded, useful subset of Node's built-in
 * diagnostic report (`process.report.getReport()`): where the JavaScript
 * thread is (its stack), the process's resource usage, the heap, and the
 * libuv handles it holds (sockets, timers).
 *
 * This is the seed's stack collector. Node's full report is ~10 KB and more
 * with many handles, and it carries what must never leave the machine: the
 * environment variables (the federation secret may be one), the command
 * line, user limits and the loaded shared objects. `trim` keeps a fixed
 * subset and drops those.
 *
 * @since 0.1.0
 */
import { Context, type Duration, Effect, Layer, Option, Predicate, type Schema } from "effect"
import * as Collector from "./Collector.ts"

/**
 * Where the collector reads the report: a service, so that tests script it.
 * `read` returns Node's report as a plain object (`unknown`: its shape is
 * Node's, checked field by field by `trim`).
 *
 * @since 0.1.0
 * @category services
 */
export class ProcessReportSource extends Context.Service<
  ProcessReportSource,
  {
    readonly read: Effect.Effect<unknown>
  }
>()("@fedguard/diagnostics/ProcessReportSource") {}

/**
 * This process's report: `process.report.getReport()` (synchronous; it
 * takes a few milliseconds, which is why the default cadence is 5 minutes).
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSource: Layer.Layer<ProcessReportSource> = Layer.succeed(
  ProcessReportSource,
  ProcessReportSource.of({ read: Effect.sync(() => process.report.getReport() as unknown) }),
)

/**
 * Bounds of the trimmed report: `maxStackFrames` (20) frames of the
 * JavaScript stack, `maxHandles` (20) libuv handles listed (all are
 * counted by type).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxStackFrames?: number | undefined
  readonly maxHandles?: number | undefined
}

/**
 * The trimmed report:
 *
 * - `node`: `version`, `pid`, `platform`, `arch`.
 * - `stack`: the JavaScript stack's `message` and its first frames.
 * - `heap`: `usedBytes`, `totalBytes`, `limitBytes` (V8's heap).
 * - `resources`: `rssBytes`, `maxRssBytes`, `userCpuSeconds`,
 *   `kernelCpuSeconds`, `cpuPercent`, `freeMemoryBytes`, `totalMemoryBytes`.
 * - `handles`: `total`, `active`, `byType` (counts), and `list`: the first
 *   handles with `type`, `active`, `referenced` and their endpoints when
 *   they have some (sockets).
 * - `workers`: how many worker threads the report lists.
 *
 * Fields the report lacks are left out. Never included: environment
 * variables, command line, cwd, user limits, shared objects, native stack.
 *
 * @since 0.1.0
 * @category models
 */
export interface TrimmedReport {
  readonly node: Record<string, string | number>
  readonly stack?: { readonly message: string; readonly frames: ReadonlyArray<string>; readonly omitted: number }
  readonly heap: Record<string, number>
  readonly resources: Record<string, number>
  readonly handles: {
    readonly total: number
    readonly active: number
    readonly byType: Record<string, number>
    readonly list: ReadonlyArray<Record<string, string | boolean>>
  }
  readonly workers: number
}

const record = (value: unknown): Record<string, unknown> =>
  Predicate.isObject(value) && !Array.isArray(value) ? (value as Record<string, unknown>) : {}

const array = (value: unknown): ReadonlyArray<unknown> => (Array.isArray(value) ? value : [])

// Copies the listed fields that `accept` takes, under their new names.
const pick = <T extends string | number>(
  source: Record<string, unknown>,
  fields: ReadonlyArray<readonly [from: string, to: string]>,
  accept: (value: unknown) => value is T,
): Record<string, T> => {
  const out: Record<string, T> = {}
  for (const [from, to] of fields) {
    const value = source[from]
    if (accept(value)) out[to] = value
  }
  return out
}

const finite = (value: unknown): value is number => typeof value === "number" && Number.isFinite(value)

/**
 * Trims Node's diagnostic report to `TrimmedReport` within `limits`. Pure:
 * it reads only the fields it keeps, and tolerates any of them missing or of
 * the wrong type.
 *
 * @since 0.1.0
 * @category trimming
 */
export const trim = (report: unknown, limits: Limits = {}): TrimmedReport => {
  const maxFrames = Math.max(0, Math.floor(limits.maxStackFrames ?? 20))
  const maxHandles = Math.max(0, Math.floor(limits.maxHandles ?? 20))
  const root = record(report)
  const header = record(root.header)
  const jsStack = record(root.javascriptStack)
  const frames = array(jsStack.stack).filter(Predicate.isString)
  const handles = array(root.libuv).map(record)
  const byType: Record<string, number> = {}
  let active = 0
  for (const handle of handles) {
    const type = typeof handle.type === "string" ? handle.type : "unknown"
    byType[type] = (byType[type] ?? 0) + 1
    if (handle.is_active === true) active++
  }
  const list = handles.slice(0, maxHandles).map((handle) => {
    const entry: Record<string, string | boolean> = {
      type: typeof handle.type === "string" ? handle.type : "unknown",
      active: handle.is_active === true,
      referenced: handle.is_referenced === true,
    }
    for (const key of ["localEndpoint", "remoteEndpoint"] as const) {
      const endpoint = record(handle[key])
      const host = endpoint.host ?? endpoint.ip4 ?? endpoint.ip6
      if (typeof host === "string" && finite(endpoint.port)) entry[key] = `${host}:${endpoint.port}`
    }
    return entry
  })
  return {
    node: {
      ...pick(
        header,
        [
          ["nodejsVersion", "version"],
          ["platform", "platform"],
          ["arch", "arch"],
        ],
        Predicate.isString,
      ),
      ...pick(header, [["processId", "pid"]], finite),
    },
    ...(typeof jsStack.message === "string" || frames.length > 0
      ? {
          stack: {
            message: typeof jsStack.message === "string" ? jsStack.message : "",
            frames: frames.slice(0, maxFrames),
            omitted: Math.max(0, frames.length - maxFrames),
          },
        }
      : {}),
    heap: pick(
      record(root.javascriptHeap),
      [
        ["usedMemory", "usedBytes"],
        ["totalMemory", "totalBytes"],
        ["memoryLimit", "limitBytes"],
      ],
      finite,
    ),
    resources: pick(
      record(root.resourceUsage),
      [
        ["rss", "rssBytes"],
        ["maxRss", "maxRssBytes"],
        ["userCpuSeconds", "userCpuSeconds"],
        ["kernelCpuSeconds", "kernelCpuSeconds"],
        ["cpuConsumptionPercent", "cpuPercent"],
        ["free_memory", "freeMemoryBytes"],
        ["total_memory", "totalMemoryBytes"],
      ],
      finite,
    ),
    handles: { total: handles.length, active, byType, list },
    workers: array(root.workers).length,
  }
}

/**
 * Options of the collector: `name` (`"process-report"`), `interval`
 * (5 minutes) and the `Limits`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Limits {
  readonly name?: string | undefined
  readonly interval?: Duration.Input | undefined
}

/**
 * The process-report collector over the `ProcessReportSource` in context
 * (`layerSource` for this process). Each run reports `trim(report)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const source = yield* ProcessReportSource
  return Collector.make({
    name: options.name ?? "process-report",
    interval: options.interval ?? "5 minutes",
    collect: Effect.map(source.read, (report) => Option.some(trim(report, options) as unknown as Schema.Json)),
  })
})
