import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Scope, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Connection from "../src/Connection.ts"
import * as Envelope from "../src/Envelope.ts"
import type { Frame } from "../src/Frame.ts"
import * as InMemoryTransport from "../src/InMemoryTransport.ts"
import { ConnectionClosed, type TransportError } from "../src/TransportError.ts"
import {
  awaitOrFail,
  connectPair,
  failureOf,
  guarded,
  isRunning,
  joinOrFail,
  nextMessage,
  nextTransfer,
  payload,
  scriptedLink,
  settle,
} from "./fixtures.ts"

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

describe("Connection", () => {
  describe("messages", () => {
    it.effect("delivers messages in the order they were sent, in both directions", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        for (let i = 0; i < 100; i++) {
          yield* client.send(Envelope.make("up", i))
          yield* server.send(Envelope.make("down", -i))
        }
        const atServer = yield* guarded(server.inbound.pipe(Stream.take(100), Stream.runCollect))
        const atClient = yield* guarded(client.inbound.pipe(Stream.take(100), Stream.runCollect))
        const bodies = (items: ReadonlyArray<Connection.Inbound>) =>
          items.map((item) => (item._tag === "Message" ? item.envelope.body : "not a message"))
        assert.deepStrictEqual(
          bodies(atServer),
          Array.from({ length: 100 }, (_, i) => i),
        )
        assert.deepStrictEqual(
          bodies(atClient),
          Array.from({ length: 100 }, (_, i) => -i),
        )
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("loses no message when the inbound stream is read one item at a time", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        yield* client.send(Envelope.make("join", { id: "c-1" }))
        yield* client.send(Envelope.make("ready", 1))
        yield* client.send(Envelope.make("ready", 2))
        yield* settle
        // A handshake reads the first message, then hands the stream to the session loop.
        assert.strictEqual((yield* nextMessage(server)).tag, "join")
        assert.deepStrictEqual((yield* nextMessage(server)).body, 1)
        assert.deepStrictEqual((yield* nextMessage(server)).body, 2)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect(
      "delivers a message while a byte stream has the window full (control lane is never queued behind bulk)",
      () =>
        Effect.gen(function* () {
          const { client, server } = yield* connectPair()
          const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(50_000))))
          const transfer = yield* nextTransfer(server)
          yield* settle
          assert.strictEqual((yield* client.stats).bytesOut, 4096)
          yield* client.send(Envelope.make("heartbeat"))
          assert.strictEqual((yield* nextMessage(server)).tag, "heartbeat")
          assert.isTrue(yield* isRunning(sending))
          yield* guarded(transfer.bytes.pipe(Stream.runDrain))
          assert.strictEqual((yield* joinOrFail(sending)).bytes, 50_000)
        }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("counts frames and payload bytes in both directions", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        yield* client.send(Envelope.make("hello"))
        yield* nextMessage(server)
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(3000))))
        const transfer = yield* nextTransfer(server)
        yield* guarded(Connection.collectBytes(transfer, 10_000))
        yield* joinOrFail(sending)
        const sent = yield* client.stats
        const received = yield* server.stats
        // message + open + 3 chunks + end, and 3 acks back
        assert.deepStrictEqual(sent, { framesOut: 6, bytesOut: 3000, framesIn: 3, bytesIn: 0 })
        assert.deepStrictEqual(received, { framesIn: 6, bytesIn: 3000, framesOut: 3, bytesOut: 0 })
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("byte streams", () => {
    it.effect("delivers exactly the bytes sent, cut into chunks of at most chunkBytes", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const pieces = [payload(3000), payload(1, 1), payload(5000, 2), payload(1999, 3)]
        const sending = yield* Effect.forkChild(
          client.sendBytes({ tag: "update", meta: { round: 4 }, totalBytes: 10_000 }, Stream.fromIterable(pieces)),
        )
        const transfer = yield* nextTransfer(server)
        assert.strictEqual(transfer.tag, "update")
        assert.deepStrictEqual(transfer.meta, { round: 4 })
        assert.strictEqual(transfer.totalBytes, 10_000)
        const chunks = yield* guarded(transfer.bytes.pipe(Stream.runCollect))
        assert.isTrue(chunks.every((chunk) => chunk.byteLength > 0 && chunk.byteLength <= 1024))
        assert.deepStrictEqual(concat(chunks), concat(pieces))
        const receipt = yield* joinOrFail(sending)
        assert.deepStrictEqual(receipt, { id: transfer.id, bytes: 10_000, chunks: 3 + 1 + 5 + 2 })
        assert.strictEqual(chunks.length, receipt.chunks)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("announces an unknown size as null and completes an empty stream", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "empty" }, Stream.empty))
        const transfer = yield* nextTransfer(server)
        assert.isNull(transfer.totalBytes)
        assert.isNull(transfer.meta)
        assert.deepStrictEqual(yield* guarded(transfer.bytes.pipe(Stream.runCollect)), [])
        assert.deepStrictEqual(yield* joinOrFail(sending), { id: transfer.id, bytes: 0, chunks: 0 })
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("reports every advance of the acknowledged offset, strictly increasing and ending at the total", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const acked: Array<number> = []
        const sending = yield* Effect.forkChild(
          client.sendBytes({ tag: "blob" }, Stream.make(payload(10_000)), {
            onProgress: (n) => Effect.sync(() => acked.push(n)),
          }),
        )
        const transfer = yield* nextTransfer(server)
        yield* settle
        // Nothing is acknowledged before the receiver consumes it.
        assert.deepStrictEqual(acked, [])
        yield* guarded(transfer.bytes.pipe(Stream.runDrain))
        yield* joinOrFail(sending)
        assert.isAbove(acked.length, 1)
        for (let i = 1; i < acked.length; i++) assert.isAbove(acked[i]!, acked[i - 1]!)
        assert.strictEqual(acked[0], 1024)
        assert.strictEqual(acked.at(-1), 10_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("ignores a stale or repeated ack instead of moving progress backwards", () =>
      Effect.gen(function* () {
        const acked: Array<number> = []
        const { link, written, inject } = yield* scriptedLink
        const connection = yield* Connection.make(link, { chunkBytes: 1000, windowBytes: 10_000 })
        const sending = yield* Effect.forkChild(
          connection.sendBytes({ tag: "blob" }, Stream.make(payload(3000)), {
            onProgress: (n) => Effect.sync(() => acked.push(n)),
          }),
        )
        yield* settle
        assert.strictEqual(written.filter((frame) => frame._tag === "Chunk").length, 3)
        yield* inject({ _tag: "Ack", id: 1, offset: 2000 })
        yield* inject({ _tag: "Ack", id: 1, offset: 1000 })
        yield* inject({ _tag: "Ack", id: 1, offset: 2000 })
        yield* settle
        assert.isTrue(yield* isRunning(sending))
        yield* inject({ _tag: "Ack", id: 1, offset: 3000 })
        yield* joinOrFail(sending)
        assert.deepStrictEqual(acked, [2000, 3000])
      }),
    )
  })

  describe("flow control", () => {
    it.effect("stops a sender at windowBytes while the receiver does not pull, and completes once it does", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        for (const step of ["1 second", "1 minute", "1 hour"] as const) {
          yield* TestClock.adjust(step)
          assert.strictEqual((yield* client.stats).bytesOut, 4096, `after ${step}`)
          assert.strictEqual((yield* server.stats).bytesIn, 4096, `after ${step}`)
          assert.isTrue(yield* isRunning(sending), `after ${step}`)
        }
        const received = yield* guarded(Connection.collectBytes(transfer, 1 << 20))
        assert.deepStrictEqual(received, payload(20_000))
        assert.strictEqual((yield* joinOrFail(sending)).bytes, 20_000)
        assert.strictEqual((yield* client.stats).bytesOut, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("keeps memory bounded: 64 MiB through a 256 KiB window never buffers more than the window", () =>
      Effect.gen(function* () {
        const chunkBytes = 64 * 1024
        const windowBytes = 256 * 1024
        const options = { chunkBytes, windowBytes, maxBufferedBytes: windowBytes }
        const { client, server } = yield* connectPair({ client: options, server: options })
        const block = payload(chunkBytes)
        const blocks = 1024 // 64 MiB of one reused buffer: the source holds 64 KiB whatever the total
        const sending = yield* Effect.forkChild(
          client.sendBytes(
            { tag: "model", totalBytes: blocks * chunkBytes },
            Stream.range(1, blocks).pipe(Stream.map(() => block)),
          ),
        )
        const transfer = yield* nextTransfer(server)
        let consumed = 0
        let chunks = 0
        let maxBuffered = 0
        let maxInFlight = 0
        yield* guarded(
          transfer.bytes.pipe(
            Stream.runForEach((chunk) =>
              Effect.gen(function* () {
                // Bytes that reached the receiver but that it had not consumed, counting this chunk.
                maxBuffered = Math.max(maxBuffered, (yield* server.stats).bytesIn - consumed)
                consumed += chunk.byteLength
                chunks++
                maxInFlight = Math.max(maxInFlight, (yield* client.stats).bytesOut - consumed + chunk.byteLength)
                // A slow consumer: the sender gets every chance to run ahead.
                yield* settle
              }),
            ),
          ),
          "60 seconds",
        )
        const receipt = yield* joinOrFail(sending)
        assert.strictEqual(receipt.bytes, 64 * 1024 * 1024)
        assert.strictEqual(consumed, 64 * 1024 * 1024)
        assert.strictEqual(chunks, blocks)
        assert.isAtMost(maxBuffered, windowBytes)
        assert.isAtMost(maxInFlight, windowBytes)
        // The window was actually used: the bound is what held the sender back.
        assert.strictEqual(maxBuffered, windowBytes)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect(
      "holds a sender at its window while the receiver does not pull, with no timeout of its own, until the link closes",
      () =>
        Effect.gen(function* () {
          const { client, server } = yield* connectPair()
          const acked: Array<number> = []
          const sending = yield* Effect.forkChild(
            client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000)), {
              onProgress: (offset) => Effect.sync(() => acked.push(offset)),
            }),
          )
          yield* nextTransfer(server)
          yield* settle
          // Bounding this wait is the AckProgressWatchdog's job (@fedguard/stall-guard), not the connection's.
          yield* TestClock.adjust("1 hour")
          assert.isTrue(yield* isRunning(sending))
          assert.deepStrictEqual(acked, [])
          assert.strictEqual((yield* client.stats).bytesOut, 4096)
          yield* server.close("receiver gone")
          failureOf(yield* awaitOrFail(sending), "ConnectionClosed")
        }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("aborts the transfer of a sender whose window exceeds the receiver's maxBufferedBytes", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair({
          client: { chunkBytes: 1024, windowBytes: 8192 },
          server: { chunkBytes: 1024, windowBytes: 1024, maxBufferedBytes: 2048 },
        })
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        const error = failureOf(yield* awaitOrFail(sending), "Rejected")
        assert.include(error.reason, "2048")
        const received = yield* guarded(transfer.bytes.pipe(Stream.runDrain, Effect.exit))
        assert.include(failureOf(received, "ConnectionClosed").reason, "exceeded")
        // Only that transfer is cut off: the connection still carries messages.
        yield* client.send(Envelope.make("still-here"))
        assert.strictEqual((yield* nextMessage(server)).tag, "still-here")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("lets a sender whose window fits the receiver's maxBufferedBytes wait instead of being cut off", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair({
          client: { chunkBytes: 1024, windowBytes: 2048 },
          server: { chunkBytes: 1024, windowBytes: 1024, maxBufferedBytes: 2048 },
        })
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        yield* TestClock.adjust("1 minute")
        assert.isTrue(yield* isRunning(sending))
        assert.strictEqual((yield* server.stats).bytesIn, 2048)
        assert.deepStrictEqual(yield* guarded(Connection.collectBytes(transfer, 1 << 20)), payload(20_000))
        assert.strictEqual((yield* joinOrFail(sending)).bytes, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("acknowledgements", () => {
    const acksIn = (written: ReadonlyArray<Frame>) =>
      written.flatMap((frame) => (frame._tag === "Ack" ? [frame.offset] : []))
    const chunk = (offset: number, size: number): Frame => ({
      _tag: "Chunk",
      id: 1,
      offset,
      bytes: payload(size, offset),
    })

    it.effect("acknowledges once a quarter window is consumed, not every chunk, and the last byte at once", () =>
      Effect.gen(function* () {
        const options = { chunkBytes: 1024, windowBytes: 8192, maxBufferedBytes: 8192 }
        const { client, server } = yield* connectPair({ client: options, server: options })
        const acked: Array<number> = []
        const sending = yield* Effect.forkChild(
          client.sendBytes({ tag: "blob" }, Stream.make(payload(10_000)), {
            onProgress: (n) => Effect.sync(() => acked.push(n)),
          }),
        )
        const transfer = yield* nextTransfer(server)
        yield* guarded(transfer.bytes.pipe(Stream.runDrain))
        assert.strictEqual((yield* joinOrFail(sending)).chunks, 10)
        assert.deepStrictEqual(acked, [2048, 4096, 6144, 8192, 10_000])
        assert.strictEqual((yield* server.stats).framesOut, 5)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("acknowledges every chunk of a sender that announced no ackBytes (a peer from before 0.2)", () =>
      Effect.gen(function* () {
        const { link, written, inject } = yield* scriptedLink
        const connection = yield* Connection.make(link)
        yield* inject({ _tag: "StreamOpen", id: 1, tag: "blob", meta: null, totalBytes: 3000 })
        for (const offset of [0, 1000, 2000]) yield* inject(chunk(offset, 1000))
        yield* inject({ _tag: "StreamEnd", id: 1, totalBytes: 3000 })
        const transfer = yield* nextTransfer(connection)
        yield* guarded(transfer.bytes.pipe(Stream.runDrain))
        yield* settle
        assert.deepStrictEqual(acksIn(written), [1000, 2000, 3000])
      }),
    )

    it.effect("acknowledges a slow consumer every 20 ms below ackBytes, and not sooner", () =>
      Effect.gen(function* () {
        const { link, written, inject } = yield* scriptedLink
        const connection = yield* Connection.make(link)
        yield* inject({ _tag: "StreamOpen", id: 1, tag: "blob", meta: null, totalBytes: null, ackBytes: 1 << 20 })
        for (const offset of [0, 1000, 2000]) yield* inject(chunk(offset, 1000))
        const transfer = yield* nextTransfer(connection)
        const takeOne = guarded(transfer.bytes.pipe(Stream.take(1), Stream.runDrain)).pipe(Effect.andThen(settle))
        yield* takeOne
        yield* TestClock.adjust("19 millis")
        yield* takeOne
        assert.deepStrictEqual(acksIn(written), [])
        yield* TestClock.adjust("1 millis")
        yield* takeOne
        assert.deepStrictEqual(acksIn(written), [3000])
      }),
    )

    it.effect("acknowledges the rest when the end marker arrives after the consumer took every byte", () =>
      Effect.gen(function* () {
        const { link, written, inject } = yield* scriptedLink
        const connection = yield* Connection.make(link)
        yield* inject({ _tag: "StreamOpen", id: 1, tag: "blob", meta: null, totalBytes: null, ackBytes: 1 << 20 })
        for (const offset of [0, 1000]) yield* inject(chunk(offset, 1000))
        const transfer = yield* nextTransfer(connection)
        const collecting = yield* Effect.forkChild(Connection.collectBytes(transfer, 1 << 20))
        yield* settle
        // Everything received is consumed, but below ackBytes: the sender hears nothing yet.
        assert.deepStrictEqual(acksIn(written), [])
        yield* inject({ _tag: "StreamEnd", id: 1, totalBytes: 2000 })
        assert.strictEqual((yield* joinOrFail(collecting)).byteLength, 2000)
        assert.deepStrictEqual(acksIn(written), [2000])
      }),
    )

    it.effect("asks for acks at most windowBytes - chunkBytes apart, so a sender held at its window is released", () =>
      Effect.gen(function* () {
        const { link, written } = yield* scriptedLink
        const connection = yield* Connection.make(link, { chunkBytes: 1024, windowBytes: 3072, ackBytes: 1 << 30 })
        yield* Effect.forkChild(connection.sendBytes({ tag: "blob" }, Stream.make(payload(10_000))))
        yield* settle
        const open = written[0]
        assert.strictEqual(open?._tag, "StreamOpen")
        if (open?._tag === "StreamOpen") assert.strictEqual(open.ackBytes, 2048)
      }),
    )

    it.effect("completes a stream whose sender asked for acks less often than its window allows", () =>
      Effect.gen(function* () {
        const options = { chunkBytes: 1024, windowBytes: 2048, ackBytes: 1 << 30 }
        const { client, server } = yield* connectPair({ client: options })
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const received = yield* guarded(Connection.collectBytes(yield* nextTransfer(server), 1 << 20))
        assert.deepStrictEqual(received, payload(20_000))
        assert.strictEqual((yield* joinOrFail(sending)).bytes, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("aborts", () => {
    it.effect("fails the sender with Rejected when the receiver aborts, and keeps the connection open", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        yield* transfer.abort("not expecting a model now")
        const error = failureOf(yield* awaitOrFail(sending), "Rejected")
        assert.include(error.reason, "not expecting a model now")
        assert.isTrue(yield* client.isOpen)
        const again = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(100))))
        yield* guarded(Connection.collectBytes(yield* nextTransfer(server), 1000))
        assert.strictEqual((yield* joinOrFail(again)).bytes, 100)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails the receiver's byte stream when the sender is interrupted", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        yield* settle
        yield* Fiber.interrupt(sending)
        const received = yield* guarded(transfer.bytes.pipe(Stream.runCollect, Effect.exit))
        assert.include(failureOf(received, "ConnectionClosed").reason, "aborted by sender")
        assert.isTrue(yield* server.isOpen)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails the send with the data stream's own error and aborts the receiver's stream", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const data = Stream.make(payload(1000)).pipe(Stream.concat(Stream.fail("disk read failed" as const)))
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, data))
        const transfer = yield* nextTransfer(server)
        const sent = yield* awaitOrFail(sending)
        assert.deepStrictEqual(sent.pipe(Exit.findErrorOption, Option.getOrUndefined), "disk read failed")
        const received = yield* guarded(transfer.bytes.pipe(Stream.runDrain, Effect.exit))
        assert.include(failureOf(received, "ConnectionClosed").reason, "sender gave up")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails collectBytes past its bound and aborts the sender, but collects a stream within it", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        const big = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const collected = yield* guarded(Effect.exit(Connection.collectBytes(yield* nextTransfer(server), 2048)))
        assert.strictEqual(failureOf(collected, "DecodeError").path, "size")
        failureOf(yield* awaitOrFail(big), "Rejected")
        const fits = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(2048))))
        assert.deepStrictEqual(
          yield* guarded(Connection.collectBytes(yield* nextTransfer(server), 2048)),
          payload(2048),
        )
        yield* joinOrFail(fits)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("tells apart two streams with the same id flowing in opposite directions", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        // Ids are per sender: both of these are stream 1.
        const upload = yield* Effect.forkChild(client.sendBytes({ tag: "update" }, Stream.make(payload(20_000))))
        const model = yield* Effect.forkChild(server.sendBytes({ tag: "model" }, Stream.make(payload(20_000, 5))))
        const incomingUpload = yield* nextTransfer(server)
        const incomingModel = yield* nextTransfer(client)
        assert.strictEqual(incomingUpload.id, incomingModel.id)
        yield* settle
        // The client gives up its upload: only the upload is aborted, not the server's model.
        yield* Fiber.interrupt(upload)
        const uploaded = yield* guarded(incomingUpload.bytes.pipe(Stream.runDrain, Effect.exit))
        assert.include(failureOf(uploaded, "ConnectionClosed").reason, "aborted by sender")
        assert.isTrue(yield* isRunning(model))
        assert.deepStrictEqual(yield* guarded(Connection.collectBytes(incomingModel, 1 << 20)), payload(20_000, 5))
        assert.strictEqual((yield* joinOrFail(model)).bytes, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })

  describe("closing and breaking", () => {
    it.effect("ends the peer's inbound after delivering everything sent before a graceful close", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        for (const n of [1, 2, 3]) yield* client.send(Envelope.make("update", n))
        yield* client.close("training finished")
        const items = yield* guarded(server.inbound.pipe(Stream.runCollect))
        assert.deepStrictEqual(
          items.map((item) => (item._tag === "Message" ? item.envelope.body : null)),
          [1, 2, 3],
        )
        assert.strictEqual(yield* server.closed, "closed by peer: training finished")
        assert.isFalse(yield* server.isOpen)
        // The closing side's own inbound ends too: closing is not an error.
        assert.isFalse(yield* client.isOpen)
        assert.strictEqual(yield* client.closed, "closed locally: training finished")
        assert.deepStrictEqual(yield* guarded(client.inbound.pipe(Stream.runCollect)), [])
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails the inbound stream with ConnectionClosed when the connection breaks abruptly", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        yield* client.send(Envelope.make("before"))
        yield* settle
        yield* network.kill("client")
        // What had arrived is still delivered, then the failure.
        assert.strictEqual((yield* nextMessage(server)).tag, "before")
        const rest = yield* guarded(server.inbound.pipe(Stream.runDrain, Effect.exit))
        assert.include(failureOf(rest, "ConnectionClosed").reason, "client was killed")
        const own = yield* guarded(client.inbound.pipe(Stream.runDrain, Effect.exit))
        failureOf(own, "ConnectionClosed")
        assert.isFalse(yield* server.isOpen)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails sends after close with ConnectionClosed on both sides, and not before", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair()
        yield* client.send(Envelope.make("ok"))
        yield* server.send(Envelope.make("ok"))
        yield* client.close()
        yield* guarded(server.closed)
        for (const connection of [client, server]) {
          failureOf(yield* Effect.exit(connection.send(Envelope.make("late"))), "ConnectionClosed")
          const late = yield* Effect.exit(connection.sendBytes({ tag: "late" }, Stream.make(payload(10))))
          failureOf(late, "ConnectionClosed")
        }
        // Closing again is harmless.
        yield* client.close()
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails a transfer in progress with ConnectionClosed on both ends when the connection breaks", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair()
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        const transfer = yield* nextTransfer(server)
        yield* settle
        yield* network.kill("server")
        failureOf(yield* awaitOrFail(sending), "ConnectionClosed")
        failureOf(yield* guarded(transfer.bytes.pipe(Stream.runDrain, Effect.exit)), "ConnectionClosed")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect(
      "closes the connection when the Scope it was opened in closes; without a close frame the peer sees a break",
      () =>
        Effect.gen(function* () {
          const network = yield* InMemoryTransport.InMemoryNetwork
          const listener = yield* network.endpoint("server").listen("server")
          const scope = yield* Scope.make()
          const client = yield* network.endpoint("client").connect("server").pipe(Scope.provide(scope))
          const server = yield* guarded(Stream.runHead(listener.connections)).pipe(Effect.map(Option.getOrThrow))
          assert.isTrue(yield* client.isOpen)
          yield* Scope.close(scope, Exit.void)
          assert.isFalse(yield* client.isOpen)
          assert.deepStrictEqual(yield* guarded(client.inbound.pipe(Stream.runCollect)), [])
          const atServer = yield* guarded(server.inbound.pipe(Stream.runDrain, Effect.exit))
          assert.include(failureOf(atServer, "ConnectionClosed").reason, "without a close frame")
          assert.isFalse(yield* server.isOpen)
        }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("fails a sender blocked behind a full bulk lane when the link breaks, instead of hanging", () =>
      Effect.gen(function* () {
        // A socket that accepts one chunk, then blocks (its buffer is full), then breaks.
        const broken = yield* Deferred.make<void, TransportError>()
        let chunksWritten = 0
        const link: Connection.Link = {
          remote: "peer",
          write: (frame) => (frame._tag === "Chunk" && chunksWritten++ >= 1 ? Deferred.await(broken) : Effect.void),
          read: Stream.never,
          close: Effect.void,
        }
        const connection = yield* Connection.make(link, { chunkBytes: 1024, windowBytes: 64 * 1024 })
        const sending = yield* Effect.forkChild(connection.sendBytes({ tag: "blob" }, Stream.make(payload(20_000))))
        yield* settle
        assert.isTrue(yield* isRunning(sending))
        yield* Deferred.fail(broken, new ConnectionClosed({ peer: "peer", reason: "socket reset" }))
        assert.include(failureOf(yield* awaitOrFail(sending), "ConnectionClosed").reason, "socket reset")
        assert.isFalse(yield* connection.isOpen)
      }),
    )
  })
})
