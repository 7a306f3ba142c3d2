/**
 * The TCP `Transport` on `@effect/platform-node`: `connect("host:port")` dials
 * a socket, `listen("host:port")` accepts them, and each socket carries one
 * `Connection` (control lane, chunked byte streams with ACK offsets, close
 * handshake) over a `SocketLink`.
 *
 * @since 0.1.0
 */

import * as Net from "node:net"
import * as Tls from "node:tls"
import * as NodeSocket from "@effect/platform-node/NodeSocket"
import * as NodeSocketServer from "@effect/platform-node/NodeSocketServer"
import { Connection, Transport, TransportError } from "@fedguard/transport"
import { type Cause, Duration, Effect, Layer, Option, Queue, type Scope, Stream } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Address from "./internal/address.ts"
import * as Describe from "./internal/describe.ts"
import * as SocketLink from "./SocketLink.ts"

/**
 * Tuning of the TCP transport; every field is optional.
 *
 * | option | default | meaning |
 * | --- | --- | --- |
 * | `maxFrameBytes` | 1 MiB | largest frame sent or accepted; a peer declaring more is cut off with `FrameTooLarge` |
 * | `writeTimeout` | 30 s | a frame the socket does not accept within it fails with `SendTimeout` |
 * | `connectTimeout` | 10 s | a dial that does not complete within it fails with `PeerUnreachable` |
 * | `closeTimeout` | 2 s | how long a closing socket waits for the peer's end before it is destroyed |
 * | `noDelay` | `true` | TCP_NODELAY: small control frames leave at once instead of waiting for Nagle |
 * | `chunkBytes` | 256 KiB | byte-stream chunk size (capped so a chunk frame fits in `maxFrameBytes`) |
 * | `windowBytes` | 4 MiB | unacknowledged bytes in flight per outgoing byte stream |
 * | `ackBytes` | 1 MiB (¼ window) | consumed bytes the receiver may leave unacknowledged before it acks (capped at `windowBytes - chunkBytes`) |
 * | `maxBufferedBytes` | 8 MiB | unconsumed bytes an incoming byte stream may buffer before it is aborted; keep it at least the peer's `windowBytes` |
 * | `reclaimEveryBytes` | 16 MiB | bytes read by the process's sockets between two forced scavenges that free Node's dead 64 KiB read buffers young (`0`: off; see `SocketLink.Options`) |
 * | `inboundCapacity` | 1024 | inbound items queued before the connection stops reading the socket |
 * | `tls` | none (plain TCP) | `{ server?: tls.TlsOptions, client?: tls.ConnectionOptions }`: `listen` serves TLS with `server` (key, cert, `requestCert` for mutual TLS), `connect` dials TLS with `client` (ca, servername, client cert) |
 *
 * The byte-stream defaults are larger than `Connection`'s (64 KiB / 1 MiB /
 * 4 MiB): over TCP, fewer and larger chunks halve the per-byte CPU cost, and a
 * 4 MiB window keeps a loopback or LAN link busy while acks travel back.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options extends Connection.Options {
  readonly maxFrameBytes?: number | undefined
  readonly writeTimeout?: Duration.Input | undefined
  readonly connectTimeout?: Duration.Input | undefined
  readonly closeTimeout?: Duration.Input | undefined
  readonly noDelay?: boolean | undefined
  readonly reclaimEveryBytes?: number | undefined
  readonly tls?: TlsOptions | undefined
}

/**
 * TLS for the transport: `server` makes `listen` accept only TLS connections
 * (Node's `tls.createServer` options: `key`, `cert`, `ca`, `requestCert`);
 * `client` makes `connect` dial TLS (`tls.connect` options: `ca`,
 * `servername`, `cert` / `key` for mutual TLS). Each side is optional, so one
 * Layer can serve TLS and dial plain TCP or the reverse. A handshake that
 * fails (an untrusted certificate, a name mismatch) fails `connect` with
 * `PeerUnreachable` naming the reason; on the server it only drops that
 * socket.
 *
 * @since 0.1.0
 * @category models
 */
