import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import * as SupervisorConfig from "../src/SupervisorConfig.ts"
import * as SupervisorFile from "../src/SupervisorFile.ts"

describe("SupervisorConfig", () => {
  it("defaults: restart-one, 1 s checks, 3 breaching checks, 5 restarts in 60 s, 1 s to 30 s backoff, 30 s grace", () => {
    const d = SupervisorConfig.defaults
    assert.deepStrictEqual(
      [
        d.strategy,
        Duration.toMillis(d.checkInterval),
        d.unhealthyChecks,
        d.zombie,
        d.maxRestarts,
        Duration.toMillis(d.restartPeriod),
        Duration.toMillis(d.backoffBase),
        d.backoffFactor,
        Duration.toMillis(d.backoffCap),
        d.jitter,
        Duration.toMillis(d.stopGrace),
        Duration.toMillis(d.probeTimeout),
        d.maxCpuPercent,
        d.maxRssBytes,
      ],
      ["restart-one", 1000, 3, true, 5, 60_000, 1000, 2, 30_000, true, 30_000, 10_000, undefined, undefined],
    )
  })

  it.effect("fails naming the wrong key and why", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string, string]> = [
        [{ strategy: "one_for_one" }, "strategy", "Expected Strategy"],
        [{ maxRestarts: -1 }, "maxRestarts", "greater than or equal to 0"],
        [{ checkInterval: "0 millis" }, "checkInterval", "positive duration"],
        [{ backoffFactor: 0.5 }, "backoffFactor", "at least 1"],
        [{ backoffBase: "10 seconds", backoffCap: "1 second" }, "backoffCap", "backoffBase"],
        [{ maxRssBytes: "12 KB" }, "maxRssBytes", "ByteSize"],
        [{ stopGrace: -1 }, "stopGrace", "must not be negative"],
      ]
      for (const [input, key, why] of cases) {
        const error = yield* Effect.flip(SupervisorConfig.decode(input))
        assert.include(error.message, `["${key}"]`, error.message)
        assert.include(error.message, why, error.message)
      }
    }),
  )

  it.effect("reads the supervisor section from environment variables", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromUnknown({ supervisor: { strategy: "reassign", maxRssBytes: "2 GiB" } })
      const config = yield* SupervisorConfig.config().parse(provider)
      assert.strictEqual(config.strategy, "reassign")
      assert.strictEqual(config.maxRssBytes, 2 * 1024 ** 3)
    }),
  )
})

describe("SupervisorFile", () => {
  it.effect("decodes the seed's shape: workers, a monitoring block and a recovery block", () =>
    Effect.gen(function* () {
      const { workers, config } = yield* SupervisorFile.decode({
        workers: [{ id: "trainer-0", command: "python", args: ["train.py"], env: { CUDA_VISIBLE_DEVICES: "0" } }],
        monitoring: { interval: "2 seconds", maxRssBytes: "8 GiB" },
        recovery: { strategy: "reassign", maxRestarts: 2 },
      })
      assert.deepStrictEqual(workers[0], {
        id: "trainer-0",
        command: "python",
        args: ["train.py"],
        env: { CUDA_VISIBLE_DEVICES: "0" },
      })
      assert.deepStrictEqual(
        [
          Duration.toMillis(config.checkInterval),
          config.maxRssBytes,
          config.strategy,
          config.maxRestarts,
          config.jitter,
        ],
        [2000, 8 * 1024 ** 3, "reassign", 2, true],
      )
    }),
  )

  it.effect("names the wrong key by its path in the file", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [unknown, string]> = [
        [{ workers: [] }, `["workers"]`],
        [{ workers: [{ id: "a b", command: "x" }] }, `["workers"][0]["id"]`],
        [
          {
            workers: [
              { id: "a", command: "x" },
              { id: "a", command: "y" },
            ],
          },
          `["workers"][1]["id"]`,
        ],
        [{ workers: [{ id: "a", command: "x" }], recovery: { maxRestarts: "many" } }, `["recovery"]["maxRestarts"]`],
        [{ workers: [{ id: "a", command: "x" }], monitoring: { interval: "soon" } }, `["monitoring"]["interval"]`],
        // A cross-key rule is a typed error at its key, not a defect.
        [
          { workers: [{ id: "a", command: "x" }], recovery: { backoffBase: "10 seconds", backoffCap: "1 second" } },
          `["recovery"]["backoffCap"]`,
        ],
        // Unknown keys are refused by name, at every level.
        [{ workers: [{ id: "a", command: "x" }], recovery: { maxRestart: 3 } }, `["recovery"]["maxRestart"]`],
        [{ workers: [{ id: "a", command: "x" }], monitor: {} }, `["monitor"]`],
        [{ workers: [{ id: "a", command: "x", comand: "y" }] }, `["workers"][0]["comand"]`],
      ]
      for (const [input, path] of cases) {
        const error = yield* Effect.flip(SupervisorFile.decode(input))
        assert.include(error.message, path, error.message)
      }
    }),
  )
})
