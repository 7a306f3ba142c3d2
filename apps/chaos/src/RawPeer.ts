/**
 * A hostile peer on a raw TCP socket: it writes whatever bytes the campaign
 * chooses (garbage, truncated frames, a byte a second, forged handshakes)
 * and reads what the server answers through the transport's own
 * `FrameDecoder`, so it can take the challenge's nonce like a client would.
 *
 * Its `remote` is the address the server sees (`127.0.0.1:PORT`), which the
 * invariants use to tell that no hostile connection was ever welcomed.
 *
 * @since 0.1.0
 */
import * as net from "node:net"
import { Auth, Protocol } from "@fedguard/app-kit"
import { Envelope, type Frame, FrameCodec } from "@fedguard/transport"
import { Effect, Option, Queue, Redacted, Result, Schema, type Scope, Stream } from "effect"

/**
 * The socket could not be opened.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectFailed extends Schema.TaggedError<ConnectFailed>()("ConnectFailed", {
  address: Schema.String,
  reason: Schema.String,
}) {}

/**
 * An open raw connection:
 *
 * - `remote`: how the server names it (`127.0.0.1:51234`);
 * - `write(bytes)`: true once the kernel took them, false when the socket
 *   is closed or broke (the server hung up: expected for garbage);
 * - `next(within)`: the next frame the server sent, `None` at its end or
 *   after `within`;
 * - `closed`: whether the server ended the connection.
 *
 * @since 0.1.0
 * @category models
 */
export interface RawPeer {
  readonly remote: string
  readonly write: (bytes: Uint8Array) => Effect.Effect<boolean>
  readonly next: (within: number) => Effect.Effect<Option.Option<Frame.Frame>>
  readonly closed: () => boolean
}

/**
 * Opens a raw connection to `host:port` (from `localAddress` when given),
 * destroyed when the Scope closes.
 *
 * @since 0.1.0
 * @category constructors
 */
export const open = (
  host: string,
  port: number,
  localAddress?: string,
): Effect.Effect<RawPeer, ConnectFailed, Scope.Scope> =>
  Effect.gen(function* () {
    const frames = yield* Queue.unbounded<Frame.Frame, import("effect").Cause.Done>()
    const socket = yield* Effect.acquireRelease(
      Effect.callback<net.Socket, ConnectFailed>((resume) => {
        const socket = net.connect(localAddress === undefined ? { host, port } : { host, port, localAddress })
        const onError = (error: Error) =>
          resume(Effect.fail(new ConnectFailed({ address: `${host}:${port}`, reason: error.message })))
        socket.once("error", onError)
        socket.once("connect", () => {
          socket.off("error", onError)
          resume(Effect.succeed(socket))
        })
      }),
      (socket) => Effect.sync(() => socket.destroy()),
    )
    let ended = false
    const decoder = new FrameCodec.FrameDecoder({ peer: "server" })
    socket.on("data", (bytes: Buffer) => {
      const decoded = decoder.push(new Uint8Array(bytes))
      if (Result.isSuccess(decoded)) for (const frame of decoded.success) Queue.offerUnsafe(frames, frame)
    })
    const end = () => {
      ended = true
      Queue.endUnsafe(frames)
    }
    socket.on("error", end)
    socket.on("close", end)
    return {
      remote: `${socket.localAddress}:${socket.localPort}`,
      write: (bytes) =>
        Effect.callback<boolean>((resume) => {
          if (ended || socket.destroyed) return resume(Effect.succeed(false))
          socket.write(bytes, (error) => resume(Effect.succeed(error == null)))
        }),
      next: (within) =>
        Queue.take(frames).pipe(
          Effect.option,
          Effect.timeoutOption(within),
          Effect.map((found) => Option.flatten(found)),
        ),
      closed: () => ended,
    } satisfies RawPeer
  })

/**
 * The source address of every connection that must never be welcomed
 * (impostors, pre-authentication garbage): 127.0.0.2, which nothing else
 * connects from (honest clients and authenticated hostile peers use
 * 127.0.0.1). Linux routes all of 127.0.0.0/8 to the loopback interface.
 * The kernel hands a closed connection's local port to a new one within
 * seconds when connections come and go fast; on its own address an
 * impostor can share a port only with another impostor, never with a peer
 * that may be welcomed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const impostorAddress = "127.0.0.2"

/**
 * Opens a raw connection like `open`, from `impostorAddress`, and adds its
 * `remote` to `remotes` before anything is sent on it.
 *
 * @since 0.1.0
 * @category constructors
 */
export const openImpostor = (
  host: string,
  port: number,
  remotes: Array<string>,
): Effect.Effect<RawPeer, ConnectFailed, Scope.Scope> =>
  Effect.tap(open(host, port, impostorAddress), (peer) =>
    Effect.sync(() => {
      remotes.push(peer.remote)
    }),
  )

/**
 * The bytes of one frame carrying protocol `message`.
 *
 * @since 0.1.0
 * @category frames
 */
export const messageFrame = (message: Protocol.Message): Uint8Array =>
  FrameCodec.encodeToBytes({ _tag: "Message", envelope: Protocol.toEnvelope(message) })

/**
 * The bytes of one frame carrying an envelope with any tag and body.
 *
 * @since 0.1.0
 * @category frames
 */
export const envelopeFrame = (tag: string, body: Schema.Json): Uint8Array =>
  FrameCodec.encodeToBytes({ _tag: "Message", envelope: Envelope.make(tag, body) })

/**
 * Waits (up to `within` ms) for the server's challenge and returns its nonce.
 *
 * @since 0.1.0
 * @category handshake
 */
export const challenge = (peer: RawPeer, within: number): Effect.Effect<Option.Option<string>> =>
  Effect.map(peer.next(within), (frame) =>
    Option.flatMap(frame, (f) => {
      if (f._tag !== "Message" || f.envelope.tag !== "challenge") return Option.none()
      const body = f.envelope.body
      return typeof body === "object" && body !== null && "nonce" in body && typeof body.nonce === "string"
        ? Option.some(body.nonce)
        : Option.none()
    }),
  )

/**
 * Reads frames until the server's `welcome` (`true`), a `refused` or the end
 * of the connection (`false`), at most `within` ms in all.
 *
 * @since 0.1.0
 * @category handshake
 */
export const welcomed = (peer: RawPeer, within: number): Effect.Effect<boolean> =>
  Stream.fromEffectRepeat(peer.next(within)).pipe(
    Stream.takeWhile(Option.isSome),
    Stream.map((frame) => (frame.value._tag === "Message" ? frame.value.envelope.tag : "")),
    Stream.filter((tag) => tag === "welcome" || tag === "refused"),
    Stream.runHead,
    Effect.timeoutOption(within),
    Effect.map((found) => Option.isSome(found) && Option.isSome(found.value) && found.value.value === "welcome"),
  )

/**
 * A join with a correct proof of `secret` for `nonce` and `id` (what an
 * honest client sends).
 *
 * @since 0.1.0
 * @category handshake
 */
export const join = (secret: string, nonce: string, id: string, samples = 100): Protocol.Message => ({
  _tag: "join",
  id,
  proof: Auth.prove(Redacted.make(secret), nonce, id),
  samples,
})
