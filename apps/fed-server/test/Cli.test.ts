import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { createRequire } from "node:module"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ClientSettings, retryPolicy as clientRetryPolicy } from "@fedguard/fed-client/ClientSettings"
import { Settings } from "@fedguard/federation"
import { Deferred, Duration, Effect, Option, Redacted, Schedule, type Schema } from "effect"
import * as ServerSettings from "../src/ServerSettings.ts"

const serverBin = fileURLToPath(new URL("../dist/bin.js", import.meta.url))
const clientBin = join(
  dirname(createRequire(import.meta.url).resolve("@fedguard/fed-client/package.json")),
  "dist/bin.js",
)

interface Running {
  readonly stderr: () => string
  readonly exitCode: Effect.Effect<number | null>
  // Resolves with the first stdout line that contains `text`.
  readonly printed: (text: string) => Effect.Effect<string>
}

// `node file args…` owned by the test's Scope: SIGKILLed when it closes.
const start = (file: string, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const exited = yield* Deferred.make<number | null>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "pipe"] })),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")),
    )
    let stderr = ""
    let stdout = ""
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout.on("data", (chunk: Buffer) => {
      stdout += chunk.toString()
    })
    child.on("exit", (code) => Deferred.doneUnsafe(exited, Effect.succeed(code)))
    const running: Running = {
      stderr: () => stderr,
      exitCode: Deferred.await(exited),
      printed: (text) =>
        Effect.suspend(() => {
          const line = stdout.split("\n").find((l) => l.includes(text))
          return line === undefined ? Effect.fail("not yet") : Effect.succeed(line)
        }).pipe(Effect.retry({ schedule: Schedule.spaced("50 millis") }), Effect.orDie),
    }
    return running
  })

const runs = (file: string, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const running = yield* start(file, args)
    const code = yield* running.exitCode
    return { code, stderr: running.stderr() }
  }).pipe(Effect.scoped, Effect.timeout("30 seconds"))

// A client of an address nothing listens on, holding shard ? of 2 (each test adds the rest).
const unreachableClient = ["--server", "127.0.0.1:1", "--id", "a", "--secret", "long-enough", "--shard-count", "2"]

const load = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S,
  envPrefix: string,
  flags: Record<string, string>,
) =>
  Settings.load(schema, {
    flags: Object.fromEntries(Object.entries(flags).map(([key, value]) => [key, Option.some(value)])),
    env: {},
    envPrefix,
    configFile: Option.none(),
  }).pipe(Effect.provide(NodeServices.layer))

const server = (flags: Record<string, string>) =>
  load(ServerSettings.ServerSettings, "FED_SERVER_", { secret: "long-enough", ...flags })
const client = (flags: Record<string, string>) =>
  load(ClientSettings, "FED_CLIENT_", {
    server: "127.0.0.1:7070",
    id: "a",
    secret: "long-enough",
    shardIndex: "0",
    shardCount: "2",
    ...flags,
  })

// The one line the binary prints (after `fed-server: `) for settings that fail to load.
const failure = <E>(loading: Effect.Effect<unknown, E>) =>
  Effect.map(Effect.flip(loading), (error) => (error as { readonly message: string }).message)

describe("server settings", () => {
  it.effect("valid settings load, and derive the retry policy and liveness options from the packages", () =>
    Effect.gen(function* () {
      const settings = yield* server({
        heartbeatInterval: "200ms",
        heartbeatTimeout: "1s",
        roundTimeout: "1s",
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

  it.effect("rejects a round timeout shorter than the heartbeat timeout, but accepts an equal one", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(server({ roundTimeout: "30s" })),
        "invalid settings: --round-timeout (30s) must not be shorter than --heartbeat-timeout (90s): a round would end before a dead client is detected",
      )
      assert.strictEqual((yield* server({ roundTimeout: "90s" })).roundTimeout, 90_000)
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

describe("client settings", () => {
  it.effect("valid settings load and derive the retry policy", () =>
    Effect.gen(function* () {
      const policy = clientRetryPolicy(yield* client({ retryBaseDelay: "10ms", maxRetries: "1" }))
      assert.deepStrictEqual(
        [policy.maxRetries, Duration.toMillis(policy.baseDelay), Duration.toMillis(policy.maxDelay)],
        [1, 10, 30_000],
      )
    }),
  )

  it.effect("rejects a shard index not below the shard count, naming both flags", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ shardIndex: "2", shardCount: "2" })),
        "invalid settings: --shard-index (2) must be less than --shard-count (2): shards are numbered from 0",
      )
    }),
  )

  it.effect("checks heartbeat overrides against each other only when both are given", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ heartbeatInterval: "2s", heartbeatTimeout: "1s" })),
        "invalid settings: --heartbeat-timeout (1s) must be longer than --heartbeat-interval (2s): a peer would be declared lost between two beats",
      )
      assert.strictEqual((yield* client({ heartbeatTimeout: "1s" })).heartbeatTimeout, 1000)
      assert.strictEqual((yield* client({ heartbeatInterval: "2m" })).heartbeatInterval, 120_000)
      assert.match(yield* failure(client({ heartbeatInterval: "0s" })), /heartbeatInterval.*positive duration/)
    }),
  )

  it.effect("rejects a retry base delay above the max delay and a zero join timeout", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ retryBaseDelay: "2s", retryMaxDelay: "1s" })),
        "invalid settings: --retry-max-delay (1s) must not be shorter than --retry-base-delay (2s)",
      )
      assert.match(yield* failure(client({ joinTimeout: "0ms" })), /joinTimeout \(from --join-timeout\).*positive/)
    }),
  )
})

