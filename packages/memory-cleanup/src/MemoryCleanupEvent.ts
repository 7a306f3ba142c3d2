/**
 * What memory-cleanup reports happened: one `CleanupCompleted` per run of the
 * cleanup pipeline, with what triggered it, how each step went, and the
 * process's memory figures before and after.
 *
 * Figures are bytes, as `process.memoryUsage()` reports them; times are epoch
 * milliseconds from the Effect `Clock`; durations are milliseconds.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The process's memory figures, in bytes (`process.memoryUsage()`):
 *
 * - `heapUsed`: V8 heap in use by JavaScript objects.
 * - `external`: memory of C++ objects bound to JavaScript objects, including
 *   `arrayBuffers`.
 * - `arrayBuffers`: `ArrayBuffer`s and `SharedArrayBuffer`s, Node `Buffer`s
 *   included (model weights usually live here).
 * - `rss`: resident set size, everything the process holds in RAM.
 *
 * @since 0.1.0
 * @category models
 */
export const MemoryFigures = Schema.Struct({
  heapUsed: Schema.Number,
  external: Schema.Number,
  arrayBuffers: Schema.Number,
  rss: Schema.Number,
}).annotate({ identifier: "MemoryFigures" })

/**
 * @since 0.1.0
 * @category models
 */
export type MemoryFigures = typeof MemoryFigures.Type

/**
 * What started a run: `rounds` (`roundCompleted` at a multiple of
 * `everyRounds`), `threshold` (a periodic check found memory above a
 * threshold) or `manual` (`run`).
 *
 * @since 0.1.0
 * @category models
 */
export const Trigger = Schema.Literals(["rounds", "threshold", "manual"])

/**
 * @since 0.1.0
 * @category models
 */
export type Trigger = typeof Trigger.Type

/**
 * A threshold a check found crossed: `heapUsed` above `thresholdBytes`,
 * `rss` above `thresholdRss`, or `heapFraction` (heap used above that
 * fraction of V8's heap size limit).
 *
 * @since 0.1.0
 * @category models
 */
export const Threshold = Schema.Literals(["heapUsed", "rss", "heapFraction"])

/**
 * @since 0.1.0
 * @category models
 */
export type Threshold = typeof Threshold.Type

/**
 * How one step of a run went: `ok`, `failed` (it failed, died or timed out;
 * `reason` says which and why) or `skipped` (it could not run, e.g. no GC is
 * available; `reason` says why). `durationMs` is its time on the `Clock`.
 *
 * @since 0.1.0
 * @category models
 */
export const StepReport = Schema.Struct({
  name: Schema.String,
  status: Schema.Literals(["ok", "failed", "skipped"]),
  durationMs: Schema.Number,
  reason: Schema.optionalKey(Schema.String),
}).annotate({ identifier: "StepReport" })

/**
 * @since 0.1.0
 * @category models
 */
export type StepReport = typeof StepReport.Type

/**
 * One run of the cleanup pipeline finished. `trigger` says what started it;
 * `round` is set for `rounds` runs, `crossed` for `threshold` runs. `steps`
 * are the release hooks in registration order, then `gc`. `before` and
 * `after` are the figures read just before the first step and just after
 * the last; `freed` is their difference (negative when memory grew). `at` is
 * when the run started, `durationMs` how long it took.
 *
 * @since 0.1.0
 * @category events
 */
export class CleanupCompleted extends Schema.TaggedClass<CleanupCompleted>()("CleanupCompleted", {
  trigger: Trigger,
  round: Schema.optionalKey(Schema.Number),
  crossed: Schema.optionalKey(Schema.Array(Threshold)),
  at: Schema.Number,
  durationMs: Schema.Number,
  steps: Schema.Array(StepReport),
  before: MemoryFigures,
  after: MemoryFigures,
}) {
  /**
   * Bytes freed per figure: `before - after`.
   *
   * @since 0.1.0
   */
  get freed(): MemoryFigures {
    return {
      heapUsed: this.before.heapUsed - this.after.heapUsed,
      external: this.before.external - this.after.external,
      arrayBuffers: this.before.arrayBuffers - this.after.arrayBuffers,
      rss: this.before.rss - this.after.rss,
    }
  }
}

/**
 * Any memory-cleanup event, as a Schema (to encode events for logs or
 * export) and as a type.
 *
 * @since 0.1.0
 * @category events
 */
export const MemoryCleanupEvent = Schema.Union([CleanupCompleted])

/**
 * @since 0.1.0
 * @category events
 */
export type MemoryCleanupEvent = typeof MemoryCleanupEvent.Type
