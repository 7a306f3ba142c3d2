/**
 * Shared test fixtures: deterministic payloads, an echo server over the real
 * transport, and raw `node:net` sockets for peers that misbehave.
 */

import * as Net from "node:net"
import { type Connection, Envelope, Transport, type TransportError } from "@fedguard/transport"
import { Cause, Effect, Option, Queue, type Scope, Stream } from "effect"

/** The byte expected at `offset` of every test payload. */
export const byteAt = (offset: number): number => (offset * 31 + 7) & 0xff

/** One reusable chunk of the test pattern (its length is a multiple of 256, so it tiles). */
export const patternChunk = (bytes: number): Uint8Array => {
  const out = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) out[i] = byteAt(i)
  return out
}

/** `totalBytes` of the test pattern as a stream of one reused chunk (nothing allocated per chunk). */
export const patternStream = (totalBytes: number, chunkBytes = 64 * 1024): Stream.Stream<Uint8Array> => {
  const chunk = patternChunk(chunkBytes)
  const count = Math.ceil(totalBytes / chunkBytes)
  return Stream.range(0, count - 1).pipe(
    Stream.map((i) => (i === count - 1 ? chunk.subarray(0, totalBytes - i * chunkBytes) : chunk)),
  )
}

/** What the echo server learnt from one incoming byte stream. */
export interface Received {
  readonly bytes: number
  readonly mismatches: number
}

/** Counts the bytes of an incoming stream and how many differ from the test pattern. */
export const verify = (transfer: Connection.IncomingTransfer): Effect.Effect<Received, TransportError.TransportError> =>
  Effect.suspend(() => {
    let bytes = 0
    let mismatches = 0
    return transfer.bytes.pipe(
      Stream.runForEach((chunk) =>
        Effect.sync(() => {
          for (let i = 0; i < chunk.byteLength; i++) if (chunk[i] !== byteAt(bytes + i)) mismatches++
          bytes += chunk.byteLength
        }),
      ),
      Effect.map(() => ({ bytes, mismatches })),
    )
  })

/** How one server-side connection ended: `error` is undefined after a graceful close. */
export interface Outcome {
  readonly remote: string
  readonly error: TransportError.TransportError | undefined
}

/**
 * Serves every connection of `listener`: a message is answered with `echo`
 * `{ echo: body, bytesIn }` (the chunk bytes this connection had received
 * when the message came out of its inbound stream), an incoming byte stream is verified against
 * the pattern and answered with `received` `{ tag, bytes, mismatches }`.
 * Each connection's end is reported on `outcomes`.
 */
export const echoServer = (listener: Transport.Listener) =>
  Effect.gen(function* () {
    const outcomes = yield* Queue.unbounded<Outcome>()
    const serve = (connection: Connection.Connection) =>
      connection.inbound.pipe(
        Stream.runForEach((item) =>
          item._tag === "Message"
            ? connection.stats.pipe(
                Effect.flatMap((stats) =>
                  connection.send(Envelope.make("echo", { echo: item.envelope.body, bytesIn: stats.bytesIn })),
                ),
              )
            : Effect.forkChild(
                verify(item.transfer).pipe(
                  Effect.flatMap((received) =>
                    connection.send(Envelope.make("received", { tag: item.transfer.tag, ...received })),
                  ),
                  Effect.ignore,
                ),
              ),
        ),
        Effect.exit,
        Effect.flatMap((exit) =>
          Queue.offer(outcomes, {
            remote: connection.remote,
            error: exit._tag === "Failure" ? Option.getOrUndefined(Cause.findErrorOption(exit.cause)) : undefined,
          }),
        ),
      )
    yield* Effect.forkScoped(listener.connections.pipe(Stream.runForEach((c) => Effect.forkScoped(serve(c)))))
    return { outcomes }
  })

/** Waits for the outcome of the connection whose remote is `remote`, skipping others. */
export const outcomeOf = (outcomes: Queue.Queue<Outcome>, remote: string): Effect.Effect<Outcome> =>
  Queue.take(outcomes).pipe(
    Effect.flatMap((outcome) => (outcome.remote === remote ? Effect.succeed(outcome) : outcomeOf(outcomes, remote))),
  )

/**
 * The inbound items of a connection as a queue the test takes from one at a
 * time: one fiber consumes `connection.inbound`; `take` fails with the
 * connection's error, or with `Cause.Done` after a graceful end.
 */
export const inbox = (
  connection: Connection.Connection,
): Effect.Effect<Queue.Dequeue<Connection.Inbound, TransportError.TransportError | Cause.Done>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Connection.Inbound, TransportError.TransportError | Cause.Done>()
    yield* Effect.forkScoped(
      connection.inbound.pipe(
        Stream.runForEach((item) => Queue.offer(queue, item)),
        Effect.matchEffect({ onFailure: (error) => Queue.fail(queue, error), onSuccess: () => Queue.end(queue) }),
      ),
    )
    return queue
  })

