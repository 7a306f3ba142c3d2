/**
 * JSON-lines logging for the reference apps: one object per line on stdout,
 * `event` first (the log message), then `level`, `time` and the annotations.
 *
 * @since 0.1.0
 */
import { type Layer, Logger } from "effect"

const eventName = /^[a-z]+(?:-[a-z]+)*$/

const toLine = (structured: {
  readonly message: unknown
  readonly level: string
  readonly timestamp: string
  readonly cause?: string | undefined
  readonly annotations: Record<string, unknown>
}): string =>
  JSON.stringify({
    // `event` is always a name (`client-joined`); free-text messages from libraries
    // (the heartbeat package's "client c1 went offline …") go under `message`.
    ...(typeof structured.message === "string" && eventName.test(structured.message)
      ? { event: structured.message }
      : { event: "log", message: structured.message }),
    ...structured.annotations,
    level: structured.level,
    time: structured.timestamp,
    ...(structured.cause === undefined ? {} : { cause: structured.cause }),
  })

/**
 * The line format: `Effect.logInfo("client-joined").pipe(Effect.annotateLogs({ id }))`
 * prints `{"event":"client-joined","id":"c1","level":"INFO","time":"…"}`.
 *
 * @since 0.1.0
 * @category loggers
 */
export const formatter = Logger.map(Logger.formatStructured, toLine)

/**
 * {@link formatter}, printed to stdout.
 *
 * @since 0.1.0
 * @category loggers
 */
export const logger = formatter.pipe(Logger.withConsoleLog)

/**
 * Replaces the default logger with the JSON-lines one. The level is the CLI's
 * global `--log-level` (default info).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Logger.layer([logger])
