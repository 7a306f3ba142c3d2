/**
 * A `Connection.Link` over an `effect/socket` `Socket`: length-prefixed frames
 * through `FrameCodec`, writes that wait for the socket to accept the bytes,
 * and a close that flushes before it lets go of the socket.
 *
 * @since 0.1.0
 */
import { type Connection, type Frame, FrameCodec, TransportError } from "@fedguard/transport"
import { type Array as Arr, Cause, Duration, Effect, Exit, Result, Scope, Stream } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Describe from "./internal/describe.ts"

/**
 * How a link frames and bounds its socket.
 *
 * - `remote`: the peer's address, used in every error this link reports.
 * - `maxFrameBytes`: the largest frame accepted from the peer and sent to it
 *   (default `FrameCodec.defaultMaxFrameBytes`, 1 MiB). A peer declaring more
 *   fails the read with `FrameTooLarge` before anything is buffered.
 * - `writeTimeout`: how long one frame may wait for the socket to accept it
 *   (the kernel buffers are full because the peer stopped reading) before the
 *   write fails with `SendTimeout` (default 30 seconds).
 * - `closeTimeout`: when the link's Scope closes, how long it waits for the
 *   peer to finish its side after ours was ended, so that the last frames are
 *   not cut off by a reset (default 2 seconds). The socket is destroyed after.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly remote: string
  readonly maxFrameBytes?: number | undefined
  readonly writeTimeout?: Duration.Input | undefined
  readonly closeTimeout?: Duration.Input | undefined
}

/**
 * The defaults of `Options`: 1 MiB frames, a 30 second write timeout and a 2
 * second close timeout.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults = {
  maxFrameBytes: FrameCodec.defaultMaxFrameBytes,
  writeTimeout: Duration.seconds(30),
  closeTimeout: Duration.seconds(2),
} as const

/**
 * Opens the socket (for a client socket this dials) and returns the link over
 * it, living in the caller's Scope.
 *
 * - `write(frame)` encodes the frame as a header plus the chunk's untouched
 *   bytes and resolves once the socket accepted them: Node's `write()` returns
 *   `false` above the socket's high-water mark and the write then waits for
 *   `drain`, so at most one frame sits in userland above the kernel buffers.
 *   A write that does not drain within `writeTimeout` fails with
 *   `SendTimeout`; a write to a broken socket with `ConnectionClosed`.
 * - `read` decodes frames incrementally (the `FrameCodec` format; chunk
 *   payloads are handed on as views of the socket's buffers, piece by piece,
 *   instead of being copied into one buffer per chunk). It fails with
 *   `DecodeError` / `FrameTooLarge` on bad input (an oversized frame before
 *   its body is buffered), with `ConnectionClosed` when the socket breaks or
 *   the peer ends it without a `Close` frame (a peer process that died), and
 *   ends after the peer's `Close` frame and end of stream.
 * - `close` half-closes the socket: bytes already accepted are flushed, then
 *   the peer sees end of stream.
 *
 * When the Scope closes, the link half-closes, waits up to `closeTimeout` for
 * the peer to end its side (discarding what it still sends), then destroys the
 * socket.
 *
 * @example
 * ```ts
 * import { Connection } from "@fedguard/transport"
 * import { SocketLink } from "@fedguard/transport-node"
 * import { NodeSocket } from "@effect/platform-node"
 * import { Effect } from "effect"
 *
 * const connection = Effect.gen(function* () {
 *   const socket = yield* NodeSocket.makeNet({ host: "127.0.0.1", port: 7070 })
 *   const link = yield* SocketLink.make(socket, { remote: "127.0.0.1:7070" })
 *   return yield* Connection.make(link)
 * })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  socket: Socket.Socket,
  options: Options,
): Effect.fn.Return<Connection.Link, Socket.SocketError, Scope.Scope> {
  const remote = options.remote
  const maxFrameBytes = options.maxFrameBytes ?? defaults.maxFrameBytes
  const writeTimeout = options.writeTimeout ?? defaults.writeTimeout
  const writeTimeoutMs = Duration.toMillis(writeTimeout)
  const closeTimeout = options.closeTimeout ?? defaults.closeTimeout
  const scope = yield* Effect.scope

  const pull = yield* Socket.readerBytes(socket)
  // The writer lives in its own Scope: closing it is how effect/socket half-closes (`end()`).
  const writerScope = yield* Scope.fork(scope)
  const writer = yield* Scope.provide(socket.writer, writerScope)
  // Chunk payloads are handed on as views of what the socket read, not assembled.
  const decoder = new FrameCodec.FrameDecoder({ peer: remote, maxFrameBytes, streamChunks: true })
  let closing = false
  let sawClose = false

  const closed = (reason: string) => new TransportError.ConnectionClosed({ peer: remote, reason })
  const sendTimeout = () => Effect.fail(new TransportError.SendTimeout({ peer: remote, timeoutMs: writeTimeoutMs }))
  const brokenWrite = (error: Socket.SocketError) => closed(Describe.socketError(error))

  const write = (frame: Frame.Frame): Effect.Effect<void, TransportError.TransportError> => {
    if (closing) return Effect.fail(closed("the link is closed"))
    const parts = FrameCodec.encode(frame)
    // The length prefix counts everything after itself; refuse here what the peer would refuse.
    const size = parts.length === 1 ? parts[0].byteLength - 4 : parts[0].byteLength - 4 + parts[1].byteLength
    if (size > maxFrameBytes)
      return Effect.fail(new TransportError.FrameTooLarge({ peer: remote, size, maxBytes: maxFrameBytes }))
    return (parts.length === 1 ? writer.write(parts[0]) : writer.writeAll(parts)).pipe(
      Effect.mapError(brokenWrite),
      Effect.timeoutOrElse({ duration: writeTimeout, orElse: sendTimeout }),
    )
  }

  // End of input: after the peer's Close frame (or our own close) it is the graceful end;
  // otherwise the peer vanished mid-conversation, which callers must see as a failure.
  const endOfInput = (error: Socket.SocketError): Effect.Effect<never, TransportError.TransportError | Cause.Done> => {
    const clean = error.reason._tag === "SocketCloseError" && error.reason.code === 1000
    if (clean && (sawClose || closing) && !decoder.insideFrame) return Cause.done()
    if (clean) {
      return Effect.fail(
        closed(
          decoder.insideFrame
            ? "the peer ended the stream inside a frame"
            : "the peer ended the stream without a close frame",
        ),
      )
    }
    return Effect.fail(closed(Describe.socketError(error)))
  }

  const pullFrames: Effect.Effect<
    Arr.NonEmptyReadonlyArray<Frame.Frame>,
    TransportError.TransportError | Cause.Done
  > = Effect.gen(function* () {
    while (true) {
      const chunks = yield* Effect.catch(pull, endOfInput)
      let frames: Array<Frame.Frame> | undefined
      for (const chunk of chunks) {
        const decoded = decoder.push(chunk)
        if (Result.isFailure(decoded)) return yield* Effect.fail(decoded.failure)
        for (const frame of decoded.success) {
          if (frame._tag === "Close") sawClose = true
        }
        frames = frames === undefined ? decoded.success : frames.concat(decoded.success)
      }
      if (frames !== undefined && frames.length > 0) return frames as Arr.NonEmptyArray<Frame.Frame>
    }
  })

  const halfClose = Effect.suspend(() => {
    closing = true
    return Scope.close(writerScope, Exit.void)
  })

  // Runs before the reader's own release (registered after it): the reader is still usable here.
  yield* Effect.addFinalizer(() =>
    halfClose.pipe(
      Effect.andThen(pull.pipe(Effect.forever, Effect.ignore, Effect.timeoutOption(closeTimeout))),
      Effect.andThen(Effect.ignore(writer.write(new Socket.CloseEvent(1000)))),
    ),
  )

  return {
    remote,
    write,
    read: Stream.fromPull(Effect.succeed(pullFrames)),
    close: halfClose,
  } satisfies Connection.Link
})
