import { Duration } from "effect"

/** The shortest check interval: below it a checker would spin instead of sleep. */
export const minCheckIntervalMs = 10

/**
 * A check interval in milliseconds, clamped to [10 ms, `timeoutMs`]: an
 * interval longer than the timeout it serves would detect late by up to the
 * interval (a 10 minute check of a 60 s timeout fires at 10 minutes), and a
 * zero interval would busy-loop.
 */
export const checkIntervalMs = (interval: Duration.Input, timeoutMs: number): number =>
  Math.min(
    Math.max(Duration.toMillis(Duration.fromInputUnsafe(interval)), minCheckIntervalMs),
    Math.max(timeoutMs, minCheckIntervalMs),
  )

/** A duration input in milliseconds. */
export const millis = (input: Duration.Input): number => Duration.toMillis(Duration.fromInputUnsafe(input))
