import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Schema } from "effect"
import * as MemoryCleanupConfig from "../src/MemoryCleanupConfig.ts"

const plain = (config: MemoryCleanupConfig.MemoryCleanupConfig) => ({
  everyRounds: config.everyRounds,
  thresholdBytes: config.thresholdBytes,
  thresholdRss: config.thresholdRss,
  heapFraction: config.heapFraction,
  checkInterval: Duration.toMillis(config.checkInterval),
  minInterval: Duration.toMillis(config.minInterval),
  gc: config.gc,
  stepTimeout: Duration.toMillis(config.stepTimeout),
})

const defaults = {
  everyRounds: 0,
  thresholdBytes: undefined,
  thresholdRss: undefined,
  heapFraction: undefined,
  checkInterval: 10_000,
  minInterval: 60_000,
  gc: true,
  stepTimeout: 30_000,
}

describe("MemoryCleanupConfig", () => {
  it("defaults to FLARE's: no round cadence, no threshold; 10 s checks, 60 s minimum interval, GC on", () => {
    assert.deepStrictEqual(plain(MemoryCleanupConfig.defaults), defaults)
  })

  it("accepts byte sizes as integers or with a unit, and durations as strings or milliseconds", () => {
    const config = Schema.decodeUnknownSync(MemoryCleanupConfig.MemoryCleanupConfig)({
      everyRounds: 5,
      thresholdBytes: "512 MiB",
      thresholdRss: 6_000_000_000,
      heapFraction: 1,
      checkInterval: "2 seconds",
      minInterval: 0,
      gc: false,
    })
    assert.deepStrictEqual(plain(config), {
      ...defaults,
      everyRounds: 5,
      thresholdBytes: 512 * 1024 * 1024,
      thresholdRss: 6_000_000_000,
      heapFraction: 1,
      checkInterval: 2_000,
      minInterval: 0,
      gc: false,
    })
  })

  it.effect("fails with a SchemaError naming the wrong key and why, for every key", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string, string]> = [
        [{ everyRounds: -1 }, "everyRounds", "greater than or equal to 0"],
        [{ everyRounds: 2.5 }, "everyRounds", "integer"],
        [{ thresholdBytes: 0 }, "thresholdBytes", "positive number of bytes"],
        [{ thresholdRss: "12 KB" }, "thresholdRss", "ByteSize"],
        [{ heapFraction: 0 }, "heapFraction", "greater than 0 and at most 1"],
        [{ heapFraction: 1.5 }, "heapFraction", "greater than 0 and at most 1"],
        [{ checkInterval: "0 millis" }, "checkInterval", "positive duration"],
        [{ minInterval: -1 }, "minInterval", "must not be negative"],
        [{ gc: "yes" }, "gc", "boolean"],
        [{ stepTimeout: 0 }, "stepTimeout", "positive duration"],
      ]
      for (const [input, key, why] of cases) {
        const error = yield* Effect.flip(MemoryCleanupConfig.decode(input))
        assert.strictEqual(error._tag, "SchemaError")
        assert.include(error.message, `["${key}"]`, `${JSON.stringify(input)}: ${error.message}`)
        assert.include(error.message, why, `${JSON.stringify(input)}: ${error.message}`)
      }
    }),
  )

  it.effect("reads the memoryCleanup section from a config object, keeping defaults for missing keys", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromUnknown({ memoryCleanup: { everyRounds: 5, thresholdRss: "6 GiB" } })
      const config = yield* MemoryCleanupConfig.config().parse(provider)
      assert.deepStrictEqual(plain(config), { ...defaults, everyRounds: 5, thresholdRss: 6 * 1024 ** 3 })
      const empty = yield* MemoryCleanupConfig.config().parse(ConfigProvider.fromUnknown({}))
      assert.deepStrictEqual(plain(empty), defaults)
    }),
  )

  it.effect("reads environment variables in constant case, and names the variable's key when one is wrong", () =>
    Effect.gen(function* () {
      const env = (vars: Record<string, string>) =>
        ConfigProvider.fromEnv({ env: vars }).pipe(ConfigProvider.constantCase)
      const config = yield* MemoryCleanupConfig.config().parse(
        env({
          MEMORY_CLEANUP_EVERY_ROUNDS: "5",
          MEMORY_CLEANUP_HEAP_FRACTION: "0.8",
          MEMORY_CLEANUP_THRESHOLD_BYTES: "1048576",
          MEMORY_CLEANUP_GC: "false",
        }),
      )
      assert.deepStrictEqual(plain(config), {
        ...defaults,
        everyRounds: 5,
        heapFraction: 0.8,
        thresholdBytes: 1_048_576,
        gc: false,
      })
      const error = yield* Effect.flip(MemoryCleanupConfig.config().parse(env({ MEMORY_CLEANUP_HEAP_FRACTION: "2" })))
      assert.include(String(error), `["memoryCleanup"]["heapFraction"]`)
    }),
  )
})
