import { mkdtempSync, readFileSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/app-kit"
import type * as ClientEvent from "@fedguard/fed-client/ClientEvent"
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Duration, Effect, Schedule, Schema } from "effect"
import {
  is,
  portOf,
  type Running,
  readStateFile,
  runForOutput,
  seenOf,
  serverBin,
  startClient,
  startServer,
  startServerOn,
  waitFor,
} from "./support/Processes.ts"

const secret = "restart-secret-123"
const ids = ["c0", "c1", "c2", "c3"]

// Every client takes part in every round (4 expected, 4 at least), so a resumed run trains the
// same models as an uninterrupted one. Beats are short for speed but not so short that a busy
// 2-core machine makes a client flap: an excluded client would change the model.
const jobFlags = (rounds: number) => [
  "--expected-clients",
  "4",
  "--min-clients",
  "4",
  "--rounds",
  String(rounds),
  "--heartbeat-interval",
  "300ms",
  "--heartbeat-timeout",
  "2s",
  "--round-timeout",
  "30s",
]

// Clients notice a killed server by its closed socket at once, and retry every 100–400 ms for
// long enough to outlast a restart on a loaded machine (a welcome resets the count).
const client = (port: number, index: number) =>
  startClient(port, {
    id: `c${index}`,
    index,
    count: 4,
    secret,
    flags: ["--retry-base-delay", "100ms", "--retry-max-delay", "400ms", "--max-retries", "60"],
  })

const startClients = (port: number) => Effect.forEach([0, 1, 2, 3], (index) => client(port, index))

const readReport = (path: string) => Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(path, "utf8")))

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

const roundsOf = (report: { readonly rounds: ReadonlyArray<{ readonly round: number }> }) =>
  report.rounds.map((r) => r.round)

// `fed-server report JOB` on the state file, decoded (its `job` header beside the report).
const storedReport = (statePath: string, jobId: string) =>
  Effect.gen(function* () {
    const { code, stdout, stderr } = yield* runForOutput(serverBin, ["report", "--state", statePath, jobId])
    assert.strictEqual(code, 0, stderr)
    const parsed = JSON.parse(stdout) as { job: { id: string; name: string; state: string; roundsDone: number } }
    return { job: parsed.job, report: Schema.decodeUnknownSync(Report.Report)(parsed) }
  })

// The same job without a state file and without a kill: the model a resumed run must end on.
const uninterrupted = (rounds: number, reportPath: string) =>
  Effect.gen(function* () {
    const server = yield* startServer(secret, [...jobFlags(rounds), "--state", ":memory:", "--report", reportPath])
    yield* startClients(yield* portOf(server))
    yield* waitFor(server, is("TrainingCompleted"))
    assert.strictEqual(yield* server.exitCode, 0, server.stderr())
    return readReport(reportPath)
  }).pipe(Effect.scoped)

type Server = Running<ServerEvent.ServerEvent>

// Kills the server with SIGKILL and waits until every line it wrote has been read.
const kill = (server: Server) =>
  Effect.gen(function* () {
    server.process.kill("SIGKILL")
    assert.isNull(yield* server.exitCode)
    yield* server.closed
  })

// The rounds a server's log says it started / completed.
const started = (server: Server) => seenOf(server, "RoundStarted").map((e) => e.round)
const completed = (server: Server) => seenOf(server, "RoundCompleted").map((e) => e.round)

// What the state file holds of `jobId` after a kill, checked as a restarted server needs it:
// the file is sound, its rounds are 1..k without a gap (never a round without its model), and
// every round whose `RoundCompleted` was printed is there (committed before it was said).
const committedAfterKill = (statePath: string, jobId: string, printed: ReadonlyArray<number>) => {
  const contents = readStateFile(statePath)
  assert.strictEqual(contents.integrity, "ok")
  const rounds = contents.rounds.filter((r) => r.job_id === jobId).map((r) => r.round)
  const k = rounds.length
  assert.deepStrictEqual(rounds, range(1, k), "committed rounds are 1..k without a gap")
  assert.isAtLeast(k, Math.max(0, ...printed), "every printed RoundCompleted is committed")
  const checkpoint = contents.checkpoints.find((c) => c.job_id === jobId && c.round === k)
  if (k > 0) assert.isDefined(checkpoint, `the model of round ${k} is committed with it`)
  assert.oneOf(contents.jobs.find((j) => j.id === jobId)?.state, ["running", "paused"])
  return { k, sha256: checkpoint?.sha256 }
}

