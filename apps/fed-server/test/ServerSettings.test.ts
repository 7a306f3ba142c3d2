import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Settings } from "@fedguard/app-kit"
import { Duration, Effect, Redacted, type Schema } from "effect"
import * as ServerSettings from "../src/ServerSettings.ts"

const load = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S,
  envPrefix: string,
  flags: Record<string, string>,
) => Settings.loadFlags(schema, envPrefix, flags).pipe(Effect.provide(NodeServices.layer))

// The one line the binary prints (after its name) for settings that fail to load.
const failure = <E>(loading: Effect.Effect<unknown, E>) =>
  Effect.map(Effect.flip(loading), (error) => (error as { readonly message: string }).message)

const server = (flags: Record<string, string>) =>
  load(ServerSettings.ServerSettings, "FED_SERVER_", { secret: "long-enough", ...flags })

describe("server settings", () => {
  it.effect("valid settings load, and derive the retry policy and liveness options from the packages", () =>
    Effect.gen(function* () {
      const settings = yield* server({
        heartbeatInterval: "200ms",
        heartbeatTimeout: "1s",
        roundTimeout: "2s",
        retryBaseDelay: "50ms",
        retryMaxDelay: "50ms",
        minClients: "4",
      })
      assert.strictEqual(Redacted.value(settings.secret), "long-enough")
      const policy = ServerSettings.retryPolicy(settings)
      assert.deepStrictEqual([policy.maxRetries, Duration.toMillis(policy.baseDelay)], [3, 50])
      const liveness = ServerSettings.livenessOptions(settings)
      assert.deepStrictEqual(
        [Duration.toMillis(Duration.fromInputUnsafe(liveness.timeout!)), liveness.minClients],
        [1000, 4],
      )
      assert.strictEqual(liveness.detector?.name, "fixed-timeout")
    }),
  )

  it.effect("rejects a heartbeat timeout not longer than the interval, naming both flags", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ heartbeatTimeout: "1s", heartbeatInterval: "2s" })),
        "invalid settings: --heartbeat-timeout (1s) must be longer than --heartbeat-interval (2s): a peer would be declared lost between two beats",
      )
      assert.match(
        yield* failure(server({ heartbeatTimeout: "2s", heartbeatInterval: "2s" })),
        /--heartbeat-timeout \(2s\) must be longer than --heartbeat-interval \(2s\)/,
      )
      // A given interval is checked against the default timeout too.
      assert.match(
        yield* failure(server({ heartbeatInterval: "2m" })),
        /^invalid settings: --heartbeat-timeout \(90s\) must be longer than --heartbeat-interval \(2m\)/,
      )
    }),
  )

  it.effect("rejects zero intervals and timeouts", () =>
    Effect.gen(function* () {
      for (const key of ["heartbeatInterval", "heartbeatTimeout", "roundTimeout", "joinTimeout"] as const) {
        const flag = Settings.names(key, "").flag
        assert.match(
          yield* failure(server({ [key]: "0ms" })),
          new RegExp(`^invalid setting ${key} \\(from ${flag}\\): must be a positive duration`),
        )
      }
    }),
  )

  it.effect("rejects a round timeout not longer than the heartbeat timeout, but accepts a longer one", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ roundTimeout: "30s" })),
        "invalid settings: --round-timeout (30s) must be longer than --heartbeat-timeout (90s): a round would end before a dead client is detected",
      )
      assert.match(yield* failure(server({ roundTimeout: "90s" })), /must be longer than --heartbeat-timeout/)
      assert.strictEqual((yield* server({ roundTimeout: "91s" })).roundTimeout, 91_000)
    }),
  )

  it.effect("derives the stall guard's timeouts from the round and heartbeat timeouts when they are not given", () =>
    Effect.gen(function* () {
      const derived = ServerSettings.timeouts(yield* server({}))
      assert.deepStrictEqual(
        [
          derived.sendTimeout,
          derived.ackProgressTimeout,
          derived.checkInterval,
          derived.stallTimeout,
          derived.consecutiveChecks,
        ],
        [30_000, 60_000, 5_000, 45_000, 3],
      )
      const fast = ServerSettings.timeouts(
        yield* server({ heartbeatInterval: "200ms", heartbeatTimeout: "1s", roundTimeout: "30s" }),
      )
      assert.isBelow(fast.ackProgressTimeout, 1_000)
      assert.isBelow(fast.sendTimeout, 1_000)
      // A given value is kept as it is.
      const given = ServerSettings.timeouts(yield* server({ ackProgressTimeout: "10s" }))
      assert.strictEqual(given.ackProgressTimeout, 10_000)
    }),
  )

  it.effect("refuses an inconsistent timeout set with the timeout budget's rules, naming the flags", () =>
    Effect.gen(function* () {
      const message = yield* failure(server({ stallTimeout: "50s", consecutiveChecks: "5", checkInterval: "15s" }))
      assert.match(message, /^invalid settings: .*--stall-timeout.*--round-timeout.*stall/)
      const heartbeat = yield* failure(server({ heartbeatInterval: "50s", heartbeatTimeout: "90s" }))
      assert.match(
        heartbeat,
        /--heartbeat-timeout, --heartbeat-interval: heartbeat timeout 90 s must exceed 2 × interval 50 s/,
      )
    }),
  )

  it.effect("rejects more min-clients than expected-clients, but accepts as many", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ minClients: "5", expectedClients: "4" })),
        "invalid settings: --min-clients (5) must not be greater than --expected-clients (4): the server would wait for clients that are not expected",
      )
      assert.strictEqual((yield* server({ minClients: "4", expectedClients: "4" })).minClients, 4)
    }),
  )

  it.effect("rejects a retry base delay above the max delay, through RetryPolicy's own rule", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ retryBaseDelay: "5s", retryMaxDelay: "1s" })),
        "invalid settings: --retry-max-delay (1s) must not be shorter than --retry-base-delay (5s)",
      )
      assert.match(yield* failure(server({ retryBaseDelay: "0s" })), /retryBaseDelay \(from --retry-base-delay\)/)
    }),
  )

  it.effect("rejects more expected clients than allowed client ids", () =>
    Effect.gen(function* () {
      assert.match(
        yield* failure(server({ clientIds: "a,b,a", minClients: "2", expectedClients: "3" })),
        /^invalid settings: --expected-clients \(3\) must not be greater than the 2 distinct ids of --client-ids/,
      )
      assert.strictEqual((yield* server({ clientIds: "a, b", expectedClients: "2" })).clientIds, "a, b")
    }),
  )

  it.effect("rejects a report path whose directory does not exist, before anything runs", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ report: "/nonexistent/r.json" })),
        "invalid setting report (from --report): cannot write /nonexistent/r.json: directory /nonexistent does not exist",
      )
      const writable = join(mkdtempSync(join(tmpdir(), "fed-report-")), "r.json")
      assert.strictEqual((yield* server({ report: writable })).report, writable)
    }),
  )
})
