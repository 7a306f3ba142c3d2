import * as ChildProcess from "node:child_process"
import { assert, describe, it } from "@effect/vitest"
import { AckProgressWatchdog } from "@fedguard/stall-guard"
import { Envelope, FrameCodec, Transport } from "@fedguard/transport"
import { Cause, Clock, Deferred, Effect, Exit, Fiber, Option, Queue, Stream } from "effect"
import * as NodeTransport from "../src/NodeTransport.ts"
import { accepted, echoPair, echoServer, inbox, nextMessage, patternStream, verify } from "./support/fixtures.ts"

const MiB = 1024 * 1024
const timeouts = { writeTimeout: "2 seconds", connectTimeout: "2 seconds", closeTimeout: "500 millis" } as const
const layer = NodeTransport.layer(timeouts)

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

// A child node process running `script`, killed with the Scope; resolves with its first stdout line.
const child = (script: string) =>
  Effect.acquireRelease(
    Effect.callback<{ process: ChildProcess.ChildProcess; firstLine: string }>((resume) => {
      const process = ChildProcess.spawn(globalThis.process.execPath, ["-e", script], {
        stdio: ["ignore", "pipe", "inherit"],
      })
      let out = ""
      process.stdout?.on("data", (data: Buffer) => {
        out += data.toString()
        const line = out.indexOf("\n")
        if (line >= 0) resume(Effect.succeed({ process, firstLine: out.slice(0, line) }))
      })
    }),
    ({ process }) => Effect.sync(() => process.kill("SIGKILL")),
  )

const messageHex = (tag: string, body: Envelope.Envelope["body"]) =>
  Buffer.from(FrameCodec.encodeToBytes({ _tag: "Message", envelope: Envelope.make(tag, body) })).toString("hex")

