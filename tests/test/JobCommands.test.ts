import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/app-kit"
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Effect, Schema } from "effect"
import {
  is,
  portOf,
  readStateFile,
  runForOutput,
  seenOf,
  serverBin,
  startClient,
  startServer,
  startServerOn,
  waitFor,
} from "./support/Processes.ts"

const secret = "job-commands-secret"

const jobFlags = (rounds: number) => [
  "--expected-clients",
  "2",
  "--min-clients",
  "2",
  "--rounds",
  String(rounds),
  "--heartbeat-interval",
  "300ms",
  "--heartbeat-timeout",
  "2s",
  "--round-timeout",
  "30s",
]

// Clients that outlast a server restart (they retry every 100–400 ms) and rejoin by themselves.
const startClients = (port: number) =>
  Effect.forEach([0, 1], (index) =>
    startClient(port, {
      id: `c${index}`,
      index,
      count: 2,
      secret,
      flags: ["--retry-base-delay", "100ms", "--retry-max-delay", "400ms", "--max-retries", "60"],
    }),
  )

// `fed-server ARGS…` run to its end, as an operator runs it (the server's own state default
// is not inherited from the test: every command names its --state).
const fedServer = (...args: ReadonlyArray<string>) =>
  runForOutput(serverBin, args, { FED_SERVER_SECRET: secret, FED_SERVER_STATE: ":memory:" })

interface JobRow {
  readonly id: string
  readonly name: string
  readonly state: string
  readonly roundsDone: number
  readonly rounds: string | number
}

const jobsIn = (statePath: string) =>
  Effect.gen(function* () {
    const { code, stdout, stderr } = yield* fedServer("jobs", "--state", statePath, "--json")
    assert.strictEqual(code, 0, stderr)
    return JSON.parse(stdout) as ReadonlyArray<JobRow>
  })

const decodeReport = Schema.decodeUnknownSync(Report.Report)

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i)

// A job whose server was SIGKILLed after its round 2: the state file holds it `running`. Its two
// clients live on in the caller's Scope, retrying to reach the server's port.
const killedAfterRound2 = (statePath: string, rounds: number) =>
  Effect.gen(function* () {
    const server = yield* startServer(secret, [...jobFlags(rounds), "--state", statePath])
    const port = yield* portOf(server)
    const created = yield* waitFor(server, is("JobCreated"))
    const clients = yield* startClients(port)
    yield* waitFor(
      server,
      is("RoundCompleted", (e) => e.round === 2),
    )
    server.process.kill("SIGKILL")
    yield* server.closed
    return { jobId: created.jobId, port, clients }
  })

// The first job event of a starting server: it created a job or resumed one.
const jobEvent = (e: ServerEvent.ServerEvent) => e._tag === "JobCreated" || e._tag === "JobResumed"

