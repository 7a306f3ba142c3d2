import { mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/app-kit"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Effect, Option, Schema } from "effect"
import { is, portOf, startClient, startServer, waitFor } from "./support/Processes.ts"

const secret = "faults-secret-123"
const heartbeatTimeoutMs = 1000

const client = (port: number, index: number) =>
  startClient(port, {
    id: `c${index}`,
    index,
    count: 4,
    secret,
    // What is under test is the server's 1 s detection. Clients are more patient with the
    // server (5 s), so a starved client process on a loaded machine does not flap.
    flags: ["--retry-base-delay", "100ms", "--heartbeat-timeout", "5s"],
  })

const fastBeats = ["--heartbeat-interval", "200ms", "--heartbeat-timeout", `${heartbeatTimeoutMs}ms`]

const startFederation = (rounds: number, reportPath: string) =>
  Effect.gen(function* () {
    const server = yield* startServer(secret, [
      "--expected-clients",
      "4",
      "--min-clients",
      "2",
      "--rounds",
      String(rounds),
      ...fastBeats,
      "--round-timeout",
      "30s",
      // 5 local epochs make a round last long enough for a restarted process to rejoin.
      "--local-epochs",
      "5",
      "--report",
      reportPath,
    ])
    const port = yield* portOf(server)
    const clients = [yield* client(port, 0), yield* client(port, 1), yield* client(port, 2), yield* client(port, 3)]
    return { server, port, clients }
  })

const readReport = (path: string) => Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(path, "utf8")))

