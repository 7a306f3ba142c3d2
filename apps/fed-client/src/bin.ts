#!/usr/bin/env node
/**
 * `fed-client`: a federated trainer as a command. This file only chooses
 * the transport (TCP) and the logger (JSON lines); `FedClient` is the client.
 *
 * @since 0.1.0
 */
import { Cli, EventLog, ParentWatch, Progress, Telemetry } from "@fedguard/app-kit"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect } from "effect"
import { ClientSettings, descriptions } from "./ClientSettings.ts"
import * as FedClient from "./FedClient.ts"

const command = Cli.command("fed-client", {
  description: "Joins a fed-server, trains its MNIST shard each round and uploads the weights.",
  schema: ClientSettings,
  descriptions,
  envPrefix: "FED_CLIENT_",
  run: (settings) =>
    FedClient.run(settings).pipe(
      Effect.asVoid,
      Effect.provide(NodeTransport.layer()),
      // Inside the JSON-lines logger: the OTLP logger (--otlp-endpoint) is added to it.
      Effect.provide(
        Telemetry.layer({
          endpoint: settings.otlpEndpoint,
          serviceName: "fed-client",
          attributes: { "fedguard.client.id": settings.id },
        }),
      ),
      // On a terminal only: progress bars of long uploads, the JSON lines printed above them.
      Effect.provide(Progress.layerTerminal),
      Effect.provide(EventLog.layer),
      Effect.provide(ParentWatch.layer),
    ),
})

Cli.main(command)
