/**
 * The log-tail collector: the lines appended to a file since its last run,
 * bounded in bytes and lines per run, following the file through truncation
 * and rotation.
 *
 * The seed's log collector ships a training agent's log to the server so
 * that a client's trouble is visible without SSH to it. A log can grow fast
 * (a stack trace per step) and the link to the server is shared with model
 * updates, so each run reads at most `maxBytes` and reports at most
 * `maxLines`; when more was written, the newest lines win and the report
 * says how much was skipped.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, FileSystem, Option, type Schema } from "effect"
import * as Collector from "./Collector.ts"

/**
 * Options of a log tail:
 *
 * - `path`: the file to follow. It may not exist yet: nothing is reported
 *   until it does, and then it is read from its start.
 * - `name` (`"log-tail"`): the collector's name on its reports.
 * - `interval` (10 s): the cadence.
 * - `maxBytes` (65536): most bytes read per run; when more was appended
 *   since the last run, only the newest `maxBytes` are read, starting at the
 *   first whole line among them.
 * - `maxLines` (200): most lines reported per run (the newest).
 * - `fromStart` (`false`): on the first run, report the file's existing
 *   content (within the bounds) rather than only what is appended after it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly path: string
  readonly name?: string | undefined
  readonly interval?: Duration.Input | undefined
  readonly maxBytes?: number | undefined
  readonly maxLines?: number | undefined
  readonly fromStart?: boolean | undefined
}

/**
 * What one run reports: `path`, the new complete `lines` (without their
 * line feeds; a line still being written is left for the next run), and,
 * when non-zero or true, `skippedBytes` (appended bytes not read because of
 * `maxBytes`), `skippedLines` (lines read but not reported because of
 * `maxLines`), `truncated` (the file became shorter than what was read:
 * reading restarted at its beginning) and `rotated` (the path now names
 * another file, as after `logrotate`: reading restarted at its beginning).
 *
 * @since 0.1.0
 * @category models
 */
export interface LogTailData {
  readonly path: string
  readonly lines: ReadonlyArray<string>
  readonly skippedBytes?: number
  readonly skippedLines?: number
  readonly truncated?: true
  readonly rotated?: true
}

const newline = 0x0a
const decoder = new TextDecoder("utf-8")

/**
 * Builds a log tail over the `FileSystem` in context (the Node one comes
 * from `@effect/platform-node`'s `NodeFileSystem.layer`). The collector
 * keeps the offset it has read up to and the file's identity (inode) between
 * runs; a missing file is no data, other file-system failures fail the run
 * (counted as a collect failure; the next run tries again).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Diagnostics, LogTail } from "@fedguard/diagnostics"
 *
 * const program = Effect.gen(function* () {
 *   const diagnostics = yield* Diagnostics.Diagnostics
 *   yield* diagnostics.run(yield* LogTail.make({ path: "client.log", maxLines: 100 }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const fs = yield* FileSystem.FileSystem
  const maxBytes = Math.max(1, Math.floor(options.maxBytes ?? 64 * 1024))
  const maxLines = Math.max(1, Math.floor(options.maxLines ?? 200))
  // Where the next run starts reading, and which file that offset belongs to. `undefined`
  // before the first run: the first run starts at the end unless `fromStart`.
  let offset: number | undefined = options.fromStart === true ? 0 : undefined
  let inode: bigint | undefined

  const collect = Effect.gen(function* () {
    const info = yield* fs.stat(options.path).pipe(
      Effect.map(Option.some),
      Effect.catchIf(
        (error) => error.reason._tag === "NotFound",
        () => Effect.succeed(Option.none<FileSystem.File.Info>()),
      ),
    )
    if (Option.isNone(info)) {
      // Missing (not yet created, or rotated away): whatever appears next is new, from its start.
      offset = 0
      inode = undefined
      return Option.none<LogTailData>()
    }
    const size = Number(info.value.size)
    const ino = Option.getOrUndefined(info.value.ino)
    let rotated = false
    let truncated = false
    if (offset === undefined) {
      offset = size
      inode = ino
      return Option.none<LogTailData>()
    }
    if (inode !== undefined && ino !== undefined && ino !== inode) {
      rotated = true
      offset = 0
    } else if (size < offset) {
      truncated = true
      offset = 0
    }
    inode = ino
    if (size === offset) return rotated || truncated ? Option.some(marker(rotated, truncated)) : Option.none()

    const start = Math.max(offset, size - maxBytes)
    const bytes = yield* Effect.scoped(
      Effect.flatMap(fs.open(options.path, { flag: "r" }), (file) =>
        file.readAlloc(size - start, { position: BigInt(start) }),
      ),
    )
    const chunk = Option.getOrElse(bytes, () => new Uint8Array(0))
    // Started inside the backlog: the first line is cut, skip to the first whole one.
    let first = 0
    if (start > offset) {
      const lineEnd = chunk.indexOf(newline)
      first = lineEnd === -1 ? chunk.length : lineEnd + 1
    }
    // A line without its line feed is still being written: leave it for the next run, unless it
    // fills the whole read, so that one enormous line cannot stop the tail.
    const lastNewline = chunk.lastIndexOf(newline)
    let end = lastNewline === -1 || lastNewline < first ? first : lastNewline + 1
    if (end === first && chunk.length - first >= maxBytes) end = chunk.length
    const skippedBytes = start - offset + first
    offset = start + end

    const text = decoder.decode(chunk.subarray(first, end))
    const all = text.length === 0 ? [] : text.replace(/\n$/, "").split("\n")
    const lines = all.length > maxLines ? all.slice(all.length - maxLines) : all
    const skippedLines = all.length - lines.length
    if (lines.length === 0 && skippedBytes === 0 && !rotated && !truncated) return Option.none()
    return Option.some<LogTailData>({
      ...marker(rotated, truncated),
      lines,
      ...(skippedBytes > 0 ? { skippedBytes } : {}),
      ...(skippedLines > 0 ? { skippedLines } : {}),
    })
  })

  const marker = (rotated: boolean, truncated: boolean): LogTailData => ({
    path: options.path,
    lines: [],
    ...(rotated ? { rotated: true as const } : {}),
    ...(truncated ? { truncated: true as const } : {}),
  })

  return Collector.make({
    name: options.name ?? "log-tail",
    interval: options.interval ?? "10 seconds",
    // LogTailData is JSON: strings, numbers and booleans only.
    collect: Effect.map(
      collect,
      Option.map((data) => data as unknown as Schema.Json),
    ),
  })
})
