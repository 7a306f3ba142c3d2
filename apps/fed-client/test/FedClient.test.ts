import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { EventLog } from "@fedguard/app-kit"
import { Connection, InMemoryTransport, Transport } from "@fedguard/transport"
import { Cause, Effect, Exit, Fiber, Logger, Option, Queue } from "effect"
import * as ClientEvent from "../src/ClientEvent.ts"
import * as FedClient from "../src/FedClient.ts"
import { environment, FakeServer, recordEvents, settingsOf, softmaxParams, startClient } from "./support/FakeServer.ts"

describe("FedClient", () => {
  it.effect(
    "joins, trains each round and completes with the server's final word; its log is only client events",
    () => {
      const lines: Array<string> = []
      const captured = Logger.layer([Logger.map(EventLog.formatter, (line) => lines.push(line))])
      return Effect.gen(function* () {
        const server = yield* FakeServer
        const events = yield* recordEvents
        const client = yield* startClient(settingsOf())
        const peer = yield* server.nextPeer
        yield* peer.welcomeClient("n1")
        yield* peer.sendModel(1, softmaxParams(1))
        yield* Connection.collectBytes(yield* Queue.take(peer.transfers), 1 << 20)
        yield* events.next("RoundTrained")
        yield* peer.send({ _tag: "training-completed", finalAccuracy: 0.91, rounds: 1 })
        const done = yield* Fiber.join(client)
        assert.deepStrictEqual(
          { finalAccuracy: done.finalAccuracy, rounds: done.rounds },
          { finalAccuracy: 0.91, rounds: 1 },
        )
        // The client let go of the connection once done.
        yield* peer.connection.closed
        const logged = lines.map((line) => ClientEvent.fromLine(line))
        assert.isTrue(logged.every(Option.isSome), `every line is a client event:\n${lines.join("\n")}`)
        assert.deepStrictEqual(
          logged.map((event) => Option.getOrThrow(event)._tag),
          ["Joined", "RoundTrained", "TrainingCompleted"],
        )
      }).pipe(Effect.scoped, Effect.provide(environment), Effect.provide(captured))
    },
  )

  it.live(
    "run needs a Transport and a file system: it loads the MNIST shard itself, then gives up on a silent address",
    () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const exit = yield* FedClient.run(settingsOf({ maxRetries: "1", retryBaseDelay: "10ms" })).pipe(
          Effect.provideService(Transport.Transport, network.endpoint("c0")),
          Effect.provide(NodeServices.layer),
          Effect.exit,
        )
        assert.isTrue(Exit.isFailure(exit))
        assert.match(
          String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""),
          /gave up on server:1 after 2 attempts/,
        )
      }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )
})
