import { assert, describe, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Exit, Schema } from "effect"
import * as StallGuardConfig from "../src/StallGuardConfig.ts"

const plain = (config: StallGuardConfig.StallGuardConfig) => ({
  sendTimeout: Duration.toMillis(config.sendTimeout),
  ackProgressTimeout: Duration.toMillis(config.ackProgressTimeout),
  checkInterval: Duration.toMillis(config.checkInterval),
  stallTimeout: Duration.toMillis(config.stallTimeout),
  consecutiveChecks: config.consecutiveChecks,
  closeStalled: config.closeStalled,
  transferIdleTimeout: Duration.toMillis(config.transferIdleTimeout),
  completionGrace: Duration.toMillis(config.completionGrace),
})

const defaults = {
  sendTimeout: 30_000,
  ackProgressTimeout: 60_000,
  checkInterval: 5_000,
  stallTimeout: 45_000,
  consecutiveChecks: 3,
  closeStalled: false,
  transferIdleTimeout: 60_000,
  completionGrace: 5_000,
}

describe("StallGuardConfig", () => {
  it("defaults to FLARE's guardrails: 30 s send, 60 s ACK progress, 5 s checks, 45 s × 3 stall, warn only", () => {
    assert.deepStrictEqual(plain(StallGuardConfig.defaults), defaults)
  })

  it("accepts duration strings and numbers of milliseconds", () => {
    const config = Schema.decodeUnknownSync(StallGuardConfig.StallGuardConfig)({
      ackProgressTimeout: "20 seconds",
      checkInterval: 250,
      closeStalled: true,
    })
    assert.deepStrictEqual(plain(config), {
      ...defaults,
      ackProgressTimeout: 20_000,
      checkInterval: 250,
      closeStalled: true,
    })
  })

  it("rejects a zero duration and zero consecutive checks, naming the key", () => {
    const zero = Schema.decodeUnknownExit(StallGuardConfig.StallGuardConfig)({ stallTimeout: "0 millis" })
    assert.isTrue(Exit.isFailure(zero))
    assert.include(String(zero), "stallTimeout")
    const none = Schema.decodeUnknownExit(StallGuardConfig.StallGuardConfig)({ consecutiveChecks: 0 })
    assert.isTrue(Exit.isFailure(none))
  })

  it.effect("reads the stallGuard section from a config object, keeping defaults for missing keys", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromUnknown({ stallGuard: { sendTimeout: "10 seconds", consecutiveChecks: 5 } })
      const config = yield* StallGuardConfig.config().parse(provider)
      assert.deepStrictEqual(plain(config), { ...defaults, sendTimeout: 10_000, consecutiveChecks: 5 })
    }),
  )

  it.effect("reads environment variables in constant case, and all defaults without any", () =>
    Effect.gen(function* () {
      const env = ConfigProvider.fromEnv({
        env: { STALL_GUARD_ACK_PROGRESS_TIMEOUT: "15 seconds", STALL_GUARD_CLOSE_STALLED: "true" },
      }).pipe(ConfigProvider.constantCase)
      const config = yield* StallGuardConfig.config().parse(env)
      assert.deepStrictEqual(plain(config), { ...defaults, ackProgressTimeout: 15_000, closeStalled: true })
      const empty = yield* StallGuardConfig.config().parse(ConfigProvider.fromUnknown({}))
      assert.deepStrictEqual(plain(empty), defaults)
    }),
  )
})
