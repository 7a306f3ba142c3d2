/**
 * The JSON-lines sink: each report becomes one line of JSON appended to a
 * file, the format log shippers and `jq` read.
 *
 * @since 0.1.0
 */
import { Effect, FileSystem, Layer, Schema } from "effect"
import { DiagnosticsReport } from "./DiagnosticsReport.ts"
import { DiagnosticsSink, SinkUnavailable } from "./DiagnosticsSink.ts"

const encodeReport = Schema.encodeSync(DiagnosticsReport)

/**
 * Encodes a batch as JSON lines: one `DiagnosticsReport` per line
 * (`{"collector":…,"at":…,"data":…}`), each ending with a line feed.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (reports: ReadonlyArray<DiagnosticsReport>): string =>
  reports.map((report) => `${JSON.stringify(encodeReport(report))}\n`).join("")

/**
 * A sink appending to the file at `path` (created when missing) through the
 * `FileSystem` in context. A batch is written with one append, so a reader
 * never sees half of a batch's lines interleaved with another's. A failed
 * write is `SinkUnavailable` (retryable). `name` defaults to `"jsonl"`.
 *
 * @example
 * ```ts
 * import { NodeFileSystem } from "@effect/platform-node"
 * import { JsonLinesSink } from "@fedguard/diagnostics"
 * import { Layer } from "effect"
 *
 * const FileSinkLive = JsonLinesSink.layer("diagnostics.jsonl").pipe(Layer.provide(NodeFileSystem.layer))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  path: string,
  options: { readonly name?: string | undefined } = {},
): Layer.Layer<DiagnosticsSink, never, FileSystem.FileSystem> =>
  Layer.effect(
    DiagnosticsSink,
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const name = options.name ?? "jsonl"
      return DiagnosticsSink.of({
        name,
        send: (reports) =>
          fs
            .writeFileString(path, encode(reports), { flag: "a" })
            .pipe(Effect.mapError((error) => new SinkUnavailable({ sink: name, reason: error.message }))),
      })
    }),
  )
