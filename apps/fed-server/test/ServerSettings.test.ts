import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Memory, Settings } from "@fedguard/app-kit"
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

  it.effect("rejects a heartbeat timeout not above two intervals, naming the flags given", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ heartbeatTimeout: "1s", heartbeatInterval: "2s" })),
        "invalid settings: --heartbeat-timeout, --heartbeat-interval: heartbeat timeout 1 s must exceed 2 × interval 2 s: one lost or late beat would declare a live peer dead",
      )
      assert.match(
        yield* failure(server({ heartbeatTimeout: "4s", heartbeatInterval: "2s" })),
        /--heartbeat-timeout, --heartbeat-interval: heartbeat timeout 4 s must exceed 2 × interval 2 s/,
      )
      assert.strictEqual(
        (yield* server({ heartbeatTimeout: "4100ms", heartbeatInterval: "2s" })).heartbeatTimeout,
        4100,
      )
      // A lone interval moves the timeout derived from it (3 ×): nothing to refuse.
      const derived = ServerSettings.timeouts(
        yield* server({ heartbeatInterval: "2m", roundTimeout: "10m", joinTimeout: "5m" }),
      )
      assert.deepStrictEqual([derived.heartbeatInterval, derived.heartbeatTimeout], [120_000, 360_000])
      // Against a round it does not fit, only the given flag is named.
      assert.match(yield* failure(server({ heartbeatInterval: "2m" })), /^invalid settings: --heartbeat-interval: /)
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

  it.effect(
    "a lone round timeout sets the scale of every other timeout; with a heartbeat timeout given it must exceed it",
    () =>
      Effect.gen(function* () {
        const scaled = ServerSettings.timeouts(yield* server({ roundTimeout: "20s" }))
        assert.deepStrictEqual(
          [scaled.heartbeatInterval, scaled.heartbeatTimeout, scaled.ackProgressTimeout, scaled.roundTimeout],
          [5_000, 15_000, 10_000, 20_000],
        )
        assert.strictEqual(scaled.sources?.heartbeatTimeout, "derived")
        assert.include(
          yield* failure(server({ roundTimeout: "30s", heartbeatTimeout: "90s" })),
          "--heartbeat-timeout, --round-timeout: heartbeat timeout 90 s must be below round timeout 30 s: a dead client would be found only after the round gave up on it",
        )
        assert.strictEqual((yield* server({ roundTimeout: "91s", heartbeatTimeout: "90s" })).roundTimeout, 91_000)
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
      assert.strictEqual(
        message,
        "invalid settings: --stall-timeout, --consecutive-checks, --check-interval: stall close window 50 s + 5 × 15 s = 125 s exceeds round timeout 120 s: the monitor would decide after the round ended",
      )
      // A bad value blames itself, not the values derived from it.
      assert.match(
        yield* failure(server({ sendTimeout: "100s" })),
        /^invalid settings: --send-timeout: send timeout 100 s/,
      )
      assert.notMatch(yield* failure(server({ sendTimeout: "100s" })), /--ack-progress-timeout|--stall-timeout/)
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

  it.effect("--model takes softmax, 2nn or mlp:W1,W2,… and refuses a malformed one by name, saying what is wrong", () =>
    Effect.gen(function* () {
      assert.strictEqual((yield* server({})).model, "softmax")
      for (const model of ["2nn", "mlp:200,200", "mlp:4096,3302", "mlp:64,32,16"]) {
        assert.strictEqual((yield* server({ model })).model, model)
      }
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["mlp:0", "hidden layer 1 has width 0; a width is an integer from 1 to 65,536"],
        ["mlp:", "no hidden-layer widths after mlp: (e.g. mlp:200,200)"],
        ["mlp:a,b", 'hidden layer 1 has width "a", not a positive integer (digits only)'],
        ["mlp:200,,200", "hidden layer 2 has no width (an empty entry between commas)"],
        [
          "mlp:65536,65536",
          "4,347,133,962 parameters (16.2 GiB of float32), more than the 536,870,912 (2 GiB) allowed",
        ],
        ["cnn", "expected softmax, 2nn or mlp:W1,W2,… (hidden-layer widths, e.g. mlp:200,200)"],
      ]
      for (const [model, reason] of cases) {
        assert.strictEqual(
          yield* failure(server({ model })),
          `invalid setting model (from --model): invalid model name "${model}": ${reason}`,
        )
      }
    }),
  )

  it.effect("--local-steps is absent by default (full local epochs) and refuses anything but a positive integer", () =>
    Effect.gen(function* () {
      const defaults = yield* server({})
      assert.isFalse("localSteps" in defaults)
      assert.isFalse("localSteps" in ServerSettings.reportConfig(defaults))
      const capped = yield* server({ localSteps: "20", model: "mlp:4096,3302" })
      assert.strictEqual(capped.localSteps, 20)
      assert.strictEqual(ServerSettings.reportConfig(capped).localSteps, 20)
      for (const bad of ["0", "-3", "2.5", "many", ""]) {
        assert.match(
          yield* failure(server({ localSteps: bad })),
          /^invalid setting localSteps \(from --local-steps\): /,
          bad,
        )
      }
    }),
  )

  it("reads --client-ids as trimmed ids without empty entries, the same list the server registers", () => {
    assert.deepStrictEqual(ServerSettings.clientIdList(" a, ,b ,"), ["a", "b"])
  })

  it.effect(
    "--memory-threshold takes a byte size (RSS) or a percentage (heap limit), and refuses anything else by name",
    () =>
      Effect.gen(function* () {
        const rss = yield* server({ memoryThreshold: "1.5GiB", memoryCleanupRounds: "5" })
        assert.deepStrictEqual(Memory.cleanupOptions(rss.memoryCleanupRounds, rss.memoryThreshold), {
          everyRounds: 5,
          thresholdRss: 1.5 * 1024 ** 3,
        })
        const heap = yield* server({ memoryThreshold: "80%" })
        assert.deepStrictEqual(Memory.cleanupOptions(heap.memoryCleanupRounds, heap.memoryThreshold), {
          everyRounds: 0,
          heapFraction: 0.8,
        })
        for (const bad of ["lots", "0%", "150%", "12", "-1GiB"]) {
          assert.match(yield* failure(server({ memoryThreshold: bad })), /--memory-threshold/, bad)
        }
        assert.match(yield* failure(server({ memoryCleanupRounds: "-1" })), /--memory-cleanup-rounds/)
      }),
  )
})
