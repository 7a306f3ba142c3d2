import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer, Option, Redacted, Schedule, Schema, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as Demo from "../src/Demo.ts"
import { demoBin, fast, readReport, reportPath, runDemo, runToEnd } from "./support.ts"

// Most tests run the built demo as a process: the faults are about what a user sees
// (exit codes, the final line, stderr) and one of them SIGKILLs the demo itself, which
// only a separate process can survive to observe. The secret test runs the demo in
// process to record every command it spawns.

const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))

const startDemo = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    return yield* spawner.spawn(
      ChildProcess.make(process.execPath, [demoBin, ...args], { stdout: "pipe", stderr: "pipe" }),
    )
  })

/** The round numbers of the table's rows, in the order they were printed. */
const tableRounds = (stdout: ReadonlyArray<string>) =>
  stdout.filter((line) => /^\d+\s+\d/.test(line)).map((line) => Number(line.split(" ")[0]))

const StoredJobs = Schema.fromJsonString(
  Schema.Array(Schema.Struct({ id: Schema.String, state: Schema.String, roundsDone: Schema.Number })),
)

/** A process is gone once /proc no longer lists it or it is a zombie waiting to be reaped. */
const isAlive = (pid: number) => {
  const stat = `/proc/${pid}/stat`
  if (!existsSync(stat)) return false
  const state = readFileSync(stat, "utf8").split(") ")[1]?.[0]
  return state !== undefined && state !== "Z" && state !== "X"
}

