/**
 * Bounded sends over real TCP (NVIDIA FLARE PR #4206, fix A): a frame the
 * socket does not accept within `writeTimeout` fails with `SendTimeout` and
 * closes the connection, and the peer sees a clean error, never a frame
 * stream that went out of step. And fix B over real TCP: a peer whose socket
 * reader is paused trips the `AckProgressWatchdog` long before the write
 * bound gives up on the connection.
 */
import type * as Net from "node:net"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { assert, describe, it } from "@effect/vitest"
import { AckProgressWatchdog } from "@fedguard/stall-guard"
import { type Connection, Envelope, type Frame, Transport } from "@fedguard/transport"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Option, Stream } from "effect"
import * as NodeTransport from "../src/NodeTransport.ts"
import * as SocketLink from "../src/SocketLink.ts"
import { patternStream, rawServer } from "./support/fixtures.ts"

const MiB = 1024 * 1024

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

// A raw peer that accepts one connection and does not read it until the test says so.
const pausedPeer = Effect.gen(function* () {
  const accepted = yield* Deferred.make<Net.Socket>()
  const address = yield* rawServer((socket) => Deferred.doneUnsafe(accepted, Exit.succeed(socket)), {
    pauseOnConnect: true,
  })
  return { address, socket: Deferred.await(accepted) }
})

describe("bounded sends over TCP", () => {
  // Frames of 4 MiB: the kernel's loopback buffers take part of one, so the write that times out
  // has put a partial frame on the wire.
  const bigFrames = {
    writeTimeout: "300 millis",
    connectTimeout: "2 seconds",
    closeTimeout: "300 millis",
    maxFrameBytes: 4 * MiB,
    chunkBytes: 4 * MiB - 64,
    windowBytes: 256 * MiB,
    maxBufferedBytes: 256 * MiB,
  } as const

  it.live(
    "closes the connection when a write times out after a partial frame, and the peer reads whole frames then a clean ConnectionClosed",
    () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const peer = yield* pausedPeer
        const client = yield* transport.connect(peer.address)
        const exit = yield* Effect.exit(client.sendBytes({ tag: "update" }, patternStream(256 * MiB, MiB)))
        assert.strictEqual(failureOf(exit)?._tag, "SendTimeout")
        assert.isFalse(yield* client.isOpen)
        const late = yield* Effect.exit(client.send(Envelope.make("late")))
        assert.strictEqual(failureOf(late)?._tag, "ConnectionClosed")

        // Now the peer reads what reached it, through a real SocketLink.
        const raw = yield* peer.socket
        const socket = yield* NodeSocket.fromDuplex(Effect.succeed(raw))
        const link = yield* SocketLink.make(socket, { remote: "client", maxFrameBytes: 4 * MiB })
        const frames: Array<Frame.Frame> = []
        const ending = yield* Effect.exit(
          Stream.runForEach(link.read, (frame) => Effect.sync(() => frames.push(frame))),
        )
        const error = failureOf(ending)
        assert.strictEqual(error?._tag, "ConnectionClosed", String(error))
        assert.strictEqual(frames[0]?._tag, "StreamOpen")
        // Every chunk piece that arrived starts exactly where the previous one ended: in step.
        let offset = 0
        for (const frame of frames.slice(1)) {
          assert.strictEqual(frame._tag, "Chunk")
          if (frame._tag !== "Chunk") continue
          assert.strictEqual(frame.offset, offset)
          offset += frame.bytes.byteLength
        }
        assert.isAbove(offset, 0)
      }).pipe(Effect.provide(NodeTransport.layer(bigFrames)), Effect.timeout("15 seconds")),
  )

  it.live(
    "bounds the blocked write in the link, not around Connection.send: a send is only queued and returns at once",
    () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const peer = yield* pausedPeer
        const client = yield* transport.connect(peer.address)
        const bulk = yield* Effect.forkChild(client.sendBytes({ tag: "update" }, patternStream(256 * MiB, MiB)))
        // Let the bulk lane fill the socket until its write blocks.
        yield* Effect.sleep("100 millis")
        const before = yield* Clock.currentTimeMillis
        yield* client.send(Envelope.make("heartbeat", 1))
        const queuedInMs = (yield* Clock.currentTimeMillis) - before
        // A timeout around `send` would never fire: the connection queues and returns. Only the
        // link's writeTimeout sees the blocked write, and it closes the connection.
        assert.isBelow(queuedInMs, 50)
        assert.isTrue(yield* client.isOpen)
        const exit = yield* Fiber.await(bulk)
        assert.strictEqual(failureOf(exit)?._tag, "SendTimeout")
        assert.isFalse(yield* client.isOpen)
      }).pipe(Effect.provide(NodeTransport.layer(bigFrames)), Effect.timeout("15 seconds")),
  )

  it.live(
    "trips the AckProgressWatchdog on a peer whose socket reader is paused, before the write bound closes the connection",
    () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const peer = yield* pausedPeer
        const client = yield* transport.connect(peer.address)
        const started = yield* Clock.currentTimeMillis
        const exit = yield* Effect.exit(
          AckProgressWatchdog.watch(
            (onProgress) => client.sendBytes({ tag: "update" }, patternStream(64 * MiB), { onProgress }),
            { ackProgressTimeout: "300 millis", checkInterval: "50 millis" },
          ),
        )
        const elapsed = (yield* Clock.currentTimeMillis) - started
        const error = failureOf(exit)
        assert.strictEqual(error?._tag, "AckStalled")
        if (error?._tag === "AckStalled") assert.strictEqual(error.offset, 0)
        assert.isAtLeast(elapsed, 300)
        assert.isBelow(elapsed, 2_000)
        // The 10 s write bound has not given up: the watchdog failed the stream, not the connection.
        assert.isTrue(yield* client.isOpen)
      }).pipe(
        Effect.provide(
          NodeTransport.layer({ writeTimeout: "10 seconds", connectTimeout: "2 seconds", closeTimeout: "300 millis" }),
        ),
        Effect.timeout("15 seconds"),
      ),
  )

  it.live("does not trip the watchdog or the write bound on a peer that reads and acknowledges steadily", () =>
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const listener = yield* transport.listen("127.0.0.1:0")
      const drain = (connection: Connection.Connection): Effect.Effect<void> =>
        Stream.runForEach(connection.inbound, (item) =>
          item._tag === "Transfer" ? Stream.runDrain(item.transfer.bytes) : Effect.void,
        ).pipe(Effect.ignore)
      yield* Effect.forkScoped(
        Stream.runForEach(listener.connections, (connection) => Effect.forkScoped(drain(connection))),
      )
      const client = yield* transport.connect(listener.address)
      const receipt = yield* AckProgressWatchdog.watch(
        (onProgress) => client.sendBytes({ tag: "update" }, patternStream(32 * MiB), { onProgress }),
        { ackProgressTimeout: "300 millis", checkInterval: "50 millis" },
      )
      assert.strictEqual(receipt.bytes, 32 * MiB)
      assert.isTrue(yield* client.isOpen)
    }).pipe(
      Effect.provide(
        NodeTransport.layer({ writeTimeout: "300 millis", connectTimeout: "2 seconds", closeTimeout: "300 millis" }),
      ),
      Effect.timeout("15 seconds"),
    ),
  )
})
