#!/usr/bin/env node
/**
 * `fed-client`: a federated trainer as a command.
 *
 * @since 0.1.0
 */
import { Cli, EventLog } from "@fedguard/federation"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect } from "effect"
import { ClientSettings, descriptions } from "./ClientSettings.ts"
import * as Trainer from "./Trainer.ts"

const command = Cli.command("fed-client", {
  description: "Joins a fed-server, trains its MNIST shard each round and uploads the weights.",
  schema: ClientSettings,
  descriptions,
  envPrefix: "FED_CLIENT_",
  run: (settings) =>
    Trainer.run(settings).pipe(Effect.asVoid, Effect.provide(NodeTransport.layer()), Effect.provide(EventLog.layer)),
})

Cli.main(command)
