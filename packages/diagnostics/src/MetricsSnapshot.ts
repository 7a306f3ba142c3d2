/**
 * The metrics-snapshot collector: every Effect `Metric` of the registry in
 * context (`Metric.snapshot`), as JSON: the retries, stalls, cleanups and
 * liveness counts the other fedguard packages update, and the application's
 * own.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Metric, Option, type Schema } from "effect"
import * as Collector from "./Collector.ts"

/**
 * One metric in a snapshot: `id`, `type`, its `attributes` when it has some,
 * and its state: `count` (counters), `value` (gauges), `occurrences`
 * (frequencies), `count`/`sum`/`min`/`max` plus `buckets` (`[upper bound,
 * cumulative count]`, histograms) or `quantiles` (`[q, value]`, summaries).
 * Big integers become numbers (strings past 2^53); `min` and `max` of a
 * histogram or summary without observations, and non-finite numbers, are
 * `null`.
 *
 * @since 0.1.0
 * @category models
 */
export type MetricData = { readonly id: string; readonly type: string } & Record<string, Schema.Json>

const num = (value: number | bigint): Schema.Json => {
  if (typeof value === "bigint")
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString()
  return Number.isFinite(value) ? value : null
}

/**
 * Converts one `Metric.snapshot` entry to JSON.
 *
 * @since 0.1.0
 * @category conversions
 */
export const toJson = (snapshot: Metric.Metric.Snapshot): MetricData => {
  const base: Record<string, Schema.Json> = {}
  if (snapshot.attributes !== undefined && Object.keys(snapshot.attributes).length > 0) {
    base.attributes = Object.fromEntries(Object.entries(snapshot.attributes).map(([k, v]) => [k, String(v)]))
  }
  switch (snapshot.type) {
    case "Counter":
      return { id: snapshot.id, type: snapshot.type, ...base, count: num(snapshot.state.count) }
    case "Gauge":
      return { id: snapshot.id, type: snapshot.type, ...base, value: num(snapshot.state.value) }
    case "Frequency":
      return {
        id: snapshot.id,
        type: snapshot.type,
        ...base,
        occurrences: Object.fromEntries(snapshot.state.occurrences),
      }
    case "Histogram":
      return {
        id: snapshot.id,
        type: snapshot.type,
        ...base,
        count: snapshot.state.count,
        sum: num(snapshot.state.sum),
        // An empty histogram holds ±Number.MAX_VALUE as its min and max: no observation, no figure.
        min: snapshot.state.count === 0 ? null : num(snapshot.state.min),
        max: snapshot.state.count === 0 ? null : num(snapshot.state.max),
        buckets: snapshot.state.buckets.map(([bound, n]) => [num(bound), n]),
      }
    case "Summary":
      return {
        id: snapshot.id,
        type: snapshot.type,
        ...base,
        count: snapshot.state.count,
        sum: num(snapshot.state.sum),
        min: snapshot.state.count === 0 ? null : num(snapshot.state.min),
        max: snapshot.state.count === 0 ? null : num(snapshot.state.max),
        quantiles: snapshot.state.quantiles.map(([q, v]) => [q, v === undefined ? null : num(v)]),
      }
  }
}

/**
 * Options of the collector:
 *
 * - `name` (`"metrics"`), `interval` (60 s).
 * - `include` (all): which metric ids to report, e.g.
 *   `(id) => id.startsWith("fedguard_")`.
 * - `maxMetrics` (500): most metrics per report, in id order; the report
 *   says how many were left out.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly name?: string | undefined
  readonly interval?: Duration.Input | undefined
  readonly include?: ((id: string) => boolean) | undefined
  readonly maxMetrics?: number | undefined
}

/**
 * The metrics-snapshot collector. Each run reports `{ metrics: [...],
 * omitted? }` (`MetricData` entries sorted by id), or nothing when the
 * registry holds no included metric. It reads the registry of the fiber that
 * runs it: `Metric.MetricRegistry` as provided where `Diagnostics.run` was
 * called.
 *
 * @since 0.1.0
 * @category constructors
 */
export const collector = (options: Options = {}): Collector.Collector => {
  const include = options.include ?? (() => true)
  const maxMetrics = Math.max(1, Math.floor(options.maxMetrics ?? 500))
  return Collector.make({
    name: options.name ?? "metrics",
    interval: options.interval ?? "60 seconds",
    collect: Effect.map(Metric.snapshot, (snapshots) => {
      const included = snapshots
        .filter((snapshot) => include(snapshot.id))
        .map(toJson)
        .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      if (included.length === 0) return Option.none()
      const metrics = included.slice(0, maxMetrics)
      const omitted = included.length - metrics.length
      return Option.some({ metrics, ...(omitted > 0 ? { omitted } : {}) } as Schema.Json)
    }),
  })
}
