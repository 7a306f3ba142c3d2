import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Option, Schema, SchemaIssue } from "effect"
import * as HeartbeatConfig from "../src/HeartbeatConfig.ts"
import * as LivenessTracker from "../src/LivenessTracker.ts"

const millis = (config: HeartbeatConfig.HeartbeatConfig) => ({
  interval: Duration.toMillis(config.interval),
  peerTimeout: Duration.toMillis(config.peerTimeout),
  timeout: Duration.toMillis(config.timeout),
  joinTimeout: Duration.toMillis(config.joinTimeout),
  minClients: config.minClients,
  detector: config.detector,
})

describe("HeartbeatConfig", () => {
  it("defaults to 30 s beats, 90 s timeouts, 120 s join timeout, a quorum of 1 and the fixed timeout", () => {
    assert.deepStrictEqual(millis(HeartbeatConfig.defaults), {
      interval: 30_000,
      peerTimeout: 90_000,
      timeout: 90_000,
      joinTimeout: 120_000,
      minClients: 1,
      detector: "fixed-timeout",
    })
  })

  it.effect("reads a section from a config object, keeping defaults for missing keys", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromUnknown({
        heartbeat: { timeout: "60 seconds", minClients: 5, detector: "phi-accrual" },
      })
      const config = yield* HeartbeatConfig.config().parse(provider)
      assert.deepStrictEqual(millis(config), {
        interval: 30_000,
        peerTimeout: 90_000,
        timeout: 60_000,
        joinTimeout: 120_000,
        minClients: 5,
        detector: "phi-accrual",
      })
      assert.strictEqual(LivenessTracker.optionsFromConfig(config).detector?.name, "phi-accrual")
    }),
  )

  it.effect("reads environment variables", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromEnv({
        env: { HEARTBEAT_INTERVAL: "5 seconds", HEARTBEAT_JOIN_TIMEOUT: "1 minute" },
      }).pipe(ConfigProvider.constantCase)
      const config = yield* HeartbeatConfig.config().parse(provider)
      assert.strictEqual(Duration.toMillis(config.interval), 5_000)
      assert.strictEqual(Duration.toMillis(config.joinTimeout), 60_000)
      assert.strictEqual(Duration.toMillis(config.timeout), 90_000)
    }),
  )

  it.effect("takes every default when the section is absent", () =>
    Effect.gen(function* () {
      const config = yield* HeartbeatConfig.config().parse(ConfigProvider.fromUnknown({}))
      assert.deepStrictEqual(millis(config), millis(HeartbeatConfig.defaults))
    }),
  )

  it.effect("names the wrong key and why", () =>
    Effect.gen(function* () {
      const provider = ConfigProvider.fromUnknown({ heartbeat: { timeout: "soon", minClients: -1 } })
      const error = yield* Effect.flip(HeartbeatConfig.config().parse(provider))
      assert.include(String(error), "timeout")
      const decoded = Schema.decodeUnknownExit(HeartbeatConfig.HeartbeatConfig)({ minClients: -1 })
      assert.isTrue(decoded._tag === "Failure")
      assert.include(String(decoded), "minClients")
    }),
  )

  it("accepts numbers of milliseconds as durations", () => {
    const config = Schema.decodeUnknownSync(HeartbeatConfig.HeartbeatConfig)({ interval: 200, timeout: 1000 })
    assert.deepStrictEqual([Duration.toMillis(config.interval), Duration.toMillis(config.timeout)], [200, 1000])
  })

  it("rejects zero intervals and timeouts at their key", () => {
    for (const key of ["interval", "timeout", "peerTimeout", "joinTimeout"]) {
      const decoded = Schema.decodeUnknownExit(HeartbeatConfig.HeartbeatConfig)({ [key]: 0 })
      assert.isTrue(decoded._tag === "Failure")
      assert.include(String(decoded), `["${key}"]`)
      assert.include(String(decoded), "must be a positive duration")
    }
  })

  it("rejects a timeout or peer timeout not longer than the interval, with the relation as data", () => {
    for (const key of ["timeout", "peerTimeout"] as const) {
      const decoded = Schema.decodeUnknownExit(HeartbeatConfig.HeartbeatConfig)({ interval: 2000, [key]: 2000 })
      assert.isTrue(decoded._tag === "Failure")
      assert.include(String(decoded), `${key} (2s) must be longer than interval (2s)`)
      assert.include(String(decoded), `["${key}"]`)
    }
    const error = Schema.decodeUnknownExit(HeartbeatConfig.HeartbeatConfig)({ interval: 2000, timeout: 1000 })
    if (error._tag !== "Failure") return assert.fail("expected a decoding failure")
    const issue = Option.getOrThrow(Cause.findErrorOption(error.cause)).issue
    const relations = SchemaIssue.makeFormatterStandardSchemaV1({
      leafHook: (leaf) => (leaf._tag === "InvalidValue" ? JSON.stringify(leaf.annotations?.relation) : ""),
    })(issue).issues
    assert.deepStrictEqual(relations[0]?.path, ["timeout"])
    assert.deepStrictEqual(JSON.parse(relations[0]?.message ?? "null"), {
      other: "interval",
      must: "be longer than",
      because: "a peer would be declared lost between two beats",
    })
  })

  it("lets the phi-accrual detector, which ignores timeout, keep a timeout under the interval", () => {
    const config = Schema.decodeUnknownSync(HeartbeatConfig.HeartbeatConfig)({
      detector: "phi-accrual",
      interval: 2000,
      timeout: 1000,
    })
    assert.strictEqual(config.detector, "phi-accrual")
  })
})