export interface TlsOptions {
  readonly server?: Tls.TlsOptions | undefined
  readonly client?: Tls.ConnectionOptions | undefined
}

/**
 * The transport's defaults besides `SocketLink.defaults`: a 10 second connect
 * timeout, TCP_NODELAY on, and byte streams of 256 KiB chunks with a 4 MiB
 * window (an incoming stream may buffer up to 8 MiB before it is aborted).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  connectTimeout: Duration.seconds(10),
  noDelay: true,
  chunkBytes: 256 * 1024,
  windowBytes: 4 * 1024 * 1024,
  maxBufferedBytes: 8 * 1024 * 1024,
} as const

// What a chunk frame adds to its payload inside the length prefix: the type byte and the 12-byte stream header.
const chunkFrameOverhead = 1 + 12

/**
 * Builds the TCP transport. Connections and listeners live in the Scope of
 * whoever opened them; nothing outlives it.
 *
 * - `connect(address)` fails with `PeerUnreachable` naming the reason
 *   (`ECONNREFUSED`, `ENOTFOUND`, a timeout, a TLS handshake that failed),
 *   and with a final `DecodeError` at path `address` when `address` is not
 *   `"host:port"` (`"127.0.0.1:7070"`, `"[::1]:7070"`).
 * - `listen(address)` binds (port 0 picks a free port, reported in
 *   `Listener.address`) and fails with `PeerUnreachable` when it cannot
 *   (`EADDRINUSE`). Its `connections` stream never fails: a peer that sends
 *   garbage only fails its own connection (`DecodeError` / `FrameTooLarge` on
 *   that connection's `inbound`), which is then closed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Transport.Transport["Service"] => {
  const maxFrameBytes = options.maxFrameBytes ?? SocketLink.defaults.maxFrameBytes
  const noDelay = options.noDelay ?? defaults.noDelay
  const connectTimeout = options.connectTimeout ?? defaults.connectTimeout
  const tlsClient = options.tls?.client
  const tlsServer = options.tls?.server
  const linkOptions = {
    maxFrameBytes,
    writeTimeout: options.writeTimeout,
    closeTimeout: options.closeTimeout,
    reclaimEveryBytes: options.reclaimEveryBytes,
  }
  const connectionOptions: Connection.Options = {
    chunkBytes: Math.min(options.chunkBytes ?? defaults.chunkBytes, maxFrameBytes - chunkFrameOverhead),
    windowBytes: options.windowBytes ?? defaults.windowBytes,
    ackBytes: options.ackBytes,
    maxBufferedBytes: options.maxBufferedBytes ?? defaults.maxBufferedBytes,
    inboundCapacity: options.inboundCapacity,
  }

  const invalidAddress = (address: string) =>
    new TransportError.DecodeError({
      peer: address,
      reason: 'expected "host:port" with a port from 0 to 65535',
      path: "address",
    })

  // A dial as effect/socket wants it: the open socket, destroyed with the reader's Scope.
  const dial = (target: Address.HostPort) =>
    Effect.acquireRelease(
      Effect.callback<Net.Socket, Socket.SocketError>((resume) => {
        const conn =
          tlsClient === undefined
            ? Net.createConnection({ host: target.host, port: target.port, noDelay })
            : Tls.connect({ ...tlsClient, host: target.host, port: target.port })
        // Failures after the dial surface through reads and writes; Node would throw an unheard 'error'.
        conn.on("error", ignoreError)
        const failed = (cause: unknown) =>
          resume(
            Effect.fail(new Socket.SocketError({ reason: new Socket.SocketOpenError({ kind: "Unknown", cause }) })),
          )
        conn.once("error", failed)
        conn.once(tlsClient === undefined ? "connect" : "secureConnect", () => {
          conn.off("error", failed)
          conn.setNoDelay(noDelay)
          resume(Effect.succeed(conn))
        })
        return Effect.sync(() => conn.destroy())
      }),
      (conn) => Effect.sync(() => conn.destroy()),
    )

  const connect = (address: string): Effect.Effect<Connection.Connection, TransportError.TransportError, Scope.Scope> =>
    Effect.gen(function* () {
      const target = Address.parse(address)
      if (target === undefined) return yield* invalidAddress(address)
      const conn = yield* dial(target).pipe(
        Effect.mapError(
          (error) => new TransportError.PeerUnreachable({ peer: address, reason: Describe.socketError(error) }),
        ),
        Effect.timeoutOrElse({
          duration: connectTimeout,
          orElse: () =>
            Effect.fail(
              new TransportError.PeerUnreachable({
                peer: address,
                reason: `no connection within ${Duration.toMillis(connectTimeout)} ms`,
              }),
            ),
        }),
      )
      const link = yield* SocketLink.fromNetSocket(conn, { remote: address, ...linkOptions })
      return yield* Connection.make(link, connectionOptions)
    })

  // One accepted socket: its connection is offered to the listener and lives until it closes.
  const serve =
    (accepted: Queue.Queue<Connection.Connection, Cause.Done>) =>
    (socket: Socket.Socket): Effect.Effect<void> =>
      Effect.gen(function* () {
        const raw = yield* Effect.serviceOption(NodeSocket.NetSocket)
        // The Node socket itself when the server provides it (it always does for TCP and TLS): the
        // direct link does far less work per byte than the generic one over `socket`.
        const link = yield* Option.match(raw, {
          onNone: () => SocketLink.make(socket, { remote: "unknown peer", ...linkOptions }),
          onSome: (conn) => {
            conn.setNoDelay(noDelay)
            const remote = Address.format(conn.remoteAddress ?? "unknown", conn.remotePort ?? 0)
            return SocketLink.fromNetSocket(conn, { remote, ...linkOptions })
          },
        })
        const connection = yield* Connection.make(link, connectionOptions)
        if (yield* Queue.offer(accepted, connection)) yield* connection.closed
      }).pipe(Effect.scoped, Effect.ignore)

  const listen = (address: string): Effect.Effect<Transport.Listener, TransportError.TransportError, Scope.Scope> =>
    Effect.gen(function* () {
      const target = Address.parse(address)
      if (target === undefined) return yield* invalidAddress(address)
      const listenOptions = { host: target.host, port: target.port, noDelay }
      const server = yield* (
        tlsServer === undefined
          ? NodeSocketServer.make(listenOptions)
          : NodeSocketServer.makeTls({ ...tlsServer, ...listenOptions })
      ).pipe(
        Effect.mapError(
          (error) => new TransportError.PeerUnreachable({ peer: address, reason: Describe.serverError(error) }),
        ),
      )
      const port = server.address._tag === "UnixPathAddress" ? target.port : server.address.port
      const accepted = yield* Queue.unbounded<Connection.Connection, Cause.Done>()
      yield* Effect.addFinalizer(() => Queue.end(accepted))
      // Forked after the server: on close its connections end before the server waits for them.
      yield* Effect.forkScoped(server.run(serve(accepted)))
      // One connection per pull: a reader that stops early leaves the rest queued.
      return {
        address: Address.format(target.host, port),
        connections: Stream.fromEffectRepeat(Queue.take(accepted)),
      }
    })

  return Transport.Transport.of({ connect, listen })
}

const ignoreError = (_error: unknown) => undefined

/**
 * The TCP transport as a Layer providing `Transport`.
 *
 * @example
 * ```ts
 * import { NodeTransport } from "@fedguard/transport-node"
 *
 * const TransportLive = NodeTransport.layer({ writeTimeout: "10 seconds", windowBytes: 4 * 1024 * 1024 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options?: Options): Layer.Layer<Transport.Transport> =>
  Layer.succeed(Transport.Transport, make(options))
