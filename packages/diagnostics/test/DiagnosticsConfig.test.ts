import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Context, Duration, Effect, Layer, Metric } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as DiagnosticsConfig from "../src/DiagnosticsConfig.ts"
import { freshMetrics, recordingSink, settle } from "./support.ts"

const plain = (config: DiagnosticsConfig.DiagnosticsConfig) => ({
  batchSize: config.batchSize,
  batchInterval: Duration.toMillis(config.batchInterval),
  bufferCapacity: config.bufferCapacity,
  sendTimeout: Duration.toMillis(config.sendTimeout),
  maxRetries: config.retry.maxRetries,
  logTailPath: config.logTailPath,
  logTailInterval: Duration.toMillis(config.logTailInterval),
  logTailMaxBytes: config.logTailMaxBytes,
  logTailMaxLines: config.logTailMaxLines,
  metricsInterval: Duration.toMillis(config.metricsInterval),
  processReportInterval: Duration.toMillis(config.processReportInterval),
  resourceUsageInterval: Duration.toMillis(config.resourceUsageInterval),
})

const defaults = {
  batchSize: 50,
  batchInterval: 10_000,
  bufferCapacity: 1000,
  sendTimeout: 30_000,
  maxRetries: 3,
  logTailPath: undefined,
  logTailInterval: 10_000,
  logTailMaxBytes: 65_536,
  logTailMaxLines: 200,
  metricsInterval: 60_000,
  processReportInterval: 300_000,
  resourceUsageInterval: 10_000,
}

describe("DiagnosticsConfig", () => {
  it("defaults: batches of 50 or every 10 s, 1000 buffered, 30 s send timeout, the retry package's policy", () => {
    assert.deepStrictEqual(plain(DiagnosticsConfig.defaults), defaults)
  })

  it.effect("fails with a SchemaError naming the wrong key and why, for every key", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string, string]> = [
        [{ batchSize: 0 }, `["batchSize"]`, "greater than or equal to 1"],
        [{ batchSize: 2.5 }, `["batchSize"]`, "integer"],
        [{ batchInterval: "0 millis" }, `["batchInterval"]`, "positive duration"],
        [{ bufferCapacity: -1 }, `["bufferCapacity"]`, "greater than or equal to 1"],
        [{ sendTimeout: "soon" }, `["sendTimeout"]`, "valid Duration string"],
        [{ retry: { maxRetries: -1 } }, `["retry"]["maxRetries"]`, "greater than or equal to 0"],
        [{ logTailPath: "" }, `["logTailPath"]`, "length"],
        [{ logTailInterval: -1 }, `["logTailInterval"]`, "0 (off) or more"],
        [{ logTailMaxBytes: 0 }, `["logTailMaxBytes"]`, "greater than or equal to 1"],
        [{ logTailMaxLines: "many" }, `["logTailMaxLines"]`, "number"],
        [{ metricsInterval: -5 }, `["metricsInterval"]`, "0 (off) or more"],
        [{ processReportInterval: true }, `["processReportInterval"]`, "Expected"],
        [{ resourceUsageInterval: "-1 seconds" }, `["resourceUsageInterval"]`, "0 (off) or more"],
      ]
      for (const [input, key, why] of cases) {
        const error = yield* Effect.flip(DiagnosticsConfig.decode(input))
        assert.include(error.message, key, `${JSON.stringify(input)}: ${error.message}`)
        assert.include(error.message, why, `${JSON.stringify(input)}: ${error.message}`)
      }
      // The valid twins: zero intervals turn collectors off and are accepted.
      const off = yield* DiagnosticsConfig.decode({ metricsInterval: 0, logTailInterval: "0 seconds" })
      assert.deepStrictEqual([Duration.toMillis(off.metricsInterval), Duration.toMillis(off.logTailInterval)], [0, 0])
    }),
  )

  it.effect("reads the diagnostics section from a config object and the environment, naming a wrong key", () =>
    Effect.gen(function* () {
      const fromObject = yield* DiagnosticsConfig.config().parse(
        ConfigProvider.fromUnknown({ diagnostics: { batchSize: 20, retry: { maxRetries: 5 }, logTailPath: "c.log" } }),
      )
      assert.deepStrictEqual(plain(fromObject), { ...defaults, batchSize: 20, maxRetries: 5, logTailPath: "c.log" })
      const env = (vars: Record<string, string>) =>
        ConfigProvider.fromEnv({ env: vars }).pipe(ConfigProvider.constantCase)
      const fromEnv = yield* DiagnosticsConfig.config().parse(
        env({ DIAGNOSTICS_BATCH_INTERVAL: "2 seconds", DIAGNOSTICS_BUFFER_CAPACITY: "10" }),
      )
      assert.deepStrictEqual(plain(fromEnv), { ...defaults, batchInterval: 2_000, bufferCapacity: 10 })
      const error = yield* Effect.flip(DiagnosticsConfig.config().parse(env({ DIAGNOSTICS_BATCH_SIZE: "0" })))
      assert.include(String(error), `["diagnostics"]["batchSize"]`)
    }),
  )

  it.effect("layerConfig runs the built-in collectors the configuration turns on, and not the ones it turns off", () =>
    Effect.gen(function* () {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fedguard-diag-config-"))
      const logFile = path.join(dir, "client.log")
      const sink = recordingSink()
      const provider = ConfigProvider.fromUnknown({
        diagnostics: {
          batchSize: 100,
          batchInterval: "30 seconds",
          metricsInterval: "1 second",
          processReportInterval: 0,
          resourceUsageInterval: 0,
          logTailPath: logFile,
          logTailInterval: "1 second",
        },
      })
      const context = yield* Layer.build(
        Diagnostics.layerConfig().pipe(
          Layer.provide([sink.layer, NodeFileSystem.layer]),
          Layer.provide(ConfigProvider.layer(provider)),
        ),
      )
      const diagnostics = Context.get(context, Diagnostics.Diagnostics)
      yield* Metric.update(Metric.counter("app_rounds_total"), 1)
      yield* TestClock.adjust("1 second")
      yield* settle
      yield* diagnostics.flush
      const collectors = sink.batches.flat().map((report) => report.collector)
      assert.include(collectors, "metrics")
      assert.notInclude(collectors, "process-report")
      assert.notInclude(collectors, "resource-usage")
      assert.notInclude(collectors, "log-tail", "a missing log file is no data")
    }).pipe(freshMetrics),
  )
})
