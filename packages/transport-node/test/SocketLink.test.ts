import * as Net from "node:net"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import { assert, describe, it } from "@effect/vitest"
import { Envelope, FrameCodec, Transport, type TransportError } from "@fedguard/transport"
import { Cause, Effect, Exit, Fiber, Option, Queue, Schedule, Stream } from "effect"
import * as NodeTransport from "../src/NodeTransport.ts"
import * as SocketLink from "../src/SocketLink.ts"
import {
  accepted,
  echoServer,
  inbox,
  nextMessage,
  outcomeOf,
  patternStream,
  rawFrame,
  rawServer,
  rawSocket,
  seededBytes,
  splitAddress,
} from "./support/fixtures.ts"

const MiB = 1024 * 1024
const timeouts = { writeTimeout: "2 seconds", connectTimeout: "2 seconds", closeTimeout: "500 millis" } as const

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E | undefined =>
  Exit.isFailure(exit) ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined

interface Garbage {
  readonly sends: string
  readonly bytes: Uint8Array
  readonly check: (error: TransportError.TransportError | undefined) => void
}

const garbage: ReadonlyArray<Garbage> = [
  {
    sends: "random bytes",
    bytes: seededBytes(4096, 42),
    check: (error) => assert.oneOf(error?._tag, ["DecodeError", "FrameTooLarge"]),
  },
  {
    sends: "a length prefix above maxFrameBytes",
    bytes: Uint8Array.of(0x7f, 0xff, 0xff, 0xff, 1, 2, 3),
    check: (error) => {
      assert.strictEqual(error?._tag, "FrameTooLarge")
      if (error?._tag === "FrameTooLarge") {
        assert.strictEqual(error.size, 0x7fffffff)
        assert.strictEqual(error.maxBytes, FrameCodec.defaultMaxFrameBytes)
      }
    },
  },
  {
    sends: "a well-sized frame of an unknown type",
    bytes: rawFrame(99, "hello"),
    check: (error) => {
      assert.strictEqual(error?._tag, "DecodeError")
      if (error?._tag === "DecodeError") assert.strictEqual(error.path, "type")
    },
  },
  {
    sends: "a message frame whose body fails the Envelope schema",
    bytes: rawFrame(1, JSON.stringify({ tag: "", body: 1 })),
    check: (error) => {
      assert.strictEqual(error?._tag, "DecodeError")
      if (error?._tag === "DecodeError") assert.include(error.path, "tag")
    },
  },
  {
    sends: "a message frame that is not JSON",
    bytes: rawFrame(1, "{tag: nope"),
    check: (error) => assert.strictEqual(error?._tag, "DecodeError"),
  },
]

