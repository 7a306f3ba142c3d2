import { assert, describe, it } from "@effect/vitest"
import { ClientSettings } from "@fedguard/fed-client/ClientSettings"
import * as Trainer from "@fedguard/fed-client/Trainer"
import { InMemoryTransport, Transport } from "@fedguard/transport"
import { Deferred, Effect, Fiber, Schema } from "effect"
import * as Server from "../src/Server.ts"
import { ServerSettings } from "../src/ServerSettings.ts"

const secret = "test-secret-123"

describe("federation over the in-memory transport", () => {
  it.live(
    "two clients train three rounds and the global model improves",
    () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const settings = Schema.decodeUnknownSync(ServerSettings)({
          host: "server",
          port: "1",
          expectedClients: "2",
          minClients: "2",
          rounds: "3",
          secret,
        })
        const listening = yield* Deferred.make<void>()
        const server = yield* Effect.forkChild(
          Server.run(settings, () => Deferred.succeed(listening, undefined).pipe(Effect.asVoid)).pipe(
            Effect.provideService(Transport.Transport, network.endpoint("server")),
          ),
        )
        yield* Deferred.await(listening)
        const client = (index: number) =>
          Trainer.run(
            Schema.decodeUnknownSync(ClientSettings)({
              server: "server:1",
              id: `c${index}`,
              secret,
              shardIndex: String(index),
              shardCount: "2",
            }),
          ).pipe(Effect.provideService(Transport.Transport, network.endpoint(`c${index}`)))
        const clients = yield* Effect.forkChild(Effect.all([client(0), client(1)], { concurrency: 2 }))
        const report = yield* Fiber.join(server)
        yield* Fiber.join(clients)
        assert.strictEqual(report.rounds.length, 3)
        assert.deepStrictEqual(report.rounds[0]?.participants, ["c0", "c1"])
        assert.isAbove(report.rounds[2]!.testAccuracy, report.rounds[0]!.testAccuracy)
        assert.isAbove(report.finalAccuracy, 0.8)
      }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork), Effect.timeout("60 seconds")),
    90_000,
  )
})
