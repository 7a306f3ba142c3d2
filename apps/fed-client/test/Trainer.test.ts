import { assert, describe, it } from "@effect/vitest"
import { Protocol } from "@fedguard/federation"
import { type Connection, InMemoryTransport, Transport } from "@fedguard/transport"
import { Effect, Exit, Fiber, Option, Queue, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import { ClientSettings } from "../src/ClientSettings.ts"
import * as Trainer from "../src/Trainer.ts"

const settings = Schema.decodeUnknownSync(ClientSettings)({
  server: "server:1",
  id: "c0",
  secret: "client-test-secret",
  shardIndex: "0",
  shardCount: "2",
  maxRetries: "2",
  retryBaseDelay: "1s",
  retryMaxDelay: "4s",
  joinTimeout: "5s",
})

const welcome: Protocol.Message = {
  _tag: "welcome",
  id: "c0",
  model: "softmax",
  localEpochs: 1,
  batchSize: 10,
  learningRate: 0.05,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 500,
}

/** A scripted server: each accepted connection and the messages it sends, for the test to drive. */
const fakeServer = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const listener = yield* network.endpoint("server").listen("server:1")
  const accepted = yield* Queue.unbounded<Connection.Connection>()
  yield* listener.connections.pipe(
    Stream.runForEach((c) => Queue.offer(accepted, c)),
    Effect.forkScoped,
  )
  const nextConnection = Queue.take(accepted)
  const nextMessage = (connection: Connection.Connection) =>
    connection.inbound.pipe(
      Stream.filter((item) => item._tag === "Message"),
      Stream.mapEffect((item) => Protocol.fromEnvelope(item.envelope, "client")),
      Stream.runHead,
      Effect.map(Option.getOrThrow),
    )
  const send = (connection: Connection.Connection, message: Protocol.Message) =>
    connection.send(Protocol.toEnvelope(message))
  return { network, nextConnection, nextMessage, send, accepted }
})

const runClient = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  return yield* Effect.forkChild(
    Trainer.run(settings).pipe(Effect.provideService(Transport.Transport, network.endpoint("c0"))),
  )
})

describe("fed-client session", () => {
  it.effect("answers the challenge with an HMAC proof, never the secret", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer
      yield* runClient
      const connection = yield* server.nextConnection
      yield* server.send(connection, { _tag: "challenge", nonce: "abc" })
      const join = yield* server.nextMessage(connection)
      assert.strictEqual(join._tag, "join")
      if (join._tag !== "join") return
      assert.strictEqual(join.id, "c0")
      assert.match(join.proof, /^[0-9a-f]{64}$/)
      assert.notInclude(join.proof, "client-test-secret")
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("a refused join ends the client with Rejected and no reconnect", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer
      const client = yield* runClient
      const connection = yield* server.nextConnection
      yield* server.send(connection, { _tag: "challenge", nonce: "abc" })
      yield* server.nextMessage(connection)
      yield* server.send(connection, { _tag: "refused", reason: "unknown client id" })
      const exit = yield* Fiber.await(client)
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /Rejected|unknown client id/)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* Queue.size(server.accepted), 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("beats after the welcome; without acks it declares the server lost and rejoins on a new connection", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer
      const client = yield* runClient
      const first = yield* server.nextConnection
      yield* server.send(first, { _tag: "challenge", nonce: "n1" })
      yield* server.nextMessage(first)
      yield* server.send(first, welcome)
      const beat = yield* server.nextMessage(first)
      assert.strictEqual(beat._tag, "heartbeat")
      // No ack: not lost before the 500 ms peer timeout…
      yield* TestClock.adjust("400 millis")
      assert.strictEqual(yield* Queue.size(server.accepted), 0)
      // …lost after it; the reconnect waits its backoff (1 s), then joins again.
      yield* TestClock.adjust("200 millis")
      assert.strictEqual(yield* Queue.size(server.accepted), 0)
      yield* TestClock.adjust("1 second")
      const second = yield* server.nextConnection
      yield* server.send(second, { _tag: "challenge", nonce: "n2" })
      const rejoin = yield* server.nextMessage(second)
      assert.strictEqual(rejoin._tag, "join")
      yield* server.send(second, welcome)
      yield* server.send(second, { _tag: "training-completed", finalAccuracy: 0.9, rounds: 1 })
      const done = yield* Fiber.join(client)
      assert.strictEqual(done.finalAccuracy, 0.9)
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("acked heartbeats keep the session alive past the peer timeout", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer
      yield* runClient
      const connection = yield* server.nextConnection
      yield* server.send(connection, { _tag: "challenge", nonce: "n1" })
      yield* server.nextMessage(connection)
      yield* server.send(connection, welcome)
      for (let i = 0; i < 20; i++) {
        const beat = yield* server.nextMessage(connection)
        if (beat._tag === "heartbeat") yield* server.send(connection, { _tag: "heartbeat-ack", seq: beat.seq })
        yield* TestClock.adjust("100 millis")
      }
      assert.isTrue(yield* connection.isOpen)
      assert.strictEqual(yield* Queue.size(server.accepted), 0)
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("a server that never welcomes is left after the join timeout, not before, and joined again", () =>
    Effect.gen(function* () {
      const server = yield* fakeServer
      yield* runClient
      const first = yield* server.nextConnection
      yield* server.send(first, { _tag: "challenge", nonce: "n1" })
      yield* server.nextMessage(first)
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(yield* first.isOpen)
      yield* TestClock.adjust("1 millis")
      // First failed session before a welcome: backoff 2 s (base 1 s doubled), then a new connection.
      yield* TestClock.adjust("2 seconds")
      const second = yield* server.nextConnection
      yield* server.send(second, { _tag: "challenge", nonce: "n2" })
      const join = yield* server.nextMessage(second)
      assert.strictEqual(join._tag, "join")
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("gives up after maxRetries failed connects when the server never answers", () =>
    Effect.gen(function* () {
      const network = yield* InMemoryTransport.InMemoryNetwork
      const client = yield* Effect.forkChild(
        Trainer.run(settings).pipe(Effect.provideService(Transport.Transport, network.endpoint("c0"))),
      )
      // The client first loads its shard (real file I/O), then backs off on the TestClock:
      // step virtual time while letting real I/O progress, until it gives up (bounded).
      for (let step = 0; step < 600 && client.pollUnsafe() === undefined; step++) {
        yield* TestClock.withLive(Effect.sleep("5 millis"))
        yield* TestClock.adjust("500 millis")
      }
      const exit = yield* Fiber.await(client)
      assert.isTrue(Exit.isFailure(exit))
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /unreachable after 3 attempts/)
    }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork)),
  )
})