describe("a fed-server SIGKILLed and restarted on its state file (TCP, 4 clients)", () => {
  it.live(
    "resumes after the last committed round: the clients rejoin by themselves, every round is in the report exactly once, and the final model is the uninterrupted run's",
    () =>
      Effect.gen(function* () {
        const rounds = 6
        const dir = mkdtempSync(join(tmpdir(), "fedguard-restart-"))
        const reference = yield* uninterrupted(rounds, join(dir, "reference.json"))
        assert.deepStrictEqual(roundsOf(reference), range(1, rounds))

        const statePath = join(dir, "state.db")
        const reportPath = join(dir, "report.json")
        const flags = [...jobFlags(rounds), "--state", statePath, "--report", reportPath]
        const first = yield* startServer(secret, flags)
        const port = yield* portOf(first)
        const created = yield* waitFor(first, is("JobCreated"))
        const clients = yield* startClients(port)
        yield* waitFor(
          first,
          is("RoundCompleted", (e) => e.round === 2),
        )
        yield* kill(first)
        const { k, sha256 } = committedAfterKill(statePath, created.jobId, completed(first))
        assert.isAtLeast(k, 2)

        // Same flags, same port: the clients find it again by themselves.
        const second = yield* startServerOn(port, secret, flags)
        const resumed = yield* waitFor(second, is("JobResumed"))
        assert.strictEqual(resumed.jobId, created.jobId)
        assert.strictEqual(resumed.afterRound, k)
        assert.strictEqual(resumed.rounds, rounds)
        assert.strictEqual(resumed.modelSha256, sha256)
        assert.strictEqual(resumed.modelSha256, reference.rounds[k - 1]!.modelSha256)
        yield* waitFor(second, is("TrainingCompleted"))
        assert.strictEqual(yield* second.exitCode, 0, second.stderr())
        assert.isFalse(second.seen().some(is("JobCreated")))
        // Paused while its clients rejoined, then running again; each remaining round ran once.
        const moves = seenOf(second, "JobStateChanged").map((e) => `${e.from}→${e.to}`)
        assert.deepStrictEqual(moves, ["running→paused", "paused→running", "running→completed"])
        assert.deepStrictEqual(started(second), range(k + 1, rounds))
        assert.sameMembers(
          [...seenOf(second, "ClientJoined"), ...seenOf(second, "ClientRejoined")].map((e) => e.id),
          ids,
        )
        // The same four processes: each lost the server once and was welcomed twice.
        for (const c of clients) {
          assert.strictEqual(yield* c.exitCode, 0, c.stderr())
          const seen = c.seen()
          assert.strictEqual(seen.filter((e) => e._tag === "Joined").length, 2, JSON.stringify(seen))
          assert.isTrue(seen.some((e) => e._tag === "ServerLost"))
        }

        const report = readReport(reportPath)
        assert.deepStrictEqual(roundsOf(report), range(1, rounds))
        for (const round of report.rounds) assert.deepStrictEqual(round.participants, ids)
        // Round by round the same models as without the kill, so the same final model.
        assert.deepStrictEqual(
          report.rounds.map((r) => r.modelSha256),
          reference.rounds.map((r) => r.modelSha256),
        )
        assert.strictEqual(report.finalModelSha256, reference.finalModelSha256)

        const stored = yield* storedReport(statePath, created.jobId)
        assert.deepStrictEqual(stored.job, {
          id: created.jobId,
          name: "mnist-fedavg",
          state: "completed",
          roundsDone: rounds,
        })
        // The store alone gives back what the server reported (its config is the job's, from the
        // first server: the port given to the second is not part of the job; the clients'
        // diagnostics are the live process's and not kept in the state file).
        const { config: _config, ...fromStore } = stored.report
        const { config: _served, diagnostics: _diagnostics, ...served } = report
        assert.deepStrictEqual(fromStore, served)
      }).pipe(Effect.scoped, Effect.timeout("90 seconds")),
    120_000,
  )

  it.live(
    "20 SIGKILLs at seeded random moments (resuming, inside rounds, mid-commit, between rounds): after each the file is sound with rounds 1..k and the next server resumes after k; the job ends with every round once, on the uninterrupted run's model",
    () =>
      Effect.gen(function* () {
        const kills = 20
        // Enough rounds that 20 kills (each lets at most a few rounds commit) never end the job early.
        const rounds = 60
        const seed = Number(process.env.FEDGUARD_KILL_SEED ?? Date.now() % 2 ** 31)
        console.log(`ServerRestart: kill moments from seed ${seed} (replay with FEDGUARD_KILL_SEED=${seed})`)
        const random = mulberry32(seed)
        const between = (low: number, high: number) => low + random() * (high - low)

        const dir = mkdtempSync(join(tmpdir(), "fedguard-kills-"))
        const reference = yield* uninterrupted(rounds, join(dir, "reference.json"))
        const statePath = join(dir, "state.db")
        const reportPath = join(dir, "report.json")
        const flags = [...jobFlags(rounds), "--state", statePath, "--report", reportPath]

        let server = yield* startServer(secret, flags)
        const port = yield* portOf(server)
        const jobId = (yield* waitFor(server, is("JobCreated"))).jobId
        const clients = yield* startClients(port)
        let committed = 0
        const log: Array<{
          readonly mode: Mode
          readonly moment: string
          readonly k: number
          readonly landing: Landing
        }> = []
        const roundMillis: Array<number> = []
        const context = () => `seed ${seed}; kills so far:\n${log.map(describeKill).join("\n")}`

        for (let i = 0; i < kills; i++) {
          const target = committed + 1
          const clientMarks = clients.map((c) => c.seen().length)
          // The first server is killed only once its job runs: a job killed while launching is
          // failed, not resumed, by the next server (a rule of its own, not under test here).
          const mode = pick(random, i === 0 ? modes.filter((m) => m !== "while resuming") : modes)
          let moment: string
          let walRound: number | undefined
          switch (mode) {
            case "while resuming": {
              // The server waits for its four clients (they retry every 100–400 ms) before it resumes.
              const delay = between(0, 150)
              yield* Effect.sleep(Duration.millis(delay))
              moment = `${delay.toFixed(0)} ms after JobResumed`
              break
            }
            case "inside a round": {
              yield* waitFor(
                server,
                is("RoundStarted", (e) => e.round === target),
              ).pipe(Effect.timeout("30 seconds"))
              const delay = between(0, 1.3 * (median(roundMillis) ?? 100))
              yield* Effect.sleep(Duration.millis(delay))
              moment = `${delay.toFixed(0)} ms after RoundStarted ${target}`
              break
            }
            case "after the last upload": {
              // What remains of the round once its last update is in: aggregation, evaluation, the
              // commit and the client records, a window of a few milliseconds.
              yield* uploadedByAll(clients, clientMarks, target).pipe(Effect.timeout("30 seconds"))
              const delay = between(0, 12)
              yield* Effect.sleep(Duration.millis(delay))
              moment = `${delay.toFixed(1)} ms after the last upload of round ${target} was acknowledged`
              break
            }
            case "on the first WAL write": {
              // Nothing is written while a round runs: the first write to the WAL after its start is
              // its commit. The kill is sent the instant the WAL changes, while the server is still
              // writing the commit's frames (or, when it was quicker, syncing or past them).
              yield* waitFor(
                server,
                is("RoundStarted", (e) => e.round === target),
              ).pipe(Effect.timeout("30 seconds"))
              const written = yield* Effect.sync(() => killOnWalWrite(server, `${statePath}-wal`, 2000))
              walRound = written ? target : undefined
              moment = written
                ? `the instant the WAL changed after RoundStarted ${target}`
                : `no WAL write within 2 s of RoundStarted ${target}`
              break
            }
            case "at RoundCompleted": {
              yield* waitFor(
                server,
                is("RoundCompleted", (e) => e.round === target),
              ).pipe(Effect.timeout("30 seconds"))
              moment = `at once on RoundCompleted ${target}`
              break
            }
          }
          yield* kill(server)
          roundMillis.push(...seenOf(server, "RoundCompleted").map((e) => e.durationMs))
          const after = committedAfterKill(statePath, jobId, completed(server))
          assert.isAtLeast(after.k, committed, `a kill never loses a committed round (${context()})`)
          log.push({ mode, moment, k: after.k, landing: landedAt(server, after.k, walRound) })
          committed = after.k

          server = yield* startServerOn(port, secret, flags)
          const resumed = yield* waitFor(server, is("JobResumed")).pipe(Effect.timeout("30 seconds"))
          assert.strictEqual(resumed.jobId, jobId)
          assert.strictEqual(resumed.afterRound, committed, context())
          if (after.sha256 !== undefined) assert.strictEqual(resumed.modelSha256, after.sha256, context())
        }

        yield* waitFor(server, is("TrainingCompleted")).pipe(Effect.timeout("60 seconds"))
        console.log(`ServerRestart: ${context()}`)
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const report = readReport(reportPath)
        assert.deepStrictEqual(roundsOf(report), range(1, rounds))
        const stored = yield* storedReport(statePath, jobId)
        assert.strictEqual(stored.job.state, "completed")
        assert.deepStrictEqual(roundsOf(stored.report), range(1, rounds))
        assert.strictEqual(stored.report.finalModelSha256, report.finalModelSha256)
        assert.strictEqual(readStateFile(statePath).integrity, "ok")
        // Everyone in every round, so the 20 resumptions changed nothing: the same model, round by round.
        for (const round of report.rounds) assert.deepStrictEqual(round.participants, ids)
        assert.deepStrictEqual(
          report.rounds.map((r) => r.modelSha256),
          reference.rounds.map((r) => r.modelSha256),
        )
        assert.strictEqual(report.finalModelSha256, reference.finalModelSha256)

        const count = (where: Landing) => log.filter((l) => l.landing === where).length
        const inRound = count("inside a round") + count("mid-commit") + count("after the commit, before RoundCompleted")
        console.log(
          `ServerRestart: ${kills} kills (seed ${seed}): ${inRound} between a RoundStarted and its RoundCompleted ` +
            `(${count("inside a round")} before the commit, ${count("mid-commit")} mid-commit, ` +
            `${count("after the commit, before RoundCompleted")} after the commit), ` +
            `${count("between rounds")} between rounds, ${count("before the first round")} before the first round`,
        )
      }).pipe(Effect.scoped, Effect.timeout("110 seconds")),
    120_000,
  )
})

