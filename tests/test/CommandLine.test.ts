import { spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Schedule } from "effect"
import { clientBin, serverBin } from "./support/Processes.ts"

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

// A client of an address nothing listens on, holding shard ? of 2 (each test adds the rest).
const unreachableClient = ["--server", "127.0.0.1:1", "--id", "a", "--secret", "long-enough", "--shard-count", "2"]

describe("command lines", () => {
  it.live("fed-server --help exits 0", () =>
    Effect.gen(function* () {
      const { code } = yield* runs(serverBin, ["--help"])
      assert.strictEqual(code, 0)
    }),
  )

  it.live(
    "--explain-timeouts prints every timeout with its source and bound, derived from the round timeout, and exits 0",
    () =>
      Effect.gen(function* () {
        const running = yield* start(serverBin, [
          "--secret",
          "long-enough",
          "--round-timeout",
          "20s",
          "--heartbeat-interval",
          "2s",
          "--heartbeat-timeout",
          "6s",
          "--explain-timeouts",
        ])
        assert.strictEqual(yield* running.exitCode, 0)
        const table = yield* running.printed("all 10 rules hold")
        assert.isString(table)
        assert.match(yield* running.printed("ackProgressTimeout  "), /^ackProgressTimeout\s+4 s\s+derived/)
      }).pipe(Effect.scoped),
  )

  it.live("an inconsistent set of timeouts exits 2 at start with the broken rules, naming the flags", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(serverBin, ["--secret", "long-enough", "--ack-progress-timeout", "130s"])
      assert.strictEqual(code, 2)
      assert.match(
        stderr,
        /^fed-server: invalid settings: --ack-progress-timeout: ack-progress window 130 s \+ .* must be below round timeout 120 s.*\n$/,
      )
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
        "fed-server: invalid settings: --heartbeat-timeout, --heartbeat-interval: heartbeat timeout 1 s must exceed 2 × interval 2 s: one lost or late beat would declare a live peer dead\n",
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
        "2s",
        "--report",
        join(mkdtempSync(join(tmpdir(), "fed-report-")), "r.json"),
        "--state",
        ":memory:",
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