/** The next item of an inbox, which must be a message. */
export const nextMessage = (
  queue: Queue.Dequeue<Connection.Inbound, TransportError.TransportError | Cause.Done>,
): Effect.Effect<Envelope.Envelope, TransportError.TransportError | Cause.Done> =>
  Queue.take(queue).pipe(
    Effect.flatMap((item) =>
      item._tag === "Message" ? Effect.succeed(item.envelope) : Effect.die("expected a message, got a byte stream"),
    ),
  )

/** A raw TCP socket to `address`, destroyed with the Scope, with a way to await its close. */
export const rawSocket = (address: string): Effect.Effect<RawSocket, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<Net.Socket, Error>((resume) => {
      const [host, port] = splitAddress(address)
      const socket = Net.createConnection({ host, port })
      socket.on("error", () => undefined)
      socket.once("connect", () => resume(Effect.succeed(socket)))
      socket.once("error", (error) => resume(Effect.fail(error)))
    }),
    (socket) => Effect.sync(() => socket.destroy()),
  ).pipe(Effect.map(wrap))

/** A raw socket with Effect helpers. */
export interface RawSocket {
  readonly socket: Net.Socket
  /** The address the other side sees for this socket. */
  readonly local: string
  readonly write: (bytes: Uint8Array) => Effect.Effect<void>
  /** Resolves when the socket is fully closed (the other side ended or reset it). */
  readonly closed: Effect.Effect<void>
}

const wrap = (socket: Net.Socket): RawSocket => {
  const closed = new Promise<void>((resolve) => {
    if (socket.closed) resolve()
    socket.once("close", () => resolve())
  })
  // Keep reading so the peer's end of stream is noticed.
  socket.resume()
  return {
    socket,
    local: `${socket.localAddress}:${socket.localPort}`,
    write: (bytes) => Effect.callback<void>((resume) => void socket.write(bytes, () => resume(Effect.void))),
    closed: Effect.promise(() => closed),
  }
}

/** Splits `"host:port"`. */
export const splitAddress = (address: string): [string, number] => {
  const at = address.lastIndexOf(":")
  return [address.slice(0, at), Number(address.slice(at + 1))]
}

/** Every connection a listener accepts, in order, on a queue. */
export const accepted = (listener: Transport.Listener) =>
  Effect.gen(function* () {
    const queue = yield* Queue.unbounded<Connection.Connection>()
    yield* Effect.forkScoped(listener.connections.pipe(Stream.runForEach((c) => Queue.offer(queue, c))))
    return queue
  })

/** A raw TCP server on 127.0.0.1 that hands each accepted socket to `onSocket`; closed with the Scope. */
export const rawServer = (
  onSocket: (socket: Net.Socket) => void,
  options: Net.ServerOpts = {},
): Effect.Effect<string, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.callback<{ server: Net.Server; sockets: Set<Net.Socket> }>((resume) => {
      const sockets = new Set<Net.Socket>()
      const server = Net.createServer(options, (socket) => {
        sockets.add(socket)
        socket.on("error", () => undefined)
        onSocket(socket)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed({ server, sockets })))
    }),
    ({ server, sockets }) =>
      Effect.callback<void>((resume) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resume(Effect.void))
      }),
  ).pipe(
    Effect.map(({ server }) => {
      const address = server.address()
      return typeof address === "object" && address !== null ? `127.0.0.1:${address.port}` : "127.0.0.1:0"
    }),
  )

/** A deterministic byte sequence (mulberry32), for "random" garbage that repeats run to run. */
export const seededBytes = (length: number, seed: number): Uint8Array => {
  let state = seed >>> 0
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = (t ^ (t >>> 14)) & 0xff
  }
  return out
}

/** A raw frame: 4-byte big-endian length (type + body), the type byte, then the body. */
export const rawFrame = (type: number, body: Uint8Array | string): Uint8Array => {
  const payload = typeof body === "string" ? new TextEncoder().encode(body) : body
  const out = new Uint8Array(5 + payload.byteLength)
  new DataView(out.buffer).setUint32(0, 1 + payload.byteLength)
  out[4] = type
  out.set(payload, 5)
  return out
}

/**
 * A listener on an ephemeral port serving the echo protocol, a client connected to it, and
 * the client's inbox of replies: the setup most round-trip tests start from.
 */
export const echoPair = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  const listener = yield* transport.listen("127.0.0.1:0")
  yield* echoServer(listener)
  const client = yield* transport.connect(listener.address)
  const replies = yield* inbox(client)
  return { transport, listener, client, replies }
})
