#!/usr/bin/env node
/**
 * `fed-server`: the FedAvg coordinator as a command. This file only chooses
 * the transport (TCP), the logger (JSON lines) and where settings come from
 * (flags, environment, config file); `FedServer` composes the rest.
 *
 * @since 0.1.0
 */
import { Cli, EventLog, ParentWatch } from "@fedguard/app-kit"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect, FileSystem } from "effect"
import * as FedServer from "./FedServer.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { descriptions, ServerSettings } from "./ServerSettings.ts"

const command = Cli.command("fed-server", {
  description: "Coordinates federated averaging on MNIST over TCP; survives clients that die, stall or flap.",
  schema: ServerSettings,
  descriptions,
  envPrefix: "FED_SERVER_",
  run: (settings) =>
    Effect.gen(function* () {
      const report = yield* FedServer.run(settings)
      if (settings.report !== undefined) {
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(settings.report, `${JSON.stringify(report, null, 2)}\n`)
        yield* ServerEvent.lines.log(new ServerEvent.ReportWritten({ path: settings.report }))
      }
    }).pipe(Effect.provide(NodeTransport.layer()), Effect.provide(EventLog.layer), Effect.provide(ParentWatch.layer)),
})

Cli.main(command)
