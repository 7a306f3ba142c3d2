/**
 * The memory cleanup both apps run (`@fedguard/memory-cleanup`): the two
 * settings they share, `--memory-cleanup-rounds N` (every N-th round; 0, the
 * default, turns the round cadence off, as NVIDIA FLARE's
 * `server_memory_gc_rounds` / `client_memory_gc_rounds` do for new jobs) and
 * `--memory-threshold` (a byte size such as `1.5GiB`: run when the RSS
 * exceeds it; or a percentage such as `80%`: run when V8's heap used exceeds
 * that share of its heap limit; checked every 10 s, at most once a minute),
 * and the report's record of each run.
 *
 * @since 0.3.0
 */
import { type MemoryCleanup, MemoryCleanupEvent } from "@fedguard/memory-cleanup"
import { ByteSize, Result, Schema } from "effect"

const percent = /^(\d+(?:\.\d+)?)\s*%$/

// A byte size as Effect writes them ("512MiB", "1.5 GiB"); undefined when it is not one.
const byteSize = (value: string): number | undefined => {
  const decoded = Schema.decodeUnknownResult(Schema.ByteSizeFromString)(value)
  if (Result.isFailure(decoded)) return undefined
  const bytes = ByteSize.toNumberUnsafe(decoded.success)
  return Number.isSafeInteger(bytes) && bytes > 0 ? bytes : undefined
}

/**
 * `--memory-threshold`: a positive byte size with its unit (`1.5GiB`,
 * `512 MiB`: run when the resident set size exceeds it) or a percentage
 * above 0 and at most 100 (`80%`: run when V8's heap used exceeds that share
 * of the heap size limit).
 *
 * @since 0.3.0
 * @category schemas
 */
export const Threshold = Schema.String.pipe(
  Schema.check(
    Schema.makeFilter((value: string) => {
      const share = percent.exec(value.trim())
      if (share !== null) {
        const p = Number(share[1])
        return (p > 0 && p <= 100) || "a percentage must be above 0% and at most 100%"
      }
      return (
        byteSize(value.trim()) !== undefined ||
        'expected a byte size with its unit ("1.5GiB", "512MiB") or a percentage of the heap limit ("80%")'
      )
    }),
  ),
)

/**
 * The cleanup's options from the two settings.
 *
 * @since 0.3.0
 * @category constructors
 */
export const cleanupOptions = (everyRounds: number, threshold: string | undefined): MemoryCleanup.Options => {
  if (threshold === undefined) return { everyRounds }
  const share = percent.exec(threshold.trim())
  return share !== null
    ? { everyRounds, heapFraction: Number(share[1]) / 100 }
    : { everyRounds, thresholdRss: byteSize(threshold.trim()) }
}

/**
 * One cleanup run in the report: what triggered it (`rounds`, `threshold`,
 * `manual`), after which round, its steps, and the memory figures (bytes)
 * before and after.
 *
 * @since 0.3.0
 * @category report
 */
export const CleanupRecord = Schema.Struct({
  trigger: MemoryCleanupEvent.Trigger,
  round: Schema.optionalKey(Schema.Number),
  durationMs: Schema.Number,
  steps: Schema.Array(MemoryCleanupEvent.StepReport),
  before: MemoryCleanupEvent.MemoryFigures,
  after: MemoryCleanupEvent.MemoryFigures,
})

/**
 * The report's record of a run.
 *
 * @since 0.3.0
 * @category report
 */
export const recordOf = (event: MemoryCleanupEvent.CleanupCompleted): typeof CleanupRecord.Type => ({
  trigger: event.trigger,
  ...(event.round === undefined ? {} : { round: event.round }),
  durationMs: event.durationMs,
  steps: event.steps,
  before: event.before,
  after: event.after,
})

/**
 * The settings' descriptions, for `--help`.
 *
 * @since 0.3.0
 * @category docs
 */
export const descriptions = {
  memoryCleanupRounds:
    "Run a memory cleanup (release hooks, then a full GC) after every N-th round; 0 turns it off (default 0)",
  memoryThreshold:
    'Also run it when RSS exceeds a byte size ("1.5GiB") or heap used a share of the heap limit ("80%"); checked every 10 s, at most once a minute (default: none)',
} as const
