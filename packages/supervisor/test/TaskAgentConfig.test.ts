import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect } from "effect"
import * as TaskAgentConfig from "../src/TaskAgentConfig.ts"

const millis = (config: TaskAgentConfig.TaskAgentConfig) => ({
  heartbeatInterval: Duration.toMillis(config.heartbeatInterval),
  peerTimeout: Duration.toMillis(config.peerTimeout),
  startTimeout: Duration.toMillis(config.startTimeout),
  resendInterval: Duration.toMillis(config.resendInterval),
  maxResends: config.maxResends,
  chunkBytes: config.chunkBytes,
  resultIdleTimeout: Duration.toMillis(config.resultIdleTimeout),
  maxResultBytes: config.maxResultBytes,
})

const defaults = {
  heartbeatInterval: 5_000,
  peerTimeout: 30_000,
  startTimeout: 30_000,
  resendInterval: 2_000,
  maxResends: 3,
  chunkBytes: 4 * 1024 * 1024,
  resultIdleTimeout: 60_000,
  maxResultBytes: 1024 * 1024 * 1024,
}

describe("TaskAgentConfig", () => {
  it("defaults to FlareAgent's settings: 5 s heartbeats, 30 s peer timeout, resends every 2 s at most 3 times", () => {
    assert.deepStrictEqual(millis(TaskAgentConfig.defaults), defaults)
  })

  it.effect("accepts durations as strings or milliseconds", () =>
    Effect.gen(function* () {
      const config = yield* TaskAgentConfig.decode({ heartbeatInterval: 250, peerTimeout: "2 seconds", maxResends: 0 })
      assert.deepStrictEqual(millis(config), { ...defaults, heartbeatInterval: 250, peerTimeout: 2_000, maxResends: 0 })
    }),
  )

  it.effect("names the wrong key and why", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [Record<string, unknown>, string]> = [
        [{ maxResends: -1 }, "maxResends"],
        [{ maxResends: 1.5 }, "maxResends"],
        [{ resendInterval: "0 millis" }, "resendInterval"],
        [{ heartbeatInterval: "soon" }, "heartbeatInterval"],
        [{ chunkBytes: 0 }, "chunkBytes"],
        [{ heartbeatInterval: "30 seconds", peerTimeout: "30 seconds" }, "peerTimeout"],
      ]
      for (const [input, key] of cases) {
        const error = yield* Effect.flip(TaskAgentConfig.decode(input))
        assert.include(error.message, `["${key}"]`, `${JSON.stringify(input)}: ${error.message}`)
      }
      const rule = yield* Effect.flip(TaskAgentConfig.decode({ heartbeatInterval: "30 seconds" }))
      assert.include(rule.message, "must be longer than heartbeatInterval")
    }),
  )

  it.effect("reads the taskAgent section, or TASK_AGENT_* environment variables, keeping defaults", () =>
    Effect.gen(function* () {
      const fromObject = yield* TaskAgentConfig.config().parse(
        ConfigProvider.fromUnknown({ taskAgent: { peerTimeout: "10 seconds", maxResends: 5 } }),
      )
      assert.deepStrictEqual(millis(fromObject), { ...defaults, peerTimeout: 10_000, maxResends: 5 })
      const env = (vars: Record<string, string>) =>
        ConfigProvider.fromEnv({ env: vars }).pipe(ConfigProvider.constantCase)
      const fromEnv = yield* TaskAgentConfig.config().parse(env({ TASK_AGENT_RESEND_INTERVAL: "500" }))
      assert.deepStrictEqual(millis(fromEnv), { ...defaults, resendInterval: 500 })
      const bad = yield* Effect.flip(TaskAgentConfig.config().parse(env({ TASK_AGENT_PEER_TIMEOUT: "1000" })))
      assert.include(String(bad), `["taskAgent"]["peerTimeout"]`)
    }),
  )
})
