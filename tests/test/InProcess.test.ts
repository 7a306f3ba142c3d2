import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { ClientSettings } from "@fedguard/fed-client/ClientSettings"
import * as FedClient from "@fedguard/fed-client/FedClient"
import * as FedServer from "@fedguard/fed-server/FedServer"
import { ServerSettings } from "@fedguard/fed-server/ServerSettings"
import { InMemoryTransport, Transport } from "@fedguard/transport"
import { Effect, Fiber, Schema } from "effect"

const secret = "test-secret-123"

describe("federation over the in-memory transport (one process, real training)", () => {
  it.live(
    "two clients train three rounds and the global model improves",
    () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const settings = Schema.decodeUnknownSync(ServerSettings)({
          state: ":memory:",
          host: "server",
          port: "1",
          expectedClients: "2",
          minClients: "2",
          rounds: "3",
          secret,
        })
        const server = yield* Effect.forkChild(
          FedServer.run(settings).pipe(Effect.provideService(Transport.Transport, network.endpoint("server"))),
        )
        const client = (index: number) =>
          FedClient.run(
            Schema.decodeUnknownSync(ClientSettings)({
              server: "server:1",
              id: `c${index}`,
              secret,
              shardIndex: String(index),
              shardCount: "2",
              retryBaseDelay: "50ms",
            }),
          ).pipe(Effect.provideService(Transport.Transport, network.endpoint(`c${index}`)))
        const clients = yield* Effect.forkChild(Effect.all([client(0), client(1)], { concurrency: 2 }))
        const report = yield* Fiber.join(server)
        const done = yield* Fiber.join(clients)
        assert.strictEqual(report.rounds.length, 3, JSON.stringify(report.rounds.map((r) => r.excluded)))
        assert.deepStrictEqual(report.rounds[0]?.excluded, [])
        assert.deepStrictEqual(report.rounds[0]?.participants, ["c0", "c1"])
        assert.isAbove(report.rounds[2]!.testAccuracy, report.rounds[0]!.testAccuracy)
        assert.isAbove(report.finalAccuracy, 0.8)
        assert.deepStrictEqual(
          done.map((d) => d.rounds),
          [3, 3],
        )
      }).pipe(
        Effect.scoped,
        Effect.provide(InMemoryTransport.layerNetwork),
        // MNIST is read through Effect's FileSystem: Node's, as the apps' bins provide it.
        Effect.provide(NodeServices.layer),
        Effect.timeout("60 seconds"),
      ),
    90_000,
  )
})