describe("demo", () => {
  it.live(
    "the README's kill-then-restart runs to the end: the restarted client rejoins and the demo exits 0 with its final line",
    () =>
      Effect.gen(function* () {
        const report = reportPath()
        // A restarted process needs a second or more (Node start, MNIST) before it can rejoin, and
        // more on a loaded machine: 5 local epochs make each round long enough that the remaining
        // 37 rounds leave it plenty of time whatever the load.
        const run = yield* runDemo([
          ...["--clients", "3", "--rounds", "40", "--local-epochs", "5", "--report", report],
          ...["--kill", "client-2@2", "--restart", "client-2@3", ...fast],
        ])
        assert.strictEqual(run.code, 0, run.stderr.join("\n"))
        assert.match(run.stdout.at(-1)!, /^final accuracy 0\.\d{4} after 40 rounds in [\d.]+ s; report: /)
        // The HTML report is written by default, beside the JSON report, and its path printed.
        const html = report.replace(/\.json$/, ".html")
        assert.include(run.stdout.at(-1)!, `HTML report (charts, liveness timeline; opens offline): ${html}`)
        assert.include(readFileSync(html, "utf8"), '<canvas id="rounds-chart"')
        // The table comes from typed events: one row per round, in order, and the client notes.
        const rounds = run.stdout.filter((line) => /^\d+\s/.test(line)).map((line) => Number(line.split(" ")[0]))
        assert.deepStrictEqual(
          rounds,
          Array.from({ length: 40 }, (_, i) => i + 1),
        )
        assert.isTrue(run.stdout.some((line) => line.startsWith("  · client-offline client-2")))
        assert.include(run.stdout, "  ! restarting client-2 at the start of round 3")
        const written = readReport(report)
        assert.notInclude(written.rounds[2]!.participants, "client-2")
        // The restarted client was not interrupted with the event reader: it rejoined and trained.
        const back = written.rounds.findIndex((round, index) => index > 2 && round.participants.includes("client-2"))
        assert.isAbove(back, 2, "client-2 never took part again after its restart")
        assert.isTrue(written.rounds.slice(back).every((round) => round.participants.includes("client-2")))
        assert.strictEqual(written.clients.find((client) => client.id === "client-2")?.state, "completed")
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("100 seconds")),
    110_000,
  )

  it.live(
    "--stall freezes that client's upload in that round: the table shows it excluded as stalled, and it trains again after",
    () =>
      Effect.gen(function* () {
        const report = reportPath()
        const run = yield* runDemo([
          ...["--clients", "3", "--rounds", "5", "--local-epochs", "3", "--report", report],
          ...["--stall", "client-1@2", ...fast],
        ])
        assert.strictEqual(run.code, 0, run.stderr.join("\n"))
        // Without --state, the server keeps its job in a new file of a fresh directory, and the demo says where.
        const state = /^state file (.+\/fedguard-demo-[^/]+\/state\.db) \(new for this run/.exec(run.stdout[1]!)
        assert.isNotNull(state, run.stdout[1])
        assert.isTrue(existsSync(state![1]!))
        const row = (round: number) => run.stdout.find((line) => line.startsWith(`${round} `)) ?? ""
        assert.match(row(2), /client-1:stalled$/)
        assert.match(row(5), /-$/)
        const written = readReport(report)
        assert.deepStrictEqual(written.rounds[1]!.excluded, [{ id: "client-1", reason: "stalled" }])
        assert.include(written.rounds.at(-1)!.participants, "client-1")
        assert.isFalse(run.stdout.some((line) => line.startsWith("  · client-offline client-1")))
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("60 seconds")),
    70_000,
  )

  it.live(
    "--kill-server@2 SIGKILLs the server after round 2 and starts it again on its state file: it resumes after round 2, the clients reconnect by themselves, and every round runs exactly once",
    () =>
      Effect.gen(function* () {
        const directory = mkdtempSync(join(tmpdir(), "fedguard-demo-"))
        const report = join(directory, "report.json")
        const state = join(directory, "state.db")
        // 2NN rounds take about half a second here: the kill, sent as soon as the demo reads round 2's
        // event, lands long before the server could commit round 3.
        const run = yield* runDemo([
          ...["--clients", "2", "--rounds", "4", "--model", "2nn", "--report", report, "--state", state],
          ...["--kill-server@2", ...fast],
        ])
        assert.strictEqual(run.code, 0, run.stderr.join("\n"))
        assert.strictEqual(run.stdout[1], `state file ${state} (given with --state)`)
        assert.lengthOf(
          run.stdout.filter((line) => line.startsWith("round ")),
          1,
        )
        // Each round's row once, in order: none lost with the killed server, none run twice by the new one.
        assert.deepStrictEqual(tableRounds(run.stdout), [1, 2, 3, 4])
        const at = (pattern: RegExp) => run.stdout.findIndex((line) => pattern.test(line))
        const killed = at(/^ {2}! killing the server \(SIGKILL\) after round 2$/)
        const restarted = at(/^ {2}! starting the server again on port \d+ with the same arguments and state file$/)
        assert.isAbove(killed, at(/^2\s/))
        assert.isAbove(restarted, killed)
        assert.isBelow(restarted, at(/^3\s/))
        // The server's JobResumed event, as the table shows it: once, after round 2.
        const resumed = run.stdout.flatMap((line) => {
          const match = /^\s+resumed: job (\S+) after round (\d+) of 4, from the state file/.exec(line)
          return match === null ? [] : [{ jobId: match[1]!, afterRound: Number(match[2]) }]
        })
        assert.lengthOf(resumed, 1)
        assert.strictEqual(resumed[0]!.afterRound, 2)
        // The clients were not restarted: they rode out the outage and trained in every later round.
        assert.isFalse(run.stdout.some((line) => /^ {2}(! restarting|· client-\d exited)/.test(line)))
        assert.deepStrictEqual(run.stdout.slice(-2, -1), [
          "all 4 rounds completed, each exactly once in the report; the server resumed the job once, after round 2",
        ])
        assert.match(run.stdout.at(-1)!, /^final accuracy 0\.\d{4} after 4 rounds in [\d.]+ s; report: /)
        const written = readReport(report)
        assert.deepStrictEqual(
          written.rounds.map((round) => round.round),
          [1, 2, 3, 4],
        )
        assert.isTrue(written.rounds.every((round) => round.participants.length === 2))
        // One job in the state file, the resumed one, completed: the restart did not start a new job.
        const jobs = yield* runToEnd(serverBin, ["jobs", "--json", "--state", state])
        assert.strictEqual(jobs.code, 0, jobs.stderr.join("\n"))
        assert.deepStrictEqual(Schema.decodeUnknownSync(StoredJobs)(jobs.stdout.join("\n")), [
          { id: resumed[0]!.jobId, state: "completed", roundsDone: 4 },
        ])
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("60 seconds")),
    70_000,
  )

  it.live(
    "killing clients below quorum shows the pause, then exits 1 with a final line instead of hanging",
    () =>
      Effect.gen(function* () {
        const run = yield* runDemo([
          ...["--clients", "2", "--rounds", "6", "--report", reportPath()],
          ...["--kill", "client-0@2", "--kill", "client-1@2", ...fast],
        ])
        assert.strictEqual(run.code, 1)
        // The server may still count a just-killed client for one more round: it pauses before round 3 or 4.
        assert.isTrue(run.stdout.some((line) => /^[34]\s+paused: 0 of 1 needed clients online$/.test(line)))
        assert.isFalse(run.stdout.some((line) => line.startsWith("final accuracy")))
        assert.lengthOf(run.stderr, 1)
        assert.match(
          run.stderr[0]!,
          /^fedguard-demo: the federation cannot go on: the server paused before round [34] /,
        )
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("30 seconds")),
    40_000,
  )

  it.live(
    "a pause that a scheduled restart can end brings that restart forward, resumes and exits 0",
    () =>
      Effect.gen(function* () {
        const report = reportPath()
        const run = yield* runDemo([
          ...["--clients", "2", "--rounds", "6", "--report", report],
          ...["--kill", "client-0@2", "--kill", "client-1@2", "--restart", "client-1@5", ...fast],
        ])
        assert.strictEqual(run.code, 0, run.stderr.join("\n"))
        const paused = run.stdout.findIndex((line) => /^[34]\s+paused: 0 of 1 needed/.test(line))
        const restarted = run.stdout.findIndex((line) =>
          line.startsWith("  ! restarting client-1 now (scheduled for round 5)"),
        )
        assert.isAbove(paused, 0)
        assert.isAbove(restarted, paused)
        assert.isTrue(run.stdout.slice(restarted).some((line) => /^\s+resumed: quorum restored/.test(line)))
        assert.match(run.stdout.at(-1)!, /^final accuracy/)
        assert.include(readReport(report).rounds.at(-1)!.participants, "client-1")
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("40 seconds")),
    50_000,
  )

  it.live(
    "a server that rejects its settings fails the demo at once with its exit code and stderr, not after a 60 s wait",
    () =>
      Effect.gen(function* () {
        const run = yield* runDemo(["--heartbeat-interval", "nonsense", "--report", reportPath()]).pipe(
          Effect.timeout("10 seconds"),
        )
        assert.strictEqual(run.code, 1)
        assert.lengthOf(run.stderr, 1)
        assert.match(run.stderr[0]!, /^fedguard-demo: fed-server exited with code 2: .*heartbeatInterval/)
      }).pipe(Effect.provide(NodeServices.layer)),
    20_000,
  )

  it.live(
    "a bad flag or impossible fault exits 2 with one line naming it, before starting anything and without the help",
    () =>
      Effect.gen(function* () {
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, RegExp]> = [
          [
            ["--kill", "client-9@3"],
            /^fedguard-demo: --kill client-9@3: no such client; this run starts client-0…client-3$/,
          ],
          [["--restart", "client-1@3"], /^fedguard-demo: --restart client-1@3: needs an earlier --kill of client-1/],
          [["--rounds", "5", "--kill", "client-1@6"], /^fedguard-demo: --kill client-1@6: round 6 is outside 1…5$/],
          [["--kill", "client-1"], /^fedguard-demo: .*--kill.*CLIENT@ROUND/],
          [["--clients", "abc"], /^fedguard-demo: .*--clients/],
          [["--kill-server@x"], /^fedguard-demo: Invalid value for flag --kill-server: "x"/],
          [["--rounds", "5", "--kill-server@6"], /^fedguard-demo: --kill-server@6: round 6 is outside 1…5$/],
          [["--rounds", "5", "--kill-server@5"], /^fedguard-demo: --kill-server@5: round 5 is the last: /],
          [
            ["--kill-server@3", "--state", ":memory:"],
            /^fedguard-demo: --kill-server@3: --state :memory: keeps no state/,
          ],
          [["--no-such-flag"], /^fedguard-demo: .*--no-such-flag/],
        ]
        const runs = yield* Effect.forEach(cases, ([args]) => runDemo(args), { concurrency: 2 })
        runs.forEach((run, i) => {
          assert.strictEqual(run.code, 2, cases[i]![0].join(" "))
          assert.deepStrictEqual(run.stdout, [])
          assert.lengthOf(run.stderr, 1, run.stderr.join("\n"))
          assert.match(run.stderr[0]!, cases[i]![1])
        })
      }).pipe(Effect.provide(NodeServices.layer), Effect.timeout("30 seconds")),
    40_000,
  )

  it.live(
    "hands the secret to the server and clients in their environment, never on a command line",
    () =>
      Effect.gen(function* () {
        const commands: Array<ChildProcess.StandardCommand> = []
        const recording = Layer.effect(
          ChildProcessSpawner.ChildProcessSpawner,
          Effect.gen(function* () {
            const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
            return ChildProcessSpawner.make((command) => {
              if (ChildProcess.isStandardCommand(command)) commands.push(command)
              return spawner.spawn(command)
            })
          }),
        ).pipe(Layer.provide(NodeServices.layer))
        yield* Demo.run({
          clients: 2,
          rounds: 1,
          model: "softmax",
          partition: "iid",
          seed: 42,
          localEpochs: 1,
          report: reportPath(),
          kill: [],
          restart: [],
          stall: [],
          killServer: [],
          state: Option.none(),
          heartbeatInterval: "200ms",
          heartbeatTimeout: "1s",
          roundTimeout: "10s",
        }).pipe(Effect.scoped, Effect.provide(recording), Effect.provide(NodeServices.layer))
        assert.lengthOf(commands, 3)
        const secrets = commands.map((command) => {
          const env = command.options.env ?? {}
          const secret = env.FED_SERVER_SECRET ?? env.FED_CLIENT_SECRET
          assert.isDefined(secret)
          return Redacted.isRedacted(secret) ? Redacted.value(secret) : String(secret)
        })
        assert.strictEqual(new Set(secrets).size, 1)
        for (const command of commands) {
          const argv = [command.command, ...command.args.map(String)]
          assert.isFalse(
            argv.some((arg) => arg.includes(secrets[0]!)),
            argv.join(" "),
          )
          assert.notInclude(argv, "--secret")
        }
      }).pipe(Effect.timeout("40 seconds")),
    50_000,
  )

  it.live(
    "SIGKILLing the demo takes its server and clients with it within 5 s",
    () =>
      Effect.gen(function* () {
        const demo = yield* startDemo(["--clients", "2", "--rounds", "100000", "--report", reportPath(), ...fast])
        // Wait for the first round's row: the server and both clients are up by then.
        yield* demo.stdout.pipe(
          Stream.decodeText(),
          Stream.splitLines,
          Stream.takeUntil((line) => /^1\s/.test(line)),
          Stream.runDrain,
          Effect.timeout("30 seconds"),
        )
        const children = readFileSync(`/proc/${demo.pid}/task/${demo.pid}/children`, "utf8")
          .trim()
          .split(/\s+/)
          .map(Number)
        assert.lengthOf(children, 3)
        assert.isTrue(children.every(isAlive))
        process.kill(demo.pid, "SIGKILL")
        const survivors = yield* Effect.sync(() => children.filter(isAlive)).pipe(
          Effect.repeat({ schedule: Schedule.spaced("100 millis"), until: (alive) => alive.length === 0 }),
          Effect.timeoutOption("5 seconds"),
        )
        assert.deepStrictEqual(
          Option.getOrElse(survivors, () => children.filter(isAlive)),
          [],
        )
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer), Effect.timeout("45 seconds")),
    50_000,
  )
})
