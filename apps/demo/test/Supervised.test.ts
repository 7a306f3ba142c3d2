import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import * as Demo from "../src/Demo.ts"
import * as FaultPlan from "../src/FaultPlan.ts"
import * as Supervised from "../src/Supervised.ts"
import * as Support from "./support.ts"
import { fast, readReport, reportPath } from "./support.ts"

// The built demo as a process, as a user runs it. One client, killed at round 2: the server
// pauses for quorum until it is back, so whether the killed client comes back decides the run,
// however fast or slow the machine is (with more clients the rounds go on without it and may end
// before it has rejoined).
const killOne = ["--clients", "1", "--rounds", "4", "--kill", "client-0@2", ...fast]
const options = {
  clients: 3,
  rounds: 5,
  model: "softmax",
  partition: "iid",
  seed: 42,
  localEpochs: 1,
  report: "report.json",
  kill: [],
  restart: [],
  stall: [],
  killServer: [],
  state: Option.none(),
  heartbeatInterval: "200ms",
  heartbeatTimeout: "1s",
  roundTimeout: "10s",
} satisfies Demo.DemoOptions
const fault = Schema.decodeUnknownSync(FaultPlan.Fault)

const runDemo = (args: ReadonlyArray<string>) => Support.runDemo(args).pipe(Effect.provide(NodeServices.layer))

describe("demo --supervise", () => {
  it.live(
    "fed-supervisor restarts the killed client by itself: it rejoins, the paused server resumes, it takes part again, and the summary says so",
    () =>
      Effect.gen(function* () {
        const report = reportPath()
        const run = yield* runDemo(["--supervise", ...killOne, "--report", report])
        assert.strictEqual(run.code, 0, run.stderr.join("\n"))
        assert.match(run.stdout.at(-1)!, /^final accuracy 0\.\d{4} after 4 rounds in [\d.]+ s; report: /)
        assert.isTrue(
          run.stdout.some((line) => line.startsWith("  ↻ fed-supervisor restarted client-0 (pid ")),
          run.stdout.join("\n"),
        )
        assert.match(
          run.stdout.at(-2)!,
          /^client-0: killed \(SIGKILL\) at the start of round 2; fed-supervisor restarted it [\d.]+ s later, during round 2; it took part again in 2 rounds \(3–4\)$/,
        )
        // The report (written by the server from its state file) agrees: back before the end.
        const written = readReport(report)
        assert.deepStrictEqual(
          written.rounds.map((round) => round.participants),
          [["client-0"], [], ["client-0"], ["client-0"]],
        )
      }).pipe(Effect.timeout("60 seconds")),
    70_000,
  )

  it.live(
    "without --supervise (the negative twin) nothing restarts it: the paused server cannot get its quorum back and the demo exits 1",
    () =>
      Effect.gen(function* () {
        const run = yield* runDemo([...killOne, "--report", reportPath()])
        assert.strictEqual(run.code, 1)
        assert.match(run.stderr.join("\n"), /the federation cannot go on: the server paused before round \d for quorum/)
        assert.isFalse(run.stdout.some((line) => line.includes("fed-supervisor")))
      }).pipe(Effect.timeout("60 seconds")),
    70_000,
  )

  it.effect(
    "--restart and --kill-server are refused with --supervise (InvalidFault: exit 2), before anything starts",
    () =>
      Effect.gen(function* () {
        const restart = yield* Effect.flip(
          Demo.run({ ...options, supervise: true, kill: [fault("client-1@2")], restart: [fault("client-1@3")] }),
        )
        assert.deepInclude(restart, { _tag: "InvalidFault", flag: "--restart", fault: "client-1@3" })
        assert.match(restart.message, /^--restart client-1@3: with --supervise, fed-supervisor restarts/)
        const killServer = yield* Effect.flip(Demo.run({ ...options, supervise: true, killServer: [2] }))
        assert.deepInclude(killServer, { _tag: "InvalidFault", flag: "--kill-server", fault: "2" })
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
  )

  it("the fleet file: the server significant on the chosen port, each client's stdout dropped by an exec'd shell, no secret", () => {
    const file = Supervised.fleet({ ...options, reportHtml: "r.html", state: "/tmp/s.db" }, 4321, "/work")
    const [server, ...clients] = file.workers
    assert.deepInclude(server, { id: "fed-server", command: process.execPath, cwd: "/work", significant: true })
    assert.includeMembers([...server!.args], ["--port", "4321", "--state", "/tmp/s.db", "--expected-clients", "3"])
    assert.deepStrictEqual(
      clients.map((client) => [client.id, client.command, client.args.slice(0, 3)]),
      ["client-0", "client-1", "client-2"].map((id) => [
        id,
        "/bin/sh",
        ["-c", 'exec "$0" "$@" >/dev/null', process.execPath],
      ]),
    )
    assert.includeMembers(
      [...clients[1]!.args],
      ["--server", "127.0.0.1:4321", "--id", "client-1", "--shard-index", "1"],
    )
    assert.notMatch(JSON.stringify(file), /SECRET/)
  })
})