describe("SocketLink", () => {
  describe("a peer that sends garbage", () => {
    for (const { sends, bytes, check } of garbage) {
      it.live(`fails only the connection that sends ${sends}, closes it, and keeps serving every other peer`, () =>
        Effect.gen(function* () {
          const transport = yield* Transport.Transport
          const listener = yield* transport.listen("127.0.0.1:0")
          const { outcomes } = yield* echoServer(listener)
          const good = yield* transport.connect(listener.address)
          const replies = yield* inbox(good)
          yield* good.send(Envelope.make("before", 1))
          yield* nextMessage(replies)

          const raw = yield* rawSocket(listener.address)
          yield* raw.write(bytes)
          const outcome = yield* outcomeOf(outcomes, raw.local)
          yield* raw.closed

          yield* good.send(Envelope.make("after", 2))
          const after = yield* nextMessage(replies)
          const receipt = yield* good.sendBytes({ tag: "after" }, patternStream(MiB))
          const verdict = yield* nextMessage(replies)
          const newcomer = yield* transport.connect(listener.address)
          const newcomerReplies = yield* inbox(newcomer)
          yield* newcomer.send(Envelope.make("hello", 3))
          const welcome = yield* nextMessage(newcomerReplies)

          check(outcome.error)
          assert.deepStrictEqual(after.body, { echo: 2, bytesIn: 0 })
          assert.strictEqual(receipt.bytes, MiB)
          assert.deepStrictEqual(verdict.body, { tag: "after", bytes: MiB, mismatches: 0 })
          assert.deepStrictEqual(welcome.body, { echo: 3, bytesIn: 0 })
          assert.isTrue(yield* good.isOpen)
        }).pipe(Effect.provide(NodeTransport.layer(timeouts)), Effect.timeout("10 seconds")),
      )
    }

    it.live("ends a peer's connection gracefully after its Close frame, but fails it when the peer just hangs up", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        const connections = yield* accepted(listener)
        const hello = FrameCodec.encodeToBytes({ _tag: "Message", envelope: Envelope.make("hello", 1) })
        const close = FrameCodec.encodeToBytes({ _tag: "Close", reason: "bye" })

        const polite = yield* rawSocket(listener.address)
        yield* polite.write(new Uint8Array([...hello, ...close]))
        polite.socket.end()
        const politeInbox = yield* inbox(yield* Queue.take(connections))
        const politeHello = yield* nextMessage(politeInbox)
        const politeEnd = yield* Effect.exit(Queue.take(politeInbox))

        const rude = yield* rawSocket(listener.address)
        yield* rude.write(hello)
        rude.socket.end()
        const rudeInbox = yield* inbox(yield* Queue.take(connections))
        const rudeHello = yield* nextMessage(rudeInbox)
        const rudeEnd = yield* Effect.exit(Queue.take(rudeInbox))

        assert.strictEqual(politeHello.tag, "hello")
        assert.isTrue(Exit.isFailure(politeEnd) && Cause.hasInterrupts(politeEnd.cause) === false)
        assert.strictEqual(failureOf(politeEnd)?._tag, "Done")
        assert.strictEqual(rudeHello.tag, "hello")
        assert.strictEqual(failureOf(rudeEnd)?._tag, "ConnectionClosed")
        assert.include((failureOf(rudeEnd) as { message: string }).message, "without a close frame")
      }).pipe(Effect.provide(NodeTransport.layer(timeouts)), Effect.timeout("10 seconds")),
    )
  })

  // A dialled Node socket, paused until a link takes it over (nothing is read before that).
  const netSocket = (address: string) =>
    Effect.acquireRelease(
      Effect.callback<Net.Socket>((resume) => {
        const [host, port] = splitAddress(address)
        const socket = Net.createConnection({ host, port })
        socket.pause()
        socket.on("error", () => undefined)
        socket.once("connect", () => resume(Effect.succeed(socket)))
      }),
      (socket) => Effect.sync(() => socket.destroy()),
    )

  // The two ways to make a link: over an effect/socket Socket, and over a Node socket directly.
  const constructors = [
    {
      name: "make",
      link: (address: string, options: Omit<SocketLink.Options, "remote"> = {}) =>
        Effect.gen(function* () {
          const [host, port] = splitAddress(address)
          const socket = yield* NodeSocket.makeNet({ host, port })
          return yield* SocketLink.make(socket, { remote: address, ...options })
        }),
    },
    {
      name: "fromNetSocket",
      link: (address: string, options: Omit<SocketLink.Options, "remote"> = {}) =>
        Effect.gen(function* () {
          return yield* SocketLink.fromNetSocket(yield* netSocket(address), { remote: address, ...options })
        }),
    },
  ] as const

  for (const { name, link } of constructors)
    describe(`reads (${name})`, () => {
      // A link dialled to a raw server that writes `bytes` and then ends its side.
      const linkTo = (bytes: Uint8Array) =>
        Effect.gen(function* () {
          const address = yield* rawServer((socket) => socket.end(bytes))
          return yield* link(address, { closeTimeout: "200 millis" })
        })
      const hello = FrameCodec.encodeToBytes({ _tag: "Message", envelope: Envelope.make("hello", 1) })
      const close = FrameCodec.encodeToBytes({ _tag: "Close", reason: "bye" })

      it.live("reads frames up to the peer's Close frame and ends with the stream", () =>
        Effect.gen(function* () {
          const link = yield* linkTo(new Uint8Array([...hello, ...close]))
          const frames = yield* Stream.runCollect(link.read)
          assert.deepStrictEqual(
            frames.map((frame) => frame._tag),
            ["Message", "Close"],
          )
        }).pipe(Effect.timeout("5 seconds")),
      )

      it.live(
        "fails with ConnectionClosed when the stream ends without a Close frame, after the frames before it",
        () =>
          Effect.gen(function* () {
            const link = yield* linkTo(hello)
            const seen: Array<string> = []
            const error = yield* Effect.flip(
              Stream.runForEach(link.read, (frame) => Effect.sync(() => seen.push(frame._tag))),
            )
            assert.deepStrictEqual(seen, ["Message"])
            assert.strictEqual(error._tag, "ConnectionClosed")
            assert.include(error.message, "without a close frame")
          }).pipe(Effect.timeout("5 seconds")),
      )

      it.live("fails with ConnectionClosed when the stream ends inside a frame, even after a Close frame", () =>
        Effect.gen(function* () {
          const link = yield* linkTo(new Uint8Array([...close, ...hello.subarray(0, 9)]))
          const error = yield* Effect.flip(Stream.runDrain(link.read))
          assert.strictEqual(error._tag, "ConnectionClosed")
          assert.include(error.message, "inside a frame")
        }).pipe(Effect.timeout("5 seconds")),
      )
    })

  describe("reads over a Node socket (fromNetSocket)", () => {
    const message = (i: number) => FrameCodec.encodeToBytes({ _tag: "Message", envelope: Envelope.make("m", i) })

    it.live("hands on every frame received since the last read in one batch, not one socket read at a time", () =>
      Effect.gen(function* () {
        // 4000 small frames (about 150 KB) written at once, while nobody reads the link.
        const frames = Array.from({ length: 4000 }, (_, i) => message(i))
        const bytes = Buffer.concat(frames)
        const address = yield* rawServer((socket) => socket.end(bytes))
        const link = yield* SocketLink.fromNetSocket(yield* netSocket(address), {
          remote: address,
          closeTimeout: "200 millis",
        })
        yield* Effect.sleep("200 millis")
        const batches: Array<number> = []
        const seen: Array<unknown> = []
        yield* Stream.runForEachArray(link.read, (batch) =>
          Effect.sync(() => {
            batches.push(batch.length)
            for (const frame of batch) if (frame._tag === "Message") seen.push(frame.envelope.body)
          }),
        ).pipe(Effect.ignore)
        assert.deepStrictEqual(
          seen,
          frames.map((_, i) => i),
        )
        // The socket read them in 64 KiB pieces; the link's first read took them all.
        assert.strictEqual(batches[0], 4000)
      }).pipe(Effect.timeout("5 seconds")),
    )

    it.live("stops reading the socket about 1 MiB ahead of a reader that does not pull, so TCP holds the peer", () =>
      Effect.gen(function* () {
        const total = 64 * MiB
        const payload = FrameCodec.encodeToBytes({ _tag: "Chunk", id: 1, offset: 0, bytes: new Uint8Array(MiB - 64) })
        const address = yield* rawServer((socket) => {
          let sent = 0
          const pump = () => {
            while (sent < total) {
              sent += payload.byteLength
              if (!socket.write(payload)) return void socket.once("drain", pump)
            }
          }
          pump()
        })
        const socket = yield* netSocket(address)
        const link = yield* SocketLink.fromNetSocket(socket, { remote: address, maxFrameBytes: MiB })
        yield* Effect.sleep("300 millis")
        // Read ahead: the bound, plus what Node buffers after pausing (its 64 KiB high-water mark).
        assert.isBelow(socket.bytesRead, 2 * MiB)
        // Once pulled, everything arrives.
        let chunkBytes = 0
        yield* link.read.pipe(
          Stream.takeWhile(() => chunkBytes < 32 * (MiB - 64)),
          Stream.runForEach((frame) =>
            Effect.sync(() => {
              if (frame._tag === "Chunk") chunkBytes += frame.bytes.byteLength
            }),
          ),
        )
        assert.isAtLeast(socket.bytesRead, 32 * MiB)
      }).pipe(Effect.timeout("10 seconds")),
    )
  })

  describe("writes", () => {
    const greedy = {
      ...timeouts,
      writeTimeout: "300 millis",
      windowBytes: 256 * MiB,
      maxBufferedBytes: 256 * MiB,
    } as const

    it.live(
      "fails a write the socket does not accept within writeTimeout with SendTimeout, buffering nothing above the kernel",
      () =>
        Effect.gen(function* () {
          const transport = yield* Transport.Transport
          // A peer that accepts the connection and never reads: the kernel buffers fill, then writes stall.
          const address = yield* rawServer(() => undefined, { pauseOnConnect: true })
          const client = yield* transport.connect(address)
          const exit = yield* Effect.exit(client.sendBytes({ tag: "update" }, patternStream(256 * MiB)))
          const stats = yield* client.stats
          const error = failureOf(exit)
          assert.strictEqual(error?._tag, "SendTimeout")
          if (error?._tag === "SendTimeout") assert.strictEqual(error.timeoutMs, 300)
          // What the socket accepted fits in the kernel's buffers, far below the 256 MiB offered.
          assert.isBelow(stats.bytesOut, 64 * MiB)
          assert.isFalse(yield* client.isOpen)
        }).pipe(Effect.provide(NodeTransport.layer(greedy)), Effect.timeout("10 seconds")),
    )

    it.live("does not time out writes to a peer that keeps reading", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const address = yield* rawServer((socket) => socket.resume())
        const client = yield* transport.connect(address)
        // The raw peer never acknowledges, so the send cannot complete: only its writes are observed.
        const sending = yield* Effect.forkChild(client.sendBytes({ tag: "update" }, patternStream(64 * MiB)))
        // However long the machine takes to push 64 MiB (bounded by the test's timeout), no write
        // times out while the peer reads: every byte goes out and the send is still waiting for ACKs.
        yield* client.stats.pipe(
          Effect.repeat({ schedule: Schedule.spaced("20 millis"), until: (stats) => stats.bytesOut >= 64 * MiB }),
        )
        const settled = yield* Fiber.await(sending).pipe(Effect.timeoutOption("200 millis"))
        assert.isTrue(Option.isNone(settled))
        assert.strictEqual((yield* client.stats).bytesOut, 64 * MiB)
        assert.isTrue(yield* client.isOpen)
      }).pipe(Effect.provide(NodeTransport.layer(greedy)), Effect.timeout("10 seconds")),
    )

    it.live("refuses to send a frame above maxFrameBytes with FrameTooLarge, but sends one just below it", () =>
      Effect.gen(function* () {
        const transport = yield* Transport.Transport
        const listener = yield* transport.listen("127.0.0.1:0")
        yield* echoServer(listener)
        const client = yield* transport.connect(listener.address)
        const replies = yield* inbox(client)
        yield* client.send(Envelope.make("fits", "x".repeat(60_000)))
        const fits = yield* nextMessage(replies)
        yield* client.send(Envelope.make("too big", "x".repeat(70_000)))
        const end = yield* Effect.exit(Queue.take(replies))
        assert.strictEqual(fits.tag, "echo")
        assert.strictEqual(failureOf(end)?._tag, "FrameTooLarge")
      }).pipe(
        // The echo of a 60 000-character body (plus its envelope) still fits in 64 KiB.
        Effect.provide(NodeTransport.layer({ ...timeouts, maxFrameBytes: 64 * 1024 })),
        Effect.timeout("10 seconds"),
      ),
    )
  })
})