describe("fault tolerance over TCP (200 ms beats, 1 s timeout)", () => {
  it.live(
    "SIGKILL of 1 of 4 clients mid-round: marked offline within the bound, the round completes without it, and after a restart it rejoins and trains again",
    () =>
      Effect.gen(function* () {
        const reportPath = join(mkdtempSync(join(tmpdir(), "fedguard-kill-")), "report.json")
        const { server, port, clients } = yield* startFederation(30, reportPath)
        yield* waitFor(
          server,
          is("RoundStarted", (e) => e.round === 2),
        )
        const killedAt = Date.now()
        clients[3]!.process.kill("SIGKILL")
        const offline = yield* waitFor(
          server,
          is("ClientWentOffline", (e) => e.id === "c3"),
        )
        const detectedAfter = offline.receivedAt - killedAt
        // The bound is the heartbeat timeout (+1%); a killed process is usually seen at once,
        // through its closed socket. 1 s of slack absorbs scheduling on a loaded machine.
        assert.isBelow(detectedAfter, heartbeatTimeoutMs * 1.01 + 1000)
        const round2 = yield* waitFor(
          server,
          is("RoundCompleted", (e) => e.round === 2),
        )
        assert.notInclude(round2.participants, "c3")
        assert.deepInclude(round2.excluded, { id: "c3", reason: "offline" })
        assert.isAtLeast(round2.participants.length, 2)
        yield* client(port, 3)
        yield* waitFor(
          server,
          is("ClientRejoined", (e) => e.id === "c3"),
        )
        const back = yield* waitFor(
          server,
          is("RoundCompleted", (e) => e.participants.includes("c3")),
        )
        assert.isAtLeast(back.round, 3)
        yield* waitFor(server, is("TrainingCompleted"))
        // Exactly one offline transition for the kill, whichever of socket close and deadline came first.
        assert.strictEqual(server.seen().filter(is("ClientWentOffline", (e) => e.id === "c3")).length, 1)
        // And it is said once: every line of the server's log is one of its typed events (no
        // free-text line from a library next to the structured one).
        const stray = server.lines().filter((line) => Option.isNone(ServerEvent.fromLine(line)))
        assert.deepStrictEqual(stray, [])
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        const report = readReport(reportPath)
        assert.strictEqual(report.rounds.length, 30)
        const c3 = report.clients.find((c) => c.id === "c3")
        assert.isDefined(c3)
        assert.isTrue(report.rounds.some((r) => r.excluded.some((x) => x.id === "c3" && x.reason === "offline")))
        assert.isTrue(report.rounds.at(-1)!.participants.includes("c3"))
        assert.isAbove(report.finalAccuracy, 0.85)
      }).pipe(Effect.scoped, Effect.timeout("120 seconds")),
    150_000,
  )

  it.live(
    "a stalled client (SIGSTOP: its socket stays open) goes offline by heartbeat timeout, not before, and rejoins after SIGCONT",
    () =>
      Effect.gen(function* () {
        const reportPath = join(mkdtempSync(join(tmpdir(), "fedguard-stall-")), "report.json")
        const { server, clients } = yield* startFederation(30, reportPath)
        yield* waitFor(
          server,
          is("RoundStarted", (e) => e.round === 2),
        )
        const stoppedAt = Date.now()
        clients[2]!.process.kill("SIGSTOP")
        const offline = yield* waitFor(
          server,
          is("ClientWentOffline", (e) => e.id === "c2"),
        )
        const after = offline.receivedAt - stoppedAt
        // Not before the timeout minus one beat interval (its last beat may be up to 200 ms old).
        assert.isAtLeast(after, heartbeatTimeoutMs - 200 - 50)
        assert.isBelow(after, heartbeatTimeoutMs * 1.01 + 1000)
        assert.match(offline.reason, /timeout|silent|heartbeat|no sign/i)
        clients[2]!.process.kill("SIGCONT")
        yield* waitFor(
          server,
          is("ClientRejoined", (e) => e.id === "c2"),
        )
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        const report = readReport(reportPath)
        assert.isTrue(report.rounds.some((r) => r.excluded.some((x) => x.id === "c2")))
        assert.isTrue(report.rounds.at(-1)!.participants.includes("c2"))
      }).pipe(Effect.scoped, Effect.timeout("120 seconds")),
    150_000,
  )

  it.live(
    "below --min-clients the server pauses new rounds, and resumes when a client comes back",
    () =>
      Effect.gen(function* () {
        const server = yield* startServer(secret, [
          "--expected-clients",
          "2",
          "--min-clients",
          "2",
          "--rounds",
          "6",
          "--local-epochs",
          "5",
          ...fastBeats,
        ])
        const port = yield* portOf(server)
        const a = yield* client(port, 0)
        const b = yield* client(port, 1)
        yield* waitFor(
          server,
          is("RoundStarted", (e) => e.round === 2),
        )
        b.process.kill("SIGKILL")
        yield* waitFor(server, is("QuorumLost"))
        const pausedAt = yield* waitFor(
          server,
          (e: ServerEvent.ServerEvent) => e._tag === "RoundPaused" || e._tag === "RoundStarted",
        )
        assert.strictEqual(pausedAt._tag, "RoundPaused")
        // Paused: nothing starts while only one client is alive.
        yield* Effect.sleep("1500 millis")
        yield* client(port, 1)
        // Until a round starts again, both the rejoin and the restored quorum must have been seen.
        const seen = new Set<string>()
        yield* waitFor(server, (e: ServerEvent.ServerEvent) => {
          if (e._tag !== "RoundStarted") seen.add(e._tag)
          return e._tag === "RoundStarted"
        })
        assert.isTrue(
          seen.has("ClientRejoined"),
          server
            .seen()
            .map((e) => ("id" in e ? `${e._tag}:${e.id}` : e._tag))
            .join(","),
        )
        assert.isTrue(seen.has("QuorumRestored"), [...seen].join(","))
        const resumed = yield* waitFor(server, is("RoundCompleted"))
        assert.deepStrictEqual(resumed.participants, ["c0", "c1"])
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        assert.strictEqual(yield* a.exitCode, 0, a.stderr())
      }).pipe(Effect.scoped, Effect.timeout("120 seconds")),
    150_000,
  )
})

