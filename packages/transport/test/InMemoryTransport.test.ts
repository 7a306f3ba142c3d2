import { assert, describe, it } from "@effect/vitest"
import { Clock, Effect, Exit, Layer, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Connection from "../src/Connection.ts"
import * as Envelope from "../src/Envelope.ts"
import * as InMemoryTransport from "../src/InMemoryTransport.ts"
import { Transport } from "../src/Transport.ts"
import {
  accept,
  connectPair,
  failureOf,
  guarded,
  isRunning,
  joinOrFail,
  nextMessage,
  nextTransfer,
  payload,
  settle,
} from "./fixtures.ts"

const bodyOf = (item: Connection.Inbound) => (item._tag === "Message" ? item.envelope.body : `a ${item._tag}`)

/** Records each inbound item of a connection with the time it arrived, in a background fiber. */
const recordArrivals = (connection: Connection.Connection) =>
  Effect.gen(function* () {
    const arrivals: Array<{ readonly at: number; readonly body: unknown }> = []
    yield* Effect.forkChild(
      connection.inbound.pipe(
        Stream.runForEach((item) =>
          Clock.currentTimeMillis.pipe(
            Effect.flatMap((at) => Effect.sync(() => arrivals.push({ at, body: bodyOf(item) }))),
          ),
        ),
      ),
    )
    return arrivals
  })

/** Which of 50 numbered messages survive a drop rule, on a fresh network. */
const survivors = (probability: number, seed: number) =>
  Effect.gen(function* () {
    const { network, client, server } = yield* connectPair()
    yield* network.drop("client", "server", probability, seed)
    for (let i = 0; i < 50; i++) yield* client.send(Envelope.make("n", i))
    yield* client.close()
    const items = yield* guarded(server.inbound.pipe(Stream.runCollect))
    return items.map(bodyOf)
  }).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork))

const all = Array.from({ length: 50 }, (_, i) => i)

