/**
 * A collector: a named source of diagnostics data with its own cadence.
 *
 * The seed's agent attaches collectors (log, metric, stack) to one reporting
 * client; each collector runs on its own interval, returns data or nothing,
 * and empty data is skipped rather than reported. Here a collector is a
 * value: a name, a `Schedule`, and an effect that returns `Option<Json>`.
 * `Diagnostics` runs each one in its own fiber and hands what it returns to
 * the injected `DiagnosticsSink`.
 *
 * @since 0.1.0
 */
import { Duration, type Effect, type Option, Schedule, type Schema } from "effect"

/**
 * A named source of diagnostics data:
 *
 * - `name`: stamped on every report (1 to 128 characters).
 * - `schedule`: when it runs; the first run is one interval after it starts
 *   (a `Schedule.spaced(interval)` from `make`), never at start-up.
 * - `collect`: one reading. `Option.none()` means nothing to report; so does
 *   `Some` of an empty value (`null`, `""`, `[]`, `{}`). A failure or defect
 *   is logged, counted (`DiagnosticsMetrics.collectFailures`) and published
 *   as `DiagnosticsCollectFailed`; the next run still comes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Collector<R = never> {
  readonly name: string
  readonly schedule: Schedule.Schedule<unknown, unknown, never, never>
  readonly collect: Effect.Effect<Option.Option<Schema.Json>, unknown, R>
}

/**
 * Options of `make`: `interval` (a cadence of `Schedule.spaced(interval)`)
 * or any `schedule`; `schedule` wins when both are given.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<R> {
  readonly name: string
  readonly interval?: Duration.Input | undefined
  readonly schedule?: Schedule.Schedule<unknown, unknown, never, never> | undefined
  readonly collect: Effect.Effect<Option.Option<Schema.Json>, unknown, R>
}

/**
 * Builds a collector. Without `interval` or `schedule` it runs every
 * 30 seconds. Throws on a name that is empty or longer than 128 characters
 * (a receiver would refuse its reports): names are literals of the
 * program, not input.
 *
 * @example
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Collector } from "@fedguard/diagnostics"
 *
 * let round = 0
 * const progress = Collector.make({
 *   name: "round-progress",
 *   interval: "10 seconds",
 *   collect: Effect.sync(() => (round === 0 ? Option.none() : Option.some({ round }))),
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = <R = never>(options: Options<R>): Collector<R> => {
  if (!isValidName(options.name)) {
    throw new RangeError(`a collector name has 1 to 128 characters, got ${JSON.stringify(options.name)}`)
  }
  return {
    name: options.name,
    schedule: options.schedule ?? Schedule.spaced(options.interval ?? defaultInterval),
    collect: options.collect,
  }
}

/**
 * Whether `name` is a valid collector name: 1 to 128 characters, as
 * `DiagnosticsReport.CollectorName` decodes.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isValidName = (name: string): boolean => name.length >= 1 && name.length <= 128

/**
 * The interval of a collector built without one: 30 seconds.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultInterval: Duration.Duration = Duration.seconds(30)
