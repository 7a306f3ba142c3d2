import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@fedguard/retry"
import { Effect, Layer, Schema } from "effect"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as DiagnosticsMetrics from "../src/DiagnosticsMetrics.ts"
import { DiagnosticsReport } from "../src/DiagnosticsReport.ts"
import * as DiagnosticsSink from "../src/DiagnosticsSink.ts"
import * as JsonLinesSink from "../src/JsonLinesSink.ts"
import { count, freshMetrics, record, settle } from "./support.ts"

const tempDir = () => fs.mkdtempSync(path.join(os.tmpdir(), "fedguard-jsonl-"))

describe("JsonLinesSink", () => {
  it.effect("appends one JSON line per report, batch after batch, and the lines parse back into the reports", () =>
    Effect.gen(function* () {
      const file = path.join(tempDir(), "diagnostics.jsonl")
      const sink = yield* DiagnosticsSink.DiagnosticsSink.pipe(
        Effect.provide(JsonLinesSink.layer(file).pipe(Layer.provide(NodeFileSystem.layer))),
      )
      const first = [
        { collector: "log-tail", at: 1_000, data: { path: "client.log", lines: ['a "quoted" line', "ünïcode"] } },
        { collector: "resource-usage", at: 1_500, data: { memory: { rss: 1 } } },
      ]
      const second = [{ collector: "metrics", at: 2_000, data: [1, 2.5, null, true] }]
      yield* sink.send(first)
      yield* sink.send(second)
      const text = fs.readFileSync(file, "utf8")
      assert.isTrue(text.endsWith("\n"))
      const lines = text.trimEnd().split("\n")
      assert.strictEqual(lines.length, 3)
      const decoded = lines.map((line) => Schema.decodeUnknownSync(DiagnosticsReport)(JSON.parse(line)))
      assert.deepStrictEqual(decoded, [...first, ...second])
    }),
  )

  it.effect(
    "a file that cannot be written is SinkUnavailable (retryable), and Diagnostics reports it as an event",
    () =>
      Effect.gen(function* () {
        const file = path.join(tempDir(), "missing-dir", "diagnostics.jsonl")
        const layer = JsonLinesSink.layer(file, { name: "file" }).pipe(Layer.provide(NodeFileSystem.layer))
        const sink = yield* DiagnosticsSink.DiagnosticsSink.pipe(Effect.provide(layer))
        const error = yield* Effect.flip(sink.send([{ collector: "c", at: 0, data: 1 }]))
        assert.strictEqual(error._tag, "SinkUnavailable")
        assert.isTrue(DiagnosticsSink.isRetryable(error))

        // Through the pipeline: one attempt (no retries configured), then a SinkFailed event, no error.
        const diagnostics = yield* Diagnostics.make({ batchSize: 10, retry: RetryPolicy.make({ maxRetries: 0 }) }).pipe(
          Effect.provide(layer),
        )
        const events = yield* record(diagnostics.subscribe)
        yield* diagnostics.report("c", 1)
        yield* diagnostics.flush
        yield* settle
        assert.deepStrictEqual(
          events.filter((e) => e._tag === "DiagnosticsSinkFailed").map((e) => [e.sink, e.errorTag, e.reports]),
          [["file", "SinkUnavailable", 1]],
        )
        assert.strictEqual(yield* count(DiagnosticsMetrics.sinkFailures, { sink: "file", error: "SinkUnavailable" }), 1)
      }).pipe(freshMetrics),
  )
})