describe("NodeTransport", () => {
  it.live("binds an ephemeral port for port 0 and reports it in the listener's address", () =>
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const listener = yield* transport.listen("127.0.0.1:0")
      const port = Number(listener.address.split(":")[1])
      assert.match(listener.address, /^127\.0\.0\.1:\d+$/)
      assert.isAbove(port, 0)
    }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
  )

  it.live("carries a message to the server and its echo back", () =>
    Effect.gen(function* () {
      const { client, replies } = yield* echoPair
      yield* client.send(Envelope.make("ping", { n: 1, text: "héllo" }))
      const reply = yield* nextMessage(replies)
      assert.strictEqual(reply.tag, "echo")
      assert.deepStrictEqual(reply.body, { echo: { n: 1, text: "héllo" }, bytesIn: 0 })
    }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
  )

  it.live("streams 8 MiB byte for byte, and the receipt counts every byte and chunk", () =>
    Effect.gen(function* () {
      const { client, replies } = yield* echoPair
      const receipt = yield* client.sendBytes({ tag: "model", totalBytes: 8 * MiB }, patternStream(8 * MiB, MiB))
      const verdict = yield* nextMessage(replies)
      assert.strictEqual(receipt.bytes, 8 * MiB)
      // 1 MiB pieces cut into the default 256 KiB chunks.
      assert.strictEqual(receipt.chunks, 32)
      assert.deepStrictEqual(verdict.body, { tag: "model", bytes: 8 * MiB, mismatches: 0 })
    }).pipe(Effect.provide(layer), Effect.timeout("20 seconds")),
  )

  it.live("asks the receiver for an ack every ackBytes it sets: 64 KiB steps over 1 MiB, the last at the total", () =>
    Effect.gen(function* () {
      const { client, replies } = yield* echoPair
      const acked: Array<number> = []
      yield* client.sendBytes({ tag: "model" }, patternStream(MiB), {
        onProgress: (offset) => Effect.sync(() => acked.push(offset)),
      })
      yield* nextMessage(replies)
      // Besides one ack per 64 KiB consumed, a slow moment may add one (every 20 ms): never fewer.
      assert.isAtLeast(acked.length, 16)
      assert.strictEqual(acked.at(-1), MiB)
    }).pipe(
      Effect.provide(NodeTransport.layer({ ...timeouts, chunkBytes: 64 * 1024, ackBytes: 64 * 1024 })),
      Effect.timeout("10 seconds"),
    ),
  )

  it.live(
    "delivers a control message sent mid-stream before most of a 64 MiB stream, and the stream stays intact",
    () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        yield* echoServer(listener)
        const client = yield* transport.connect(listener.address)
        const replies = yield* inbox(client)
        const streaming = yield* Deferred.make<void>()
        const sending = yield* Effect.forkChild(
          client.sendBytes({ tag: "bulk", totalBytes: 64 * MiB }, patternStream(64 * MiB), {
            onProgress: (acked) => (acked >= MiB ? Deferred.succeed(streaming, undefined) : Effect.void),
          }),
        )
        yield* Deferred.await(streaming)
        yield* client.send(Envelope.make("urgent", "stop the round"))
        const echo = yield* nextMessage(replies)
        const verdict = yield* nextMessage(replies)
        const receipt = yield* Fiber.join(sending)
        const { bytesIn } = echo.body as { bytesIn: number }
        assert.strictEqual(echo.tag, "echo")
        // The message overtook the stream: more than half of it was still to come when it arrived.
        assert.isBelow(bytesIn, 32 * MiB)
        assert.isAtLeast(bytesIn, MiB)
        assert.deepStrictEqual(verdict.body, { tag: "bulk", bytes: 64 * MiB, mismatches: 0 })
        assert.strictEqual(receipt.bytes, 64 * MiB)
      }).pipe(
        Effect.provide(NodeTransport.layer({ ...timeouts, windowBytes: 32 * MiB, maxBufferedBytes: 64 * MiB })),
        Effect.timeout("20 seconds"),
      ),
  )

  describe("flow control", () => {
    const windowed = NodeTransport.layer({ ...timeouts, chunkBytes: 64 * 1024, windowBytes: 256 * 1024 })

    it.live(
      "stops a sender at its window when the receiver stops pulling, and the AckProgressWatchdog fails it with AckStalled",
      () =>
        Effect.gen(function* () {
          const transport = yield* Transport.Transport
          const listener = yield* transport.listen("127.0.0.1:0")
          const connections = yield* accepted(listener)
          const client = yield* transport.connect(listener.address)
          const server = yield* Queue.take(connections)
          const serverInbox = yield* inbox(server)
          const acked: Array<number> = []
          const sending = yield* Effect.forkChild(
            AckProgressWatchdog.watch(
              (onProgress) =>
                client.sendBytes({ tag: "update" }, patternStream(8 * MiB), {
                  onProgress: (n) =>
                    Effect.andThen(
                      onProgress(n),
                      Effect.sync(() => acked.push(n)),
                    ),
                }),
              { ackProgressTimeout: "300 millis", checkInterval: "50 millis" },
            ),
          )
          // The server takes the announcement but never pulls the bytes.
          const announced = yield* Queue.take(serverInbox)
          const exit = yield* Fiber.await(sending)
          const clientStats = yield* client.stats
          const serverStats = yield* server.stats
          assert.strictEqual(announced._tag, "Transfer")
          assert.strictEqual(failureOf(exit)?._tag, "AckStalled")
          assert.deepStrictEqual(acked, [])
          // The stream failed, not the connection: heartbeats and other messages still flow.
          assert.isTrue(yield* client.isOpen)
          assert.strictEqual(clientStats.bytesOut, 256 * 1024)
          assert.strictEqual(serverStats.bytesIn, 256 * 1024)
        }).pipe(Effect.provide(windowed), Effect.timeout("10 seconds")),
    )

    it.live("does not trip the AckProgressWatchdog on a receiver that reads slowly but steadily", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        const connections = yield* accepted(listener)
        const client = yield* transport.connect(listener.address)
        const server = yield* Queue.take(connections)
        const serverInbox = yield* inbox(server)
        const sending = yield* Effect.forkChild(
          AckProgressWatchdog.watch(
            (onProgress) => client.sendBytes({ tag: "update" }, patternStream(2 * MiB), { onProgress }),
            { ackProgressTimeout: "300 millis", checkInterval: "50 millis" },
          ),
        )
        const item = yield* Queue.take(serverInbox)
        if (item._tag !== "Transfer") return assert.fail("expected a byte stream")
        const received = yield* verify({
          ...item.transfer,
          bytes: item.transfer.bytes.pipe(Stream.tap(() => Effect.sleep("5 millis"))),
        })
        const receipt = yield* Fiber.join(sending)
        assert.deepStrictEqual(received, { bytes: 2 * MiB, mismatches: 0 })
        assert.strictEqual(receipt.bytes, 2 * MiB)
      }).pipe(Effect.provide(windowed), Effect.timeout("10 seconds")),
    )
  })

  describe("closing", () => {
    it.live("closes gracefully: the Close frame is flushed and the peer's inbound ends without an error", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        const { outcomes } = yield* echoServer(listener)
        const client = yield* transport.connect(listener.address)
        const replies = yield* inbox(client)
        yield* client.send(Envelope.make("last words"))
        yield* nextMessage(replies)
        yield* client.close("round finished")
        const outcome = yield* Queue.take(outcomes)
        const late = yield* Effect.exit(client.send(Envelope.make("too late")))
        assert.isUndefined(outcome.error)
        assert.strictEqual(yield* client.closed, "closed locally: round finished")
        assert.strictEqual(failureOf(late)?._tag, "ConnectionClosed")
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )

    it.live("tells the server promptly with ConnectionClosed when a client process dies", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        const connections = yield* accepted(listener)
        const port = listener.address.split(":")[1]
        const { process } = yield* child(
          `const s = require("node:net").connect(${port}, "127.0.0.1", () => {
             s.write(Buffer.from("${messageHex("join", { id: "client-7" })}", "hex"))
             console.log("connected")
           })
           setInterval(() => {}, 1000)`,
        )
        const server = yield* Queue.take(connections)
        const serverInbox = yield* inbox(server)
        const join = yield* nextMessage(serverInbox)
        process.kill("SIGKILL")
        const started = yield* Clock.currentTimeMillis
        const after = yield* Effect.exit(Queue.take(serverInbox))
        const elapsed = (yield* Clock.currentTimeMillis) - started
        assert.deepStrictEqual(join.body, { id: "client-7" })
        assert.strictEqual(failureOf(after)?._tag, "ConnectionClosed")
        assert.isBelow(elapsed, 1000)
      }).pipe(Effect.provide(layer), Effect.timeout("10 seconds")),
    )

    it.live("tells the client promptly with ConnectionClosed when the server process dies", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const { process, firstLine } = yield* child(
          `const server = require("node:net").createServer((s) => {
             s.on("error", () => {})
             s.write(Buffer.from("${messageHex("welcome", 1)}", "hex"))
           })
           server.listen(0, "127.0.0.1", () => console.log(server.address().port))`,
        )
        const client = yield* transport.connect(`127.0.0.1:${firstLine}`)
        const clientInbox = yield* inbox(client)
        const welcome = yield* nextMessage(clientInbox)
        process.kill("SIGKILL")
        const after = yield* Effect.exit(Queue.take(clientInbox))
        assert.strictEqual(welcome.tag, "welcome")
        assert.strictEqual(failureOf(after)?._tag, "ConnectionClosed")
        assert.isFalse(yield* client.isOpen)
      }).pipe(Effect.provide(layer), Effect.timeout("10 seconds")),
    )

    it.live("ends the connections stream, without failing it, when the listener's Scope closes", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* Effect.scoped(transport.listen("127.0.0.1:0"))
        const rest = yield* Stream.runCollect(listener.connections)
        const reconnect = yield* Effect.exit(transport.connect(listener.address))
        assert.deepStrictEqual(rest, [])
        assert.strictEqual(failureOf(reconnect)?._tag, "PeerUnreachable")
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )
  })

  describe("addresses", () => {
    it.live("fails with PeerUnreachable naming ECONNREFUSED when nothing listens on the port", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const address = (yield* Effect.scoped(transport.listen("127.0.0.1:0"))).address
        const exit = yield* Effect.exit(transport.connect(address))
        const error = failureOf(exit)
        assert.strictEqual(error?._tag, "PeerUnreachable")
        assert.include(error?.message, "ECONNREFUSED")
        assert.include(error?.message, address)
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )

    it.live("fails with PeerUnreachable naming EADDRINUSE when the port is taken, and keeps the first listener", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const first = yield* transport.listen("127.0.0.1:0")
        const exit = yield* Effect.exit(transport.listen(first.address))
        const still = yield* Effect.exit(transport.connect(first.address))
        assert.strictEqual(failureOf(exit)?._tag, "PeerUnreachable")
        assert.include(failureOf(exit)?.message, "EADDRINUSE")
        assert.isTrue(Exit.isSuccess(still))
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )

    it.live("rejects an address that is not host:port with a final DecodeError, not a retryable PeerUnreachable", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const errors = yield* Effect.forEach(["127.0.0.1", "127.0.0.1:70000", "host:port", ""], (address) =>
          Effect.flip(transport.connect(address)),
        )
        const listenError = yield* Effect.flip(transport.listen("nowhere"))
        for (const error of [...errors, listenError]) {
          assert.strictEqual(error._tag, "DecodeError")
          if (error._tag === "DecodeError") assert.strictEqual(error.path, "address")
        }
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )

    it.live("accepts an IPv6 loopback address in brackets", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("[::1]:0")
        yield* echoServer(listener)
        const client = yield* transport.connect(listener.address)
        const replies = yield* inbox(client)
        yield* client.send(Envelope.make("ping", 6))
        const reply = yield* nextMessage(replies)
        assert.match(listener.address, /^\[::1\]:\d+$/)
        assert.deepStrictEqual(reply.body, { echo: 6, bytesIn: 0 })
      }).pipe(Effect.provide(layer), Effect.timeout("5 seconds")),
    )
  })
})
