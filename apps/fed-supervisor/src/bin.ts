#!/usr/bin/env node
/**
 * `fed-supervisor FLEET_FILE [--state PATH] [--output auto|table|json]`
 * (`npm run fed-supervisor -- …`): runs the workers of a YAML or JSON fleet
 * file under `@fedguard/supervisor`, with a live table of workers and their
 * health on a terminal and JSON event lines otherwise.
 *
 * Exit codes: 0 the fleet completed (a significant worker exited 0), 1 the
 * supervisor escalated or stopped on a failure (the reason and the restart
 * history on stderr) or failed otherwise, 2 bad usage (a bad flag, a fleet
 * file that is missing, unparsable or has a wrong key, a bad `--state`;
 * one line naming it), 130 interrupted (SIGINT, SIGTERM: every worker was
 * stopped first).
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cli, EventLog } from "@fedguard/app-kit"
import { Cause, Effect, Exit, Logger, Option } from "effect"
import { Argument, CliError, Command, Flag } from "effect/cli"
import * as FleetRun from "./FleetRun.ts"

const command = Command.make(
  "fed-supervisor",
  {
    file: Argument.String("fleet-file").pipe(
      Argument.withDescription("The fleet file: workers, monitoring, recovery (.yaml, .yml or .json)"),
    ),
    state: Flag.String("state").pipe(
      Flag.withDescription(
        "SQLite state file (workers, pids, restart counts); a fed-supervisor started again on it adopts the " +
          "workers still running (default: none, nothing is kept)",
      ),
      Flag.optional,
    ),
    output: Flag.Literals("output", ["auto", "table", "json"]).pipe(
      Flag.withDescription("table (live, for a terminal), json (one event per line), auto: table on a terminal"),
      Flag.withDefault("auto" as const),
    ),
  },
  (input) => {
    const output = input.output === "auto" ? (process.stdout.isTTY ? "table" : "json") : input.output
    return FleetRun.run({ file: input.file, state: Option.getOrUndefined(input.state), output }).pipe(
      // JSON lines on stdout; with the table, the supervisor's own warnings go to the default logger.
      output === "json" ? Effect.provide(EventLog.layer) : Effect.provide(Logger.layer([Logger.consolePretty()])),
    )
  },
).pipe(Command.withDescription("Supervises a fleet of worker processes from a YAML or JSON file"))

const usageErrors: ReadonlySet<string> = new Set([
  "FleetFileUnreadable",
  "FleetFileSyntax",
  "InvalidFleetConfig",
  "InvalidStateFile",
])

const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit)
    ? 0
    : Cause.hasInterruptsOnly(exit.cause)
      ? 130
      : Option.match(Cause.findErrorOption(exit.cause), {
          onNone: () => 1,
          onSome: (error) =>
            CliError.isCliError(error)
              ? error._tag === "ShowHelp" && error.errors.length === 0
                ? 0
                : 2
              : usageErrors.has((error as { readonly _tag?: string })._tag ?? "")
                ? 2
                : 1,
        })

NodeRuntime.runMain(Cli.run(command, "0.1.0").pipe(Effect.provide(NodeServices.layer)), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = exitCode(exit)
    onExit(code)
    process.exit(code)
  },
})