describe("command lines", () => {
  it.live("fed-server --help exits 0", () =>
    Effect.gen(function* () {
      const { code } = yield* runs(serverBin, ["--help"])
      assert.strictEqual(code, 0)
    }),
  )

  it.live("a bad flag value exits 2 and names the flag", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, ["--secret", "long-enough", "--port", "abc"])
      assert.strictEqual(code, 2)
      assert.match(stderr, /port.*--port.*integer/)
    }),
  )

  it.live("a bad duration exits 2 and shows the accepted forms", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, ["--secret", "long-enough", "--heartbeat-timeout", "soon"])
      assert.strictEqual(code, 2)
      assert.match(stderr, /heartbeatTimeout.*200ms, 30s/)
    }),
  )

  it.live("conflicting settings exit 2 with one line naming both flags, before listening", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, [
        "--secret",
        "long-enough",
        "--port",
        "0",
        "--heartbeat-timeout",
        "1s",
        "--heartbeat-interval=2s",
      ])
      assert.strictEqual(code, 2)
      assert.strictEqual(
        stderr,
        "fed-server: invalid settings: --heartbeat-timeout (1s) must be longer than --heartbeat-interval (2s): a peer would be declared lost between two beats\n",
      )
    }),
  )

  it.live("a negative duration is a value error, not a cluster of short flags", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, ["--secret", "long-enough", "--heartbeat-interval", "-5s"])
      assert.strictEqual(code, 2)
      assert.strictEqual(
        stderr,
        'fed-server: invalid setting heartbeatInterval (from --heartbeat-interval): must not be negative, got "-5s"\n',
      )
    }),
  )

  it.live("a report path in a missing directory exits 2 at start, naming --report and the path", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, ["--secret", "long-enough", "--report", "/nonexistent/r.json"])
      assert.strictEqual(code, 2)
      assert.match(stderr, /^fed-server: .*--report.*\/nonexistent\/r\.json.*does not exist\n$/)
    }),
  )

  it.live("an unknown flag exits 2 with one line and a hint, not the help text", () =>
    Effect.gen(function* () {
      const running = yield* start(serverBin, ["--secret", "long-enough", "--bogus", "1"])
      const code = yield* running.exitCode
      assert.strictEqual(code, 2)
      assert.match(running.stderr(), /^fed-server: .*--bogus.*\(run fed-server --help for usage\)\n$/)
    }).pipe(Effect.scoped),
  )

  it.live("valid settings still start: the server listens", () =>
    Effect.gen(function* () {
      const running = yield* start(serverBin, [
        "--secret",
        "long-enough",
        "--port",
        "0",
        "--heartbeat-interval",
        "200ms",
        "--heartbeat-timeout",
        "1s",
        "--round-timeout",
        "1s",
        "--report",
        join(mkdtempSync(join(tmpdir(), "fed-report-")), "r.json"),
      ])
      const listening = yield* running.printed('"listening"').pipe(Effect.timeout("20 seconds"))
      assert.match(listening, /"port":\d+/)
      assert.strictEqual(running.stderr(), "")
    }).pipe(Effect.scoped),
  )

  it.live("a missing required setting exits 2 and says how to set it", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(clientBin, [
        "--server",
        "127.0.0.1:1",
        "--id",
        "a",
        "--shard-count",
        "2",
        "--shard-index",
        "0",
      ])
      assert.strictEqual(code, 2)
      assert.match(stderr, /secret.*--secret.*FED_CLIENT_SECRET/)
    }),
  )

  it.live("a shard index outside the shard count exits 2 with one line naming both flags", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(clientBin, [...unreachableClient, "--shard-index", "2"])
      assert.strictEqual(code, 2)
      assert.strictEqual(
        stderr,
        "fed-client: invalid settings: --shard-index (2) must be less than --shard-count (2): shards are numbered from 0\n",
      )
    }),
  )

  it.live("client heartbeat overrides that flap exit 2 with one line naming both flags", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(clientBin, [
        ...unreachableClient,
        "--shard-index",
        "0",
        "--heartbeat-interval",
        "2s",
        "--heartbeat-timeout",
        "1s",
      ])
      assert.strictEqual(code, 2)
      assert.match(stderr, /^fed-client: invalid settings: --heartbeat-timeout \(1s\) .* --heartbeat-interval \(2s\)/)
      assert.strictEqual(stderr.split("\n").length, 2)
    }),
  )

  it.live("a client that cannot reach the server gives up after its retries and exits 1", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(clientBin, [
        ...unreachableClient,
        "--shard-index",
        "0",
        "--max-retries",
        "1",
        "--retry-base-delay",
        "10ms",
      ])
      assert.strictEqual(code, 1)
      assert.match(stderr, /unreachable/)
    }),
  )
})