const modes = [
  "while resuming",
  "inside a round",
  "after the last upload",
  "on the first WAL write",
  "at RoundCompleted",
] as const

type Mode = (typeof modes)[number]

type Landing =
  | "before the first round"
  | "inside a round"
  | "mid-commit"
  | "after the commit, before RoundCompleted"
  | "between rounds"

// Where a kill landed, from what the killed server printed (a line is in the pipe before the
// server goes on), what the file holds (`k`), and `walRound`, the round during which the kill was
// sent on the WAL's first write: that round was still the last one started and is not committed,
// so the kill came between the first frame of its commit and the commit's end.
const landedAt = (server: Server, k: number, walRound: number | undefined): Landing => {
  const last = Math.max(0, ...started(server))
  if (last === 0) return "before the first round"
  if (completed(server).includes(last)) return "between rounds"
  if (k >= last) return "after the commit, before RoundCompleted"
  return walRound === last ? "mid-commit" : "inside a round"
}

const describeKill = (
  kill: { readonly mode: Mode; readonly moment: string; readonly k: number; readonly landing: Landing },
  i: number,
) => `  kill ${i + 1} (${kill.mode}: ${kill.moment}): ${kill.k} committed, landed ${kill.landing}`

// Spins (synchronously: no scheduling delay between seeing the write and the signal) until the
// WAL file changes, then SIGKILLs the server; false if it did not change within `limitMs`.
const killOnWalWrite = (server: Server, walPath: string, limitMs: number): boolean => {
  const stamp = () => {
    const stat = statSync(walPath, { bigint: true, throwIfNoEntry: false })
    return stat === undefined ? "absent" : `${stat.size}:${stat.mtimeNs}`
  }
  const before = stamp()
  const end = performance.now() + limitMs
  while (performance.now() < end) {
    if (stamp() !== before) {
      server.process.kill("SIGKILL")
      return true
    }
  }
  return false
}

// Done when each client has said (since `marks`) that its update of `round` was uploaded.
const uploadedByAll = (
  clients: ReadonlyArray<Running<ClientEvent.ClientEvent>>,
  marks: ReadonlyArray<number>,
  round: number,
) =>
  Effect.suspend(() =>
    clients.every((c, i) =>
      c
        .seen()
        .slice(marks[i])
        .some((e) => e._tag === "RoundTrained" && e.round === round),
    )
      ? Effect.void
      : Effect.fail("not yet"),
  ).pipe(Effect.retry({ schedule: Schedule.spaced("2 millis") }), Effect.orDie)

const median = (values: ReadonlyArray<number>): number | undefined =>
  values.length === 0 ? undefined : values.toSorted((a, b) => a - b)[Math.floor(values.length / 2)]

const pick = <A>(random: () => number, choices: ReadonlyArray<A>): A => choices[Math.floor(random() * choices.length)]!

// A small seeded PRNG (mulberry32): the kill moments of a failing run can be replayed.
const mulberry32 = (seed: number) => {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32
  }
}