describe("two processes with one client id (TCP)", () => {
  it.live(
    "the second replaces the first at once without holding a round; the first is told why and stops; nobody flaps",
    () =>
      Effect.gen(function* () {
        const reportPath = join(mkdtempSync(join(tmpdir(), "fedguard-dup-")), "report.json")
        const server = yield* startServer(secret, [
          "--expected-clients",
          "2",
          "--min-clients",
          "1",
          "--rounds",
          "20",
          "--local-epochs",
          "5",
          ...fastBeats,
          "--report",
          reportPath,
        ])
        const port = yield* portOf(server)
        yield* client(port, 0)
        const first = yield* client(port, 1)
        yield* waitFor(
          server,
          is("RoundStarted", (e) => e.round === 2),
        )
        // Another process with the same id (shard 1 too), e.g. a copy-pasted launch script.
        const second = yield* client(port, 1)
        yield* waitFor(
          server,
          is("ClientReplaced", (e) => e.id === "c1"),
        )
        assert.strictEqual(yield* first.exitCode, 1)
        assert.isTrue(
          first.seen().some((e) => e._tag === "Refused" && /replaced by a newer session/.test(e.reason)),
          JSON.stringify(first.seen()),
        )
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        assert.strictEqual(yield* second.exitCode, 0, second.stderr())
        const report = readReport(reportPath)
        // The replaced slot was released at once: no round waited for the 30 s round timeout.
        for (const round of report.rounds) {
          assert.isBelow(round.durationMs, 10_000)
          assert.notDeepInclude(round.excluded, { id: "c1", reason: "straggler" })
        }
        assert.strictEqual(server.seen().filter(is("ClientReplaced")).length, 1)
        assert.isAtMost(server.seen().filter(is("ClientRejoined", (e) => e.id === "c1")).length, 1)
        assert.isTrue(report.rounds.at(-1)!.participants.includes("c1"))
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )
})

describe("an upload that stops moving while heartbeats flow (TCP, NVIDIA FLARE's frozen stream)", () => {
  it.live(
    "the client is excluded as stalled within the ack-progress timeout, the round completes with the rest, it is never marked offline, and it takes part again",
    () =>
      Effect.gen(function* () {
        const reportPath = join(mkdtempSync(join(tmpdir(), "fedguard-stall-upload-")), "report.json")
        const server = yield* startServer(secret, [
          "--expected-clients",
          "4",
          "--min-clients",
          "2",
          "--rounds",
          "5",
          "--local-epochs",
          "3",
          ...fastBeats,
          "--round-timeout",
          "30s",
          "--report",
          reportPath,
        ])
        const port = yield* portOf(server)
        for (const index of [0, 2, 3]) yield* client(port, index)
        // c1's upload in round 2 sends half its bytes, then nothing; its heartbeats go on.
        yield* startClient(port, {
          id: "c1",
          index: 1,
          count: 4,
          secret,
          // The retry of the frozen upload waits 3 s, past the server's stall detection even on a
          // loaded machine (with 100 ms it could land first and be taken).
          flags: ["--retry-base-delay", "3s", "--heartbeat-timeout", "5s", "--fault-stall-upload", "2"],
        })
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        const report = readReport(reportPath)
        const round2 = report.rounds[1]!
        assert.deepStrictEqual(round2.excluded, [{ id: "c1", reason: "stalled" }])
        assert.deepStrictEqual(round2.participants, ["c0", "c2", "c3"])
        // With 1 s heartbeats the derived ack-progress timeout is 667 ms, checked every 56 ms.
        assert.isBelow(round2.durationMs, 667 + 56 + 1_500)
        assert.isFalse(server.seen().some(is("ClientWentOffline", (e) => e.id === "c1")))
        assert.isTrue(report.rounds.slice(2).some((round) => round.participants.includes("c1")))
        assert.isTrue(report.rounds.at(-1)!.participants.includes("c1"))
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )
})
