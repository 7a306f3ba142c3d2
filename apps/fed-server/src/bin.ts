#!/usr/bin/env node
/**
 * `fed-server`: the FedAvg coordinator as a command. This file only chooses
 * the transport (TCP), the logger (JSON lines) and where settings come from
 * (flags, environment, config file); `FedServer` composes the rest. The
 * subcommands `jobs`, `abort` and `report` read the state file
 * (`JobCommands`).
 *
 * @since 0.1.0
 */
import { Cli, EventLog, ParentWatch, Progress } from "@fedguard/app-kit"
import { TimeoutBudget } from "@fedguard/stall-guard"
import { NodeTransport } from "@fedguard/transport-node"
import { Console, Effect, FileSystem } from "effect"
import { Command } from "effect/cli"
import * as FedServer from "./FedServer.ts"
import * as JobCommands from "./JobCommands.ts"
import * as Observability from "./Observability.ts"
import * as ServerEvent from "./ServerEvent.ts"
import * as ServerSettings from "./ServerSettings.ts"

const command = Cli.command("fed-server", {
  description: "Coordinates federated averaging on MNIST over TCP; survives clients that die, stall or flap.",
  schema: ServerSettings.ServerSettings,
  descriptions: ServerSettings.descriptions,
  envPrefix: "FED_SERVER_",
  switches: ["explainTimeouts", "newJob"],
  run: (settings, switches) =>
    Effect.gen(function* () {
      const timeouts = ServerSettings.timeouts(settings)
      if (switches.explainTimeouts === true) return yield* Console.log(TimeoutBudget.explain(timeouts))
      const report = yield* FedServer.run(settings, { newJob: switches.newJob === true }).pipe(
        // Bounded sends (FLARE's fix A) are the socket link's write timeout.
        Effect.provide(NodeTransport.layer({ writeTimeout: timeouts.sendTimeout })),
      )
      if (settings.report !== undefined) {
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(settings.report, `${JSON.stringify(report, null, 2)}\n`)
        yield* ServerEvent.lines.log(new ServerEvent.ReportWritten({ path: settings.report }))
      }
    }).pipe(
      // Inside the JSON-lines logger: the OTLP logger (--otlp-endpoint) is added to it.
      Effect.provide(Observability.layer(settings)),
      // On a terminal only: progress bars of long transfers, the JSON lines printed above them.
      Effect.provide(Progress.layerTerminal),
      Effect.provide(EventLog.layer),
      Effect.provide(ParentWatch.layer),
    ),
})

Cli.main(command.pipe(Command.withSubcommands([JobCommands.jobs, JobCommands.abort, JobCommands.report])))
