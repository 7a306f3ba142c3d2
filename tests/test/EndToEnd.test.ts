import { mkdtempSync, readFileSync } from "node:fs"
import { connect } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/app-kit"
import { Effect, Schema } from "effect"
import { is, portOf, startClient, startServer, waitFor } from "./support/Processes.ts"
import { rogue, tcp } from "./support/Rogue.ts"

const secret = "e2e-secret-123"

const client = (port: number, id: string, index: number, count: number, key = secret) =>
  startClient(port, { id, index, count, secret: key })

const reportFile = () => join(mkdtempSync(join(tmpdir(), "fedguard-e2e-")), "report.json")
const readReport = (path: string) => Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(path, "utf8")))

/** A TCP socket that connects, optionally writes `bytes`, and resolves when the server ends it. */
const rawSocket = (port: number, bytes?: Uint8Array) =>
  Effect.callback<{ readonly ended: "end" | "close"; readonly afterMs: number }>((resume) => {
    const startedAt = Date.now()
    const socket = connect(port, "127.0.0.1", () => {
      if (bytes !== undefined) socket.write(bytes)
    })
    socket.on("data", () => {})
    socket.on("end", () => resume(Effect.succeed({ ended: "end", afterMs: Date.now() - startedAt })))
    socket.on("close", () => resume(Effect.succeed({ ended: "close", afterMs: Date.now() - startedAt })))
    socket.on("error", () => {})
    return Effect.sync(() => socket.destroy())
  })

describe("fed-server and fed-client over TCP", () => {
  it.live(
    "a real server and 2 clients train 3 rounds: accuracy rises and the report validates",
    () =>
      Effect.gen(function* () {
        const reportPath = reportFile()
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
        const port = yield* portOf(server)
        assert.isAbove(port, 0)
        const clients = [yield* client(port, "a", 0, 2), yield* client(port, "b", 1, 2)]
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const report = readReport(reportPath)
        assert.strictEqual(report.rounds.length, 3)
        assert.deepStrictEqual(
          report.rounds.map((r) => r.participants.length),
          [2, 2, 2],
        )
        assert.isAbove(report.rounds[2]!.testAccuracy, report.rounds[0]!.testAccuracy)
        assert.isAbove(report.finalAccuracy, 0.8)
        assert.isAbove(report.rounds[0]!.bytesIn, 0)
        // Clients that left after the farewell are reported as completed, not online.
        assert.deepStrictEqual(
          report.clients.map((c) => [c.id, c.state]),
          [
            ["a", "completed"],
            ["b", "completed"],
          ],
        )
        assert.strictEqual(report.config.secret, "<redacted>")
        assert.isTrue(server.seen().some(is("ReportWritten", (e) => e.path === reportPath)))
        for (const c of clients) assert.isTrue(c.seen().some((e) => e._tag === "TrainingCompleted"))
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )

  it.live(
    "a client with the wrong secret is refused, both sides say why, and the others are unaffected",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer(secret, ["--expected-clients", "2", "--min-clients", "2", "--rounds", "2"])
        const port = yield* portOf(server)
        const intruder = yield* client(port, "intruder", 0, 2, "not-the-secret")
        const refused = yield* waitFor(server, is("ClientRefused"))
        assert.strictEqual(refused.id, "intruder")
        assert.match(refused.reason, /unauthenticated/)
        assert.strictEqual(yield* intruder.exitCode, 1)
        assert.isTrue(intruder.seen().some((e) => e._tag === "Refused" && /unauthenticated/.test(e.reason)))
        const good = [yield* client(port, "a", 0, 2), yield* client(port, "b", 1, 2)]
        const done = yield* waitFor(server, is("TrainingCompleted"))
        assert.isAbove(done.finalAccuracy, 0.8)
        assert.strictEqual(yield* server.exitCode, 0)
        for (const c of good) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )

  it.live(
    "refused and timed-out handshakes close the socket: an idle socket and a partial frame both see end-of-stream after the 10 s handshake timeout",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer(secret, ["--expected-clients", "1", "--min-clients", "1", "--rounds", "1"])
        const port = yield* portOf(server)
        // A length prefix announcing 100 bytes, then only 3 of them.
        const partial = Uint8Array.from([0, 0, 0, 100, 1, 2, 3])
        const [idle, cut] = yield* Effect.all([rawSocket(port), rawSocket(port, partial)], { concurrency: 2 })
        for (const socket of [idle, cut]) {
          assert.isAtLeast(socket.afterMs, 9_000)
          assert.isBelow(socket.afterMs, 20_000)
        }
        assert.isAtLeast(server.seen().filter(is("ClientRefused")).length, 2)
      }).pipe(Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )
})

describe("a client that uploads NaN weights every round (TCP)", () => {
  it.live(
    "every round averages the 3 honest clients, the model stays finite and reaches the 3-client accuracy, and the rogue is listed as rejected each round",
    () =>
      Effect.gen(function* () {
        const rounds = 3
        const flags = (expected: number, report: string) => [
          "--expected-clients",
          String(expected),
          "--min-clients",
          "3",
          "--rounds",
          String(rounds),
          "--heartbeat-interval",
          "200ms",
          "--heartbeat-timeout",
          "2s",
          "--report",
          report,
        ]
        // Reference: the 3 honest clients (shards 0, 2, 3 of 4) alone.
        const referencePath = reportFile()
        const reference = yield* startServer(secret, flags(3, referencePath))
        const referencePort = yield* portOf(reference)
        for (const index of [0, 2, 3]) yield* client(referencePort, `c${index}`, index, 4)
        assert.strictEqual(yield* reference.exitCode, 0, reference.stderr())
        const expected = readReport(referencePath)

        const reportPath = reportFile()
        const server = yield* startServer(secret, flags(4, reportPath))
        const port = yield* portOf(server)
        const poisoner = yield* rogue(port, {
          id: "c1",
          secret,
          samples: 2000,
          poison: (model) => model.map(() => Number.NaN),
        })
        for (const index of [0, 2, 3]) yield* client(port, `c${index}`, index, 4)
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        const report = readReport(reportPath)
        assert.strictEqual(poisoner.uploads(), rounds)
        assert.strictEqual(report.rounds.length, rounds)
        for (const round of report.rounds) {
          assert.deepStrictEqual(round.participants, ["c0", "c2", "c3"], JSON.stringify(round.excluded))
          assert.deepStrictEqual(round.excluded, [{ id: "c1", reason: "rejected: non-finite weights" }])
          assert.strictEqual(round.rejectedUpdates, 1)
          assert.isTrue(round.modelUpdated)
          assert.isTrue(Number.isFinite(round.testLoss))
        }
        // What 3 clients reach, to the bit: the same participants every round, aggregated in a
        // canonical order, give the same model whatever the timing.
        assert.deepStrictEqual(
          report.rounds.map((round) => round.modelSha256),
          expected.rounds.map((round) => round.modelSha256),
        )
        assert.strictEqual(report.finalModelSha256, expected.finalModelSha256)
        assert.strictEqual(report.finalAccuracy, expected.finalAccuracy)
        assert.isAbove(report.finalAccuracy, 0.8)
        assert.strictEqual(server.seen().filter(is("UpdateRejected", (e) => e.id === "c1")).length, rounds)
      }).pipe(Effect.provide(tcp), Effect.scoped, Effect.timeout("120 seconds")),
    150_000,
  )
})
