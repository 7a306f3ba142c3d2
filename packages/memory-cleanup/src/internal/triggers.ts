import type { MemoryFigures, Threshold } from "../MemoryCleanupEvent.ts"
import type { MemoryReading } from "../MemoryReadings.ts"

/**
 * Whether completing `round` (counted from 1) is a cleanup round: N, 2N, …
 * with `everyRounds` N; never with N = 0, nor for round 0 or a round that is
 * not a whole number.
 */
export const roundDue = (round: number, everyRounds: number): boolean =>
  everyRounds > 0 && Number.isSafeInteger(round) && round > 0 && round % everyRounds === 0

/** The thresholds of a cleanup; an absent one is never crossed. */
export interface Thresholds {
  readonly heapUsed?: number | undefined
  readonly rss?: number | undefined
  readonly heapFraction?: number | undefined
}

/** Whether any threshold is set, i.e. whether a checker is worth running. */
export const anyThreshold = (thresholds: Thresholds): boolean =>
  thresholds.heapUsed !== undefined || thresholds.rss !== undefined || thresholds.heapFraction !== undefined

/** The thresholds `reading` is strictly above, in a fixed order. */
export const crossed = (reading: MemoryReading, thresholds: Thresholds): Array<Threshold> => {
  const over: Array<Threshold> = []
  if (thresholds.heapUsed !== undefined && reading.heapUsed > thresholds.heapUsed) over.push("heapUsed")
  if (thresholds.rss !== undefined && reading.rss > thresholds.rss) over.push("rss")
  if (thresholds.heapFraction !== undefined && reading.heapUsed > thresholds.heapFraction * reading.heapSizeLimit) {
    over.push("heapFraction")
  }
  return over
}

/** The four figures an event reports, out of a reading. */
export const figuresOf = (reading: MemoryReading): MemoryFigures => ({
  heapUsed: reading.heapUsed,
  external: reading.external,
  arrayBuffers: reading.arrayBuffers,
  rss: reading.rss,
})

/** The names of the figures, in the events' order. */
export const figureNames: ReadonlyArray<keyof MemoryFigures> = ["heapUsed", "external", "arrayBuffers", "rss"]
