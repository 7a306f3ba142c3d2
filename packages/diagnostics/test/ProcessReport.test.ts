import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as ProcessReport from "../src/ProcessReport.ts"
import { freshMetrics, recordingSink, settle } from "./support.ts"

describe("ProcessReport", () => {
  it.effect("keeps Node's JS stack, heap, resource usage and handles, bounded, and never the environment", () =>
    Effect.gen(function* () {
      const collector = yield* ProcessReport.make({ maxStackFrames: 3, maxHandles: 2 })
      const result = yield* collector.collect
      const trimmed = Option.getOrThrow(result) as unknown as ProcessReport.TrimmedReport
      assert.strictEqual(trimmed.node.version, process.version)
      assert.strictEqual(trimmed.node.pid, process.pid)
      assert.isAtMost(trimmed.stack?.frames.length ?? 99, 3)
      assert.isAbove(trimmed.stack?.frames.length ?? 0, 0)
      assert.isAbove(trimmed.heap.usedBytes ?? 0, 0)
      assert.isAbove(trimmed.resources.rssBytes ?? 0, 0)
      assert.isAtMost(trimmed.handles.list.length, 2)
      assert.strictEqual(
        Object.values(trimmed.handles.byType).reduce((a, b) => a + b, 0),
        trimmed.handles.total,
      )
      const text = JSON.stringify(trimmed)
      for (const secret of ["environmentVariables", "commandLine", "sharedObjects", "userLimits", "PATH"]) {
        assert.notInclude(text, secret)
      }
      const full = JSON.stringify(process.report.getReport())
      assert.isBelow(text.length, full.length / 2, `${text.length} of ${full.length} bytes`)
    }).pipe(Effect.provide(ProcessReport.layerSource)),
  )

  it("trims a report with missing or mistyped fields without throwing", () => {
    assert.deepStrictEqual(ProcessReport.trim(null), {
      node: {},
      heap: {},
      resources: {},
      handles: { total: 0, active: 0, byType: {}, list: [] },
      workers: 0,
    })
    const trimmed = ProcessReport.trim({
      header: { nodejsVersion: "v24.0.0", processId: 7, arch: 1, platform: null },
      javascriptStack: { message: "m", stack: ["a", 2, "b", "c"] },
      javascriptHeap: { usedMemory: "lots" },
      libuv: [
        { type: "tcp", is_active: true, remoteEndpoint: { host: "127.0.0.1", port: 7070 } },
        { type: "timer" },
        "junk",
      ],
      environmentVariables: { FEDGUARD_SECRET: "s3cret" },
    })
    assert.deepStrictEqual(trimmed.node, { version: "v24.0.0", pid: 7 })
    assert.deepStrictEqual(trimmed.stack, { message: "m", frames: ["a", "b", "c"], omitted: 0 })
    assert.deepStrictEqual(trimmed.heap, {})
    assert.deepStrictEqual(trimmed.handles, {
      total: 3,
      active: 1,
      byType: { tcp: 1, timer: 1, unknown: 1 },
      list: [
        { type: "tcp", active: true, referenced: false, remoteEndpoint: "127.0.0.1:7070" },
        { type: "timer", active: false, referenced: false },
        { type: "unknown", active: false, referenced: false },
      ],
    })
    assert.notInclude(JSON.stringify(trimmed), "s3cret")
  })

  it.effect("runs at its interval (5 minutes by default), not before and not between", () =>
    Effect.gen(function* () {
      let reads = 0
      const source = Layer.succeed(
        ProcessReport.ProcessReportSource,
        ProcessReport.ProcessReportSource.of({
          read: Effect.sync(() => {
            reads++
            return { header: { nodejsVersion: "v24", processId: 1 } }
          }),
        }),
      )
      const collector = yield* ProcessReport.make().pipe(Effect.provide(source))
      const sink = recordingSink()
      yield* Diagnostics.make({ batchSize: 1 }, [collector]).pipe(Effect.provide(sink.layer))
      yield* TestClock.adjust(300_000 - 1)
      assert.strictEqual(reads, 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(reads, 1)
      yield* TestClock.adjust(300_000 - 1)
      assert.strictEqual(reads, 1)
      yield* TestClock.adjust(1)
      yield* settle
      assert.strictEqual(reads, 2)
      assert.deepStrictEqual(
        sink.batches.map((batch) => [batch[0]?.collector, batch[0]?.at]),
        [
          ["process-report", 300_000],
          ["process-report", 600_000],
        ],
      )
    }).pipe(freshMetrics),
  )
})
