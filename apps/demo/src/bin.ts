#!/usr/bin/env node
/**
 * `fedguard-demo` (`npm run demo`): one fed-server and N fed-clients as OS
 * processes on 127.0.0.1, a live per-round table, the report.
 *
 * Exit codes: 0 done, 1 the federation failed (one line on stderr says why),
 * 2 bad usage (one line naming the flag), 130 interrupted.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cli } from "@fedguard/app-kit"
import { Model } from "@fedguard/federation"
import { Cause, Effect, Exit, Option, Schema, Stdio } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Demo from "./Demo.ts"
import * as FaultPlan from "./FaultPlan.ts"

const faults = (name: string, description: string) =>
  Flag.String(name).pipe(Flag.withSchema(FaultPlan.Fault), Flag.withDescription(description), Flag.atLeast(0))

const demo = Command.make(
  "fedguard-demo",
  {
    clients: Flag.Int("clients").pipe(
      Flag.withSchema(Schema.Int.pipe(Schema.check(Schema.isBetween({ minimum: 1, maximum: 64 })))),
      Flag.withDescription("Client processes to start (default 4)"),
      Flag.withDefault(4),
    ),
    rounds: Flag.Int("rounds").pipe(
      Flag.withSchema(Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))),
      Flag.withDescription("Rounds (default 10)"),
      Flag.withDefault(10),
    ),
    model: Flag.String("model").pipe(
      Flag.withSchema(Model.Name),
      Flag.withDescription("softmax, 2nn or mlp:W1,W2,… (hidden widths; default softmax)"),
      Flag.withDefault("softmax" as const),
    ),
    partition: Flag.Literals("partition", ["iid", "noniid"]).pipe(
      Flag.withDescription("iid or noniid (default iid)"),
      Flag.withDefault("iid" as const),
    ),
    seed: Flag.Int("seed").pipe(Flag.withDescription("Seed (default 42)"), Flag.withDefault(42)),
    localEpochs: Flag.Int("local-epochs").pipe(
      Flag.withSchema(Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))),
      Flag.withDescription("Local epochs per round (default 1)"),
      Flag.withDefault(1),
    ),
    localSteps: Flag.Int("local-steps").pipe(
      Flag.withSchema(Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))),
      Flag.withDescription("Cap on SGD steps per client per round (default: none, the full local epochs)"),
      Flag.optional,
    ),
    report: Flag.String("report").pipe(
      Flag.withDescription("Where the server writes its report (default demo-report.json)"),
      Flag.withDefault("demo-report.json"),
    ),
    reportHtml: Flag.String("report-html").pipe(
      Flag.withDescription(
        "Where the server writes its HTML report: charts, liveness timeline, settings, events; one file that opens offline (default: beside --report, demo-report.html)",
      ),
      Flag.optional,
    ),
    kill: faults("kill", "CLIENT@ROUND: SIGKILL that client when that round starts (repeatable)"),
    stall: faults(
      "stall",
      "CLIENT@ROUND: that client's upload stops sending mid-stream in that round while its heartbeats go on (one per client)",
    ),
    restart: faults(
      "restart",
      "CLIENT@ROUND: start a killed client again when that round starts, or earlier if the server pauses for quorum (repeatable)",
    ),
    killServer: Flag.Int("kill-server").pipe(
      Flag.withDescription(
        "ROUND, written --kill-server@3 (or --kill-server 3): SIGKILL the server when it completes that round (not the last) and start it again " +
          "with the same arguments, port and state file; it resumes the job after the last committed round and the " +
          "clients reconnect by themselves (repeatable)",
      ),
      Flag.atLeast(0),
    ),
    state: Flag.String("state").pipe(
      Flag.withDescription(
        "The server's state file (default: a new one in a fresh temporary directory, so no earlier run is resumed)",
      ),
      Flag.optional,
    ),
    heartbeatInterval: Flag.String("heartbeat-interval").pipe(
      Flag.withDescription("Client heartbeat interval (default 500ms, short for a demo)"),
      Flag.withDefault("500ms"),
    ),
    heartbeatTimeout: Flag.String("heartbeat-timeout").pipe(
      Flag.withDescription("Silence after which a client is offline (default 2s)"),
      Flag.withDefault("2s"),
    ),
    supervise: Flag.Boolean("supervise").pipe(
      Flag.withDescription(
        "Run the federation under fed-supervisor: a client killed with --kill is restarted by the supervisor and rejoins; not with --restart or --kill-server",
      ),
      Flag.withDefault(false),
    ),
    roundTimeout: Flag.String("round-timeout").pipe(
      Flag.withDescription("Longest wait for updates in a round (default 60s)"),
      Flag.withDefault("60s"),
    ),
  },
  (options) =>
    Demo.run({
      ...options,
      localSteps: Option.getOrUndefined(options.localSteps),
      reportHtml: Option.getOrUndefined(options.reportHtml),
    }).pipe(Effect.asVoid, Effect.scoped),
).pipe(Command.withDescription("Runs a demo federation: fed-server + N fed-client processes on 127.0.0.1"))

const isUsageError = (error: unknown) =>
  (CliError.isCliError(error) && error._tag === "ShowHelp" && error.errors.length > 0) ||
  error instanceof FaultPlan.InvalidFault

// The apps' command runner: `--flag -5s` read as a value, and a bad flag as one line with a
// hint instead of the whole help. `--kill-server@3` is spelled out for the parser first.
const program = Cli.run(demo, "0.2.0").pipe(
  Effect.updateService(Stdio.Stdio, (stdio) => ({
    ...stdio,
    args: Effect.map(stdio.args, FaultPlan.spellOutServerKills),
  })),
  Effect.provide(NodeServices.layer),
)

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit)
      ? 0
      : Cause.hasInterruptsOnly(exit.cause)
        ? 130
        : Option.match(Cause.findErrorOption(exit.cause), {
            onNone: () => 1,
            onSome: (error) => (isUsageError(error) ? 2 : CliError.isCliError(error) ? 0 : 1),
          })
    onExit(code)
    process.exit(code)
  },
})
