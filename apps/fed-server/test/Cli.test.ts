import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { clientBin, serverBin, start } from "./support/Processes.ts"

const runs = (file: string, args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const running = yield* start(file, args)
    const code = yield* running.exitCode
    return { code, stderr: running.stderr() }
  }).pipe(Effect.scoped, Effect.timeout("30 seconds"))

// A client of an address nothing listens on, holding shard ? of 2 (each test adds the rest).
const unreachableClient = ["--server", "127.0.0.1:1", "--id", "a", "--secret", "long-enough", "--shard-count", "2"]

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

  it.live("an unknown flag exits 2", () =>
    Effect.gen(function* () {
      const { code } = yield* runs(serverBin, ["--secret", "long-enough", "--bogus", "1"])
      assert.strictEqual(code, 2)
    }),
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

  it.live("a shard index outside the shard count exits 2", () =>
    Effect.gen(function* () {
      const { code, stderr } = yield* runs(clientBin, [...unreachableClient, "--shard-index", "2"])
      assert.strictEqual(code, 2)
      assert.match(stderr, /shardIndex 2 must be below shardCount 2/)
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