describe("InMemoryTransport", () => {
  describe("drop", () => {
    it.effect("loses the same messages for the same seed, and others for another seed", () =>
      Effect.gen(function* () {
        const first = yield* survivors(0.5, 42)
        const again = yield* survivors(0.5, 42)
        const other = yield* survivors(0.5, 7)
        assert.deepStrictEqual(again, first)
        assert.notDeepEqual(other, first)
        assert.isAbove(first.length, 5)
        assert.isBelow(first.length, 45)
        // Survivors keep their order.
        assert.deepStrictEqual(
          first,
          [...first].sort((a, b) => Number(a) - Number(b)),
        )
      }),
    )

    it.effect("loses nothing with probability 0 and every message with probability 1", () =>
      Effect.gen(function* () {
        assert.deepStrictEqual(yield* survivors(0, 1), all)
        assert.deepStrictEqual(yield* survivors(1, 1), [])
      }),
    )

    it.effect("never drops chunks, nor messages in the other direction", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* network.drop("client", "server", 1, 1)
        yield* client.send(Envelope.make("lost"))
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(10_000))))
        // The message is gone: the first thing to arrive is the byte stream.
        const transfer = yield* nextTransfer(server)
        assert.deepStrictEqual(yield* guarded(Connection.collectBytes(transfer, 1 << 20)), payload(10_000))
        assert.strictEqual((yield* joinOrFail(sending)).bytes, 10_000)
        yield* server.send(Envelope.make("reply"))
        assert.strictEqual((yield* nextMessage(client)).tag, "reply")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("delay", () => {
    it.effect("delivers a message written at t at t + delay, not a millisecond earlier, in order", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* network.delay("client", "server", "100 millis")
        const arrivals = yield* recordArrivals(server)
        yield* client.send(Envelope.make("n", 1))
        yield* TestClock.adjust("30 millis")
        yield* client.send(Envelope.make("n", 2))
        yield* TestClock.adjust("69 millis")
        yield* settle
        assert.deepStrictEqual(arrivals, [])
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.deepStrictEqual(arrivals, [{ at: 100, body: 1 }])
        yield* TestClock.adjust("29 millis")
        yield* settle
        assert.strictEqual(arrivals.length, 1)
        yield* TestClock.adjust("1 millis")
        yield* settle
        assert.deepStrictEqual(arrivals, [
          { at: 100, body: 1 },
          { at: 130, body: 2 },
        ])
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("never lets a message written later with a shorter delay overtake an earlier one", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        const arrivals = yield* recordArrivals(server)
        yield* network.delay("client", "server", "100 millis")
        yield* client.send(Envelope.make("n", 1))
        yield* settle // written to the wire under the 100 ms delay
        yield* network.delay("client", "server", "10 millis")
        yield* client.send(Envelope.make("n", 2))
        yield* TestClock.adjust("50 millis")
        yield* settle
        assert.deepStrictEqual(arrivals, [])
        yield* TestClock.adjust("50 millis")
        yield* settle
        assert.deepStrictEqual(
          arrivals.map((arrival) => arrival.body),
          [1, 2],
        )
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("delays only the direction it was set on", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* network.delay("client", "server", "1 hour")
        const arrivals = yield* recordArrivals(client)
        yield* server.send(Envelope.make("n", 1))
        yield* settle
        assert.deepStrictEqual(arrivals, [{ at: 0, body: 1 }])
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("partition", () => {
    it.effect(
      "lets nothing cross a partition, then delivers everything in order after heal; other pairs unaffected",
      () =>
        Effect.gen(function* () {
          const network = yield* InMemoryTransport.InMemoryNetwork
          const listener = yield* network.endpoint("server").listen("server")
          const a = yield* network.endpoint("a").connect("server")
          const serverA = yield* accept(listener)
          const b = yield* network.endpoint("b").connect("server")
          const serverB = yield* accept(listener)
          const atServerFromA = yield* recordArrivals(serverA)
          const atA = yield* recordArrivals(a)

          yield* network.partition("a", "server")
          for (const n of [1, 2, 3]) yield* a.send(Envelope.make("n", n))
          yield* serverA.send(Envelope.make("n", -1))
          yield* b.send(Envelope.make("from-b"))
          assert.strictEqual((yield* nextMessage(serverB)).tag, "from-b")
          yield* TestClock.adjust("1 hour")
          yield* settle
          assert.deepStrictEqual(atServerFromA, [])
          assert.deepStrictEqual(atA, [])

          yield* network.heal("server", "a")
          yield* settle
          assert.deepStrictEqual(
            atServerFromA.map((arrival) => arrival.body),
            [1, 2, 3],
          )
          assert.deepStrictEqual(
            atA.map((arrival) => arrival.body),
            [-1],
          )
        }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("stall", () => {
    it.effect("fills a sender's window while its receiver is stalled, and completes the transfer after resume", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* network.stall("server")
        const receiving = yield* Effect.forkChild(
          Stream.runHead(server.inbound).pipe(
            Effect.flatMap((head) =>
              head._tag === "Some" && head.value._tag === "Transfer"
                ? Connection.collectBytes(head.value.transfer, 1 << 20)
                : Effect.die(new Error("expected a transfer")),
            ),
          ),
        )
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        yield* TestClock.adjust("1 minute")
        assert.strictEqual((yield* client.stats).bytesOut, 4096)
        assert.strictEqual((yield* server.stats).bytesIn, 0)
        assert.isTrue(yield* isRunning(sending))
        // A stalled peer still sends: only what is sent to it waits.
        yield* server.send(Envelope.make("still-talking"))
        assert.strictEqual((yield* nextMessage(client)).tag, "still-talking")

        yield* network.resume("server")
        assert.deepStrictEqual(yield* joinOrFail(receiving), payload(20_000))
        assert.strictEqual((yield* joinOrFail(sending)).bytes, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("kill and revive", () => {
    it.effect("breaks every connection of a killed endpoint on both sides with ConnectionClosed", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* network.kill("client")
        const atServer = yield* guarded(server.inbound.pipe(Stream.runDrain, Effect.exit))
        const atClient = yield* guarded(client.inbound.pipe(Stream.runDrain, Effect.exit))
        assert.include(failureOf(atServer, "ConnectionClosed").reason, "client was killed")
        assert.include(failureOf(atClient, "ConnectionClosed").reason, "client was killed")
        failureOf(yield* Effect.exit(client.send(Envelope.make("late"))), "ConnectionClosed")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("refuses connections to and from a killed endpoint until it is revived", () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const listener = yield* network.endpoint("server").listen("server")
        const client = network.endpoint("client")

        yield* network.kill("client")
        const from = yield* Effect.exit(client.connect("server"))
        assert.include(failureOf(from, "PeerUnreachable").reason, "client is killed")
        yield* network.revive("client")

        yield* network.kill("server")
        const to = yield* Effect.exit(client.connect("server"))
        assert.strictEqual(failureOf(to, "PeerUnreachable").peer, "server")
        yield* network.revive("server")

        const connection = yield* client.connect("server")
        const serverSide = yield* accept(listener)
        yield* connection.send(Envelope.make("back"))
        assert.strictEqual((yield* nextMessage(serverSide)).tag, "back")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("does not bring a broken connection back on revive", () =>
      Effect.gen(function* () {
        const { network, client } = yield* connectPair()
        yield* network.kill("server")
        yield* network.revive("server")
        yield* settle
        assert.isFalse(yield* client.isOpen)
        failureOf(yield* Effect.exit(client.send(Envelope.make("late"))), "ConnectionClosed")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("addresses", () => {
    it.effect("fails to connect to an address nobody listens on with PeerUnreachable", () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const exit = yield* Effect.exit(network.endpoint("client").connect("nowhere"))
        const error = failureOf(exit, "PeerUnreachable")
        assert.strictEqual(error.peer, "nowhere")
        assert.include(error.message, "no listener")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("refuses a second listener on the same address while the first is open, and allows it after", () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const scope = yield* Scope.make()
        const first = yield* network.endpoint("server").listen("server").pipe(Scope.provide(scope))
        assert.strictEqual(first.address, "server")
        const twice = yield* Effect.exit(network.endpoint("other").listen("server"))
        assert.include(failureOf(twice, "PeerUnreachable").reason, "already in use")

        yield* Scope.close(scope, Exit.void)
        // The closed listener's stream ends, and nobody accepts on that address any more.
        assert.deepStrictEqual(yield* guarded(first.connections.pipe(Stream.runCollect)), [])
        failureOf(yield* Effect.exit(network.endpoint("client").connect("server")), "PeerUnreachable")
        const second = yield* network.endpoint("other").listen("server")
        yield* network.endpoint("client").connect("server")
        assert.strictEqual((yield* accept(second)).remote, "client")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("accepts several connections and hands them out one at a time, none lost", () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const listener = yield* network.endpoint("server").listen("server")
        for (const name of ["a", "b", "c"]) yield* network.endpoint(name).connect("server")
        assert.strictEqual((yield* accept(listener)).remote, "a")
        assert.strictEqual((yield* accept(listener)).remote, "b")
        assert.strictEqual((yield* accept(listener)).remote, "c")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("gives each side of a connection its own endpoint's options", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair({
          client: { chunkBytes: 1000, windowBytes: 1000 },
          server: { chunkBytes: 300, windowBytes: 600 },
        })
        const up = yield* Effect.forkChild(client.sendBytes({ tag: "up" }, Stream.make(payload(3000))))
        const down = yield* Effect.forkChild(server.sendBytes({ tag: "down" }, Stream.make(payload(3000))))
        const upChunks = yield* guarded((yield* nextTransfer(server)).bytes.pipe(Stream.runCollect))
        const downChunks = yield* guarded((yield* nextTransfer(client)).bytes.pipe(Stream.runCollect))
        assert.deepStrictEqual(
          upChunks.map((chunk) => chunk.byteLength),
          [1000, 1000, 1000],
        )
        assert.deepStrictEqual(
          downChunks.map((chunk) => chunk.byteLength),
          Array.from({ length: 10 }, () => 300),
        )
        yield* joinOrFail(up)
        yield* joinOrFail(down)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("provides an endpoint as the Transport service through layer(name)", () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const listener = yield* network.endpoint("server").listen("server")
        const transport = yield* Transport
        const connection = yield* transport.connect("server")
        yield* connection.send(Envelope.make("via-layer"))
        const serverSide = yield* accept(listener)
        assert.strictEqual(serverSide.remote, "client")
        assert.strictEqual((yield* nextMessage(serverSide)).tag, "via-layer")
      }).pipe(
        Effect.provide(InMemoryTransport.layer("client").pipe(Layer.provideMerge(InMemoryTransport.layerNetwork))),
      ),
    )
  })
})
