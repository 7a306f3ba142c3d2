import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/federation"
import { Effect, Schema } from "effect"
import { startClient, startServer, waitFor } from "./support/Processes.ts"

const secret = "e2e-secret-123"

const client = (port: number, id: string, index: number, count: number, key = secret) =>
  startClient(port, { id, index, count, secret: key })

describe("fed-server and fed-client over TCP", () => {
  it.live(
    "a real server and 2 clients train 3 rounds: accuracy rises and the report validates",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "fedguard-e2e-"))
        const reportPath = join(dir, "report.json")
        const server = yield* startServer(secret, [
          "--expected-clients",
          "2",
          "--min-clients",
          "2",
          "--rounds",
          "3",
          "--report",
          reportPath,
        ])
        const listening = yield* waitFor(server, "listening")
        const port = listening.port as number
        assert.isAbove(port, 0)
        const clients = [yield* client(port, "a", 0, 2), yield* client(port, "b", 1, 2)]
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const report = Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(reportPath, "utf8")))
        assert.strictEqual(report.rounds.length, 3)
        assert.deepStrictEqual(
          report.rounds.map((r) => r.participants.length),
          [2, 2, 2],
        )
        assert.isAbove(report.rounds[2]!.testAccuracy, report.rounds[0]!.testAccuracy)
        assert.isAbove(report.finalAccuracy, 0.8)
        assert.isAbove(report.rounds[0]!.bytesIn, 0)
        assert.deepStrictEqual(
          report.clients.map((c) => c.id),
          ["a", "b"],
        )
        assert.strictEqual(report.config.secret, "<redacted>")
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )

  it.live(
    "a client with the wrong secret is refused, logged, and the others are unaffected",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer(secret, ["--expected-clients", "2", "--min-clients", "2", "--rounds", "2"])
        const port = (yield* waitFor(server, "listening")).port as number
        const intruder = yield* client(port, "intruder", 0, 2, "not-the-secret")
        const rejected = yield* waitFor(server, "client-rejected")
        assert.strictEqual(rejected.id, "intruder")
        assert.match(String(rejected.reason), /unauthenticated/)
        assert.strictEqual(yield* intruder.exitCode, 1)
        assert.match(intruder.stderr(), /rejected/)
        const good = [yield* client(port, "a", 0, 2), yield* client(port, "b", 1, 2)]
        const done = yield* waitFor(server, "training-completed")
        assert.isAbove(done.finalAccuracy as number, 0.8)
        assert.strictEqual(yield* server.exitCode, 0)
        for (const c of good) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )
})
