/**
 * The simulation's event log: every log line of the server and the clients
 * (their typed events are logged as lines by `EventLog`), in the order they
 * were logged, stamped with the *virtual* time, as one JSON object per line.
 * The SHA-256 of the whole log is the run's fingerprint: the same seed gives
 * the same bytes. Nothing from the wall clock or the process (fiber ids,
 * pids) goes into a line.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Logger } from "effect"

/**
 * One line of the log, parsed back: its virtual time `t` (ms), `event` (the
 * app's line name, `"log"` for free text) and the event's fields.
 *
 * @since 0.1.0
 * @category models
 */
export interface Entry {
  readonly t: number
  readonly event: string
  readonly fields: Readonly<Record<string, unknown>>
}

/**
 * A recorder: `logger` to install (`Logger.layer([recorder.logger])`),
 * `entries` so far, `lines` (the count), `sha256()` of every line written so
 * far (each followed by `\n`), and `onEntry`, called for each entry as it
 * is logged (the invariant checks run there, at the virtual instant the
 * event happened).
 *
 * @since 0.1.0
 * @category models
 */
export interface Recorder {
  readonly logger: Logger.Logger<unknown, void>
  readonly entries: ReadonlyArray<Entry>
  /** Every line, each ending in `\n`: the bytes `sha256` hashes. */
  readonly text: () => string
  readonly lines: () => number
  readonly bytes: () => number
  readonly sha256: () => string
}

/**
 * A new recorder; `onEntry` sees each entry as it is logged.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (onEntry: (entry: Entry) => void = () => {}): Recorder => {
  const hash = createHash("sha256")
  const entries: Array<Entry> = []
  const lines: Array<string> = []
  let bytes = 0
  let digest: string | undefined
  const logger = Logger.map(Logger.formatStructured, (structured) => {
    const t = Date.parse(structured.timestamp)
    const message = structured.message
    const event = typeof message === "string" && /^[a-z]+(?:-[a-z]+)*$/.test(message) ? message : "log"
    const fields: Record<string, unknown> =
      event === "log" ? { message, ...structured.annotations } : { ...structured.annotations }
    if (structured.cause !== undefined) fields.cause = structured.cause
    const line = `${JSON.stringify({ t, event, level: structured.level, ...fields })}\n`
    hash.update(line)
    lines.push(line)
    bytes += line.length
    digest = undefined
    const entry = { t, event, fields }
    entries.push(entry)
    onEntry(entry)
  })
  return {
    logger,
    entries,
    text: () => lines.join(""),
    lines: () => entries.length,
    bytes: () => bytes,
    sha256: () => {
      // A digest ends the hash: copy it, so lines logged later still count.
      digest ??= hash.copy().digest("hex")
      return digest
    },
  }
}