describe("fed-server jobs | abort | report", () => {
  it.live("on a missing state file each exits 1 naming the file, and creates nothing", () =>
    Effect.gen(function* () {
      const dir = mkdtempSync(join(tmpdir(), "fedguard-missing-"))
      const statePath = join(dir, "nowhere.db")
      for (const args of [
        ["jobs", "--state", statePath],
        ["jobs", "--state", statePath, "--json"],
        ["abort", "--state", statePath, "job-0000000000000000"],
        ["report", "--state", statePath, "job-0000000000000000"],
      ]) {
        const { code, stdout, stderr } = yield* fedServer(...args)
        assert.strictEqual(code, 1, args.join(" "))
        assert.strictEqual(stderr, `fed-server: no state file at ${statePath} (pass --state PATH)\n`)
        assert.strictEqual(stdout, "")
        assert.deepStrictEqual(readdirSync(dir), [], "nothing created (no file, no -wal, no -shm)")
      }
    }),
  )

  it.live(
    "on a completed job: jobs lists it with every round, report prints what the server reported, and abort refuses it (exit 1, the file unchanged)",
    () =>
      Effect.gen(function* () {
        const rounds = 3
        const dir = mkdtempSync(join(tmpdir(), "fedguard-finished-"))
        const statePath = join(dir, "state.db")
        const reportPath = join(dir, "report.json")
        const server = yield* startServer(secret, [...jobFlags(rounds), "--state", statePath, "--report", reportPath])
        const port = yield* portOf(server)
        const created = yield* waitFor(server, is("JobCreated"))
        yield* startClients(port)
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        const served = decodeReport(JSON.parse(readFileSync(reportPath, "utf8")))

        const jobs = yield* jobsIn(statePath)
        assert.strictEqual(jobs.length, 1)
        assert.deepInclude(jobs[0]!, {
          id: created.jobId,
          name: "mnist-fedavg",
          state: "completed",
          roundsDone: rounds,
        })
        assert.strictEqual(String(jobs[0]!.rounds), String(rounds))
        const table = yield* fedServer("jobs", "--state", statePath)
        assert.strictEqual(table.code, 0, table.stderr)
        assert.match(table.stdout, /^JOB\s+NAME\s+STATE\s+ROUNDS\s+UPDATED\n/)
        assert.match(table.stdout, new RegExp(`\\n${created.jobId}\\s+mnist-fedavg\\s+completed\\s+3/3\\s+\\S+$`))

        const printed = yield* fedServer("report", "--state", statePath, created.jobId)
        assert.strictEqual(printed.code, 0, printed.stderr)
        const { job, ...report } = JSON.parse(printed.stdout) as { job: unknown }
        assert.deepStrictEqual(job, { id: created.jobId, name: "mnist-fedavg", state: "completed", roundsDone: rounds })
        // The store alone gives back the server's report, but for the clients' diagnostics: they
        // are the live process's, like its cleanups, and not kept in the state file.
        const { diagnostics: _diagnostics, ...servedWithoutDiagnostics } = served
        assert.deepStrictEqual(decodeReport(report), servedWithoutDiagnostics)
        assert.deepStrictEqual(
          served.rounds.map((r) => r.round),
          range(1, rounds),
        )
        const outPath = join(dir, "from-store.json")
        const written = yield* fedServer("report", "--state", statePath, created.jobId, "--out", outPath)
        assert.strictEqual(written.code, 0, written.stderr)
        assert.deepStrictEqual(JSON.parse(readFileSync(outPath, "utf8")), JSON.parse(printed.stdout))

        const before = readStateFile(statePath)
        const refused = yield* fedServer("abort", "--state", statePath, created.jobId)
        assert.strictEqual(refused.code, 1)
        assert.strictEqual(
          refused.stderr,
          `fed-server: job ${created.jobId} is completed: only a job that has not finished can be aborted\n`,
        )
        assert.deepStrictEqual(readStateFile(statePath), before)
        const unknown = yield* fedServer("report", "--state", statePath, "job-0000000000000000")
        assert.strictEqual(unknown.code, 1)
        assert.match(unknown.stderr, /job-0000000000000000/)
      }).pipe(Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )

  it.live(
    "abort of a running job (its server SIGKILLed after round 2) records it aborted, and a server started on the file creates a new job instead of resuming it",
    () =>
      Effect.gen(function* () {
        const rounds = 4
        const dir = mkdtempSync(join(tmpdir(), "fedguard-abort-"))
        const statePath = join(dir, "state.db")
        const { jobId, port, clients } = yield* killedAfterRound2(statePath, rounds)
        const [running] = yield* jobsIn(statePath)
        assert.strictEqual(running!.state, "running")
        const done = running!.roundsDone
        assert.isAtLeast(done, 2)

        const aborted = yield* fedServer("abort", "--state", statePath, jobId, "--reason", "wrong data set")
        assert.strictEqual(aborted.code, 0, aborted.stderr)
        assert.strictEqual(aborted.stdout, `job ${jobId} (mnist-fedavg): running → aborted after ${done} round(s)`)
        assert.deepInclude((yield* jobsIn(statePath))[0]!, { id: jobId, state: "aborted", roundsDone: done })
        assert.deepInclude(readStateFile(statePath).transitions.at(-1)!, {
          job_id: jobId,
          from_state: "running",
          to_state: "aborted",
          reason: "wrong data set",
        })
        const again = yield* fedServer("abort", "--state", statePath, jobId)
        assert.strictEqual(again.code, 1)
        assert.match(again.stderr, /is aborted: only a job that has not finished can be aborted/)

        // The same settings, the same port: the clients come back, to a new job from round 1.
        const server = yield* startServerOn(port, secret, [...jobFlags(rounds), "--state", statePath])
        const first = yield* waitFor(server, jobEvent)
        assert.strictEqual(first._tag, "JobCreated")
        assert.notStrictEqual((first as ServerEvent.JobCreated).jobId, jobId)
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        assert.isFalse(server.seen().some(is("JobResumed")))
        assert.deepStrictEqual(
          seenOf(server, "RoundStarted").map((e) => e.round),
          range(1, rounds),
        )
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const jobs = yield* jobsIn(statePath)
        assert.deepStrictEqual(
          jobs.map((j) => [j.id, j.state, j.roundsDone]),
          [
            [jobId, "aborted", done],
            [(first as ServerEvent.JobCreated).jobId, "completed", rounds],
          ],
        )
      }).pipe(Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )

  it.live(
    "a restart with another --rounds exits 2 with one line naming --rounds and --new-job, the running job untouched; with --new-job the old job is aborted and a new one runs",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "fedguard-conflict-"))
        const statePath = join(dir, "state.db")
        const { jobId, port, clients } = yield* killedAfterRound2(statePath, 4)
        const before = readStateFile(statePath)

        const refused = yield* fedServer("--port", "0", ...jobFlags(5), "--state", statePath)
        assert.strictEqual(refused.code, 2)
        assert.strictEqual(refused.stdout, "", "refused before listening")
        assert.match(refused.stderr, /^fed-server: [^\n]*--rounds 4 \(now 5\)[^\n]*--new-job[^\n]*\n$/)
        assert.include(refused.stderr, jobId)
        const after = readStateFile(statePath)
        assert.deepStrictEqual(after, before, "the state file holds the same rows")
        assert.strictEqual(after.jobs[0]!.state, "running")

        const server = yield* startServerOn(port, secret, [...jobFlags(5), "--state", statePath, "--new-job"])
        const first = yield* waitFor(server, jobEvent)
        assert.strictEqual(first._tag, "JobCreated")
        const newId = (first as ServerEvent.JobCreated).jobId
        assert.notStrictEqual(newId, jobId)
        yield* waitFor(server, is("TrainingCompleted"))
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const jobs = yield* jobsIn(statePath)
        assert.deepStrictEqual(
          jobs.map((j) => [j.id, j.state, String(j.rounds)]),
          [
            [jobId, "aborted", "4"],
            [newId, "completed", "5"],
          ],
        )
        assert.strictEqual(jobs[0]!.roundsDone, before.rounds.length, "the old job keeps its committed rounds")
        assert.deepInclude(
          readStateFile(statePath)
            .transitions.filter((t) => t.job_id === jobId)
            .at(-1)!,
          {
            from_state: "running",
            to_state: "aborted",
            reason: "replaced by a new job (--new-job)",
          },
        )
      }).pipe(Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )

  it.live(
    "a foreign file as --state (text, or another application's SQLite database) is refused as not a fedguard state file and left byte-identical",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "fedguard-foreign-"))
        const short = join(dir, "notes.txt")
        writeFileSync(short, "hello, world\n")
        const long = join(dir, "README.md")
        writeFileSync(long, `# Not a database\n\n${"Some prose that is longer than a SQLite header. ".repeat(20)}\n`)
        const other = join(dir, "other-app.db")
        const db = new DatabaseSync(other)
        db.exec(
          "CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT); INSERT INTO settings VALUES ('theme', 'dark')",
        )
        db.close()
        const files = [short, long, other]
        const bytes = new Map(files.map((file) => [file, readFileSync(file)]))

        for (const file of files) {
          const server = yield* fedServer("--port", "0", ...jobFlags(3), "--state", file)
          assert.notStrictEqual(server.code, 0)
          assert.match(server.stderr, new RegExp(`^fed-server: --state: ${file} is not a fedguard state file: .*\\n$`))
          assert.strictEqual(server.stdout, "", "refused before listening")
          const jobs = yield* fedServer("jobs", "--state", file)
          assert.strictEqual(jobs.code, 1)
          assert.match(jobs.stderr, /is not a fedguard state file/)
          assert.isTrue(readFileSync(file).equals(bytes.get(file)!), `${file} is byte-identical`)
        }
        assert.sameMembers(readdirSync(dir), ["notes.txt", "README.md", "other-app.db"], "no -wal, -shm or journal")
        assert.isFalse(existsSync(`${other}-wal`))
      }),
    60_000,
  )
})
