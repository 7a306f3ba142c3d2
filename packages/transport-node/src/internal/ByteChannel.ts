/**
 * The byte pipe under a `SocketLink`: batches of received bytes, writes that
 * resolve once the socket accepted them, half-close and destroy. Two
 * implementations: over an `effect/socket` `Socket` (any transport), and
 * over a Node `net.Socket` directly (what `NodeTransport` uses, because it
 * reads and writes with far less work per byte).
 */
import type * as Net from "node:net"
import { TransportError } from "@fedguard/transport"
import type { Array as Arr } from "effect"
import { Clock, Duration, Effect, Exit, Scope } from "effect"
import * as Socket from "effect/socket/Socket"
import * as Describe from "./describe.ts"
import * as ReadBufferReclaimer from "./ReadBufferReclaimer.ts"

/** Why input ended: the peer ended its side (`clean`), or the socket broke. */
export type EndOfInput = { readonly clean: true } | { readonly clean: false; readonly reason: string }

/** A byte pipe in the Scope of whoever made it. */
export interface ByteChannel {
  /** Every buffer received since the last read (at least one); fails once input has ended. */
  readonly read: Effect.Effect<ReadonlyArray<Uint8Array>, EndOfInput>
  /**
   * Writes `parts` back to back and resolves once the socket has accepted them, waiting for it to
   * drain at most `writeTimeout` (`SendTimeout`); a broken socket fails with `ConnectionClosed`.
   */
  readonly write: (parts: Arr.NonEmptyReadonlyArray<Uint8Array>) => Effect.Effect<void, TransportError.TransportError>
  /** Ends our side: bytes already accepted are flushed, then the peer sees end of stream. */
  readonly halfClose: Effect.Effect<void>
  /** Lets go of the socket at once. */
  readonly destroy: Effect.Effect<void>
}

interface Settings {
  readonly remote: string
  readonly writeTimeout: Duration.Duration
  /** Bytes read (per process) between two forced scavenges of dead read buffers; 0 turns it off. */
  readonly reclaimEveryBytes: number
}

const errors = ({ remote, writeTimeout }: Settings) => ({
  closed: (reason: string) => new TransportError.ConnectionClosed({ peer: remote, reason }),
  sendTimeout: () =>
    Effect.fail(new TransportError.SendTimeout({ peer: remote, timeoutMs: Duration.toMillis(writeTimeout) })),
})

const clean: EndOfInput = { clean: true }

/**
 * Over an `effect/socket` `Socket`: its paused-mode reader (one socket read per pull) and writer
 * (which waits for `drain` whenever a write lands above the stream's high-water mark).
 */
export const fromSocket = Effect.fnUntraced(function* (
  socket: Socket.Socket,
  settings: Settings,
): Effect.fn.Return<ByteChannel, Socket.SocketError, Scope.Scope> {
  const scope = yield* Effect.scope
  const { closed, sendTimeout } = errors(settings)
  const pull = yield* Socket.readerBytes(socket)
  // The writer lives in its own Scope: closing it is how effect/socket half-closes (`end()`).
  const writerScope = yield* Scope.fork(scope)
  const writer = yield* Scope.provide(socket.writer, writerScope)
  const endOf = (error: Socket.SocketError): EndOfInput =>
    error.reason._tag === "SocketCloseError" && error.reason.code === 1000
      ? clean
      : { clean: false, reason: Describe.socketError(error) }
  return {
    read: Effect.mapError(pull, endOf),
    write: (parts) =>
      (parts.length === 1 ? writer.write(parts[0]) : writer.writeAll(parts)).pipe(
        Effect.mapError((error) => closed(Describe.socketError(error))),
        Effect.timeoutOrElse({ duration: settings.writeTimeout, orElse: sendTimeout }),
      ),
    halfClose: Scope.close(writerScope, Exit.void),
    destroy: Effect.ignore(writer.write(new Socket.CloseEvent(1000))),
  }
})

/**
 * Bytes read ahead of the link before the socket is paused. The kernel's buffers hold the rest,
 * and TCP's own window then holds the peer: memory stays bounded whatever the peer sends.
 */
const readAheadBytes = 1024 * 1024

/**
 * Over a Node socket directly. Reads run in flowing mode into a bounded list: every buffer the
 * socket delivered since the last read comes back at once (Node reads up to 64 KiB per read, up
 * to 32 reads per turn of the event loop), so the per-read work of the layers above is paid once
 * per batch rather than once per 64 KiB, and no buffer is copied. A write completes at once when
 * the kernel took every byte, and only otherwise waits for the socket to flush it (a chunk larger
 * than the stream's high-water mark no longer waits for `drain` when nothing is left to drain).
 */
export const fromNetSocket = (conn: Net.Socket, settings: Settings): Effect.Effect<ByteChannel, never, Scope.Scope> =>
  Effect.gen(function* () {
    const { closed } = errors(settings)
    const scope = yield* Effect.scope
    const clock = yield* Clock.Clock
    let received: Array<Uint8Array> = []
    let receivedBytes = 0
    let pausedForBound = false
    let end: EndOfInput | undefined
    let waiter: (() => void) | undefined

    const wake = () => {
      const resume = waiter
      waiter = undefined
      resume?.()
    }
    const onData = (chunk: Uint8Array) => {
      ReadBufferReclaimer.received(chunk.byteLength, settings.reclaimEveryBytes)
      received.push(chunk)
      receivedBytes += chunk.byteLength
      if (receivedBytes >= readAheadBytes && !pausedForBound) {
        pausedForBound = true
        conn.pause()
      }
      wake()
    }
    const ended = (why: EndOfInput) => {
      end ??= why
      wake()
    }
    const onEnd = () => ended(clean)
    const onError = (error: unknown) => ended({ clean: false, reason: Describe.cause(error) })
    const onClose = (hadError: boolean) =>
      ended(hadError ? { clean: false, reason: "the socket closed abruptly" } : clean)
    conn.on("data", onData)
    conn.on("end", onEnd)
    conn.on("error", onError)
    conn.on("close", onClose)
    conn.resume()
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        conn.off("data", onData)
        conn.off("end", onEnd)
        conn.off("close", onClose)
        // An 'error' listener stays: Node would throw an unheard one.
        wake()
      }),
    )

    const takeReceived = (): ReadonlyArray<Uint8Array> => {
      const batch = received
      received = []
      receivedBytes = 0
      if (pausedForBound) {
        pausedForBound = false
        conn.resume()
      }
      return batch
    }
    // Buffers first, then the end: what arrived before the peer ended its side is always read.
    const read: Effect.Effect<ReadonlyArray<Uint8Array>, EndOfInput> = Effect.suspend(() => {
      if (receivedBytes > 0) return Effect.succeed(takeReceived())
      if (end !== undefined) return Effect.fail(end)
      // A resumed fiber runs at once, inside Node's 'data' event: yielding first lets every read of
      // this turn of the event loop land in the batch before the fiber takes it.
      return Effect.callback<void>((resume) => {
        waiter = () => resume(Effect.void)
        return Effect.sync(() => {
          waiter = undefined
        })
      }).pipe(Effect.andThen(Effect.yieldNow), Effect.andThen(read))
    })

    // A write Node has not flushed yet: settled by its callback, or by the write timeout.
    interface PendingWrite {
      since: number
      outcome: Exit.Exit<void, TransportError.TransportError> | undefined
      resume: ((outcome: Exit.Exit<void, TransportError.TransportError>) => void) | undefined
    }
    const settle = (pending: PendingWrite, outcome: Exit.Exit<void, TransportError.TransportError>) => {
      if (pending.outcome !== undefined) return
      pending.outcome = outcome
      if (blocked === pending) blocked = undefined
      pending.resume?.(outcome)
    }

    // writeTimeout without a timer per write: the write left waiting for the socket is `blocked`,
    // and one fiber, running only while writes wait, fails it once it has waited writeTimeout
    // (checked every tenth of it, at most every second). A timer raced against each write cost two
    // fibers and a timer per blocked chunk.
    const timeoutMs = Duration.toMillis(settings.writeTimeout)
    const checkEvery = Duration.millis(Math.min(1000, Math.max(10, timeoutMs / 10)))
    const timedOut = Exit.fail(new TransportError.SendTimeout({ peer: settings.remote, timeoutMs }))
    let blocked: PendingWrite | undefined
    let watching = false
    const watch = Effect.gen(function* () {
      while (blocked !== undefined) {
        yield* Effect.sleep(checkEvery)
        if (blocked !== undefined && clock.currentTimeMillisUnsafe() - blocked.since >= timeoutMs) {
          settle(blocked, timedOut)
        }
      }
    }).pipe(
      Effect.ensuring(
        Effect.sync(() => {
          watching = false
        }),
      ),
    )

    const write = (parts: Arr.NonEmptyReadonlyArray<Uint8Array>): Effect.Effect<void, TransportError.TransportError> =>
      Effect.suspend(() => {
        if (conn.destroyed || conn.writableEnded) return Effect.fail(closed("the socket closed"))
        // Node calls a write's callback once the bytes reached the kernel, or with the error that
        // stopped them (a destroyed socket fails every pending write).
        const pending: PendingWrite = { since: 0, outcome: undefined, resume: undefined }
        const last = parts.length - 1
        if (last > 0) conn.cork()
        for (let i = 0; i < last; i++) conn.write(parts[i]!)
        conn.write(parts[last]!, (error) =>
          settle(pending, error == null ? Exit.void : Exit.fail(closed(Describe.cause(error)))),
        )
        if (last > 0) conn.uncork()
        // The kernel took every byte: nothing waits in userland, the next frame may follow at once.
        if (conn.writableLength === 0 || pending.outcome !== undefined) return pending.outcome ?? Effect.void
        pending.since = clock.currentTimeMillisUnsafe()
        blocked = pending
        const flushed = Effect.callback<void, TransportError.TransportError>((resume) => {
          if (pending.outcome !== undefined) return resume(pending.outcome)
          pending.resume = resume
          // Interrupted while waiting: the socket still holds the bytes, but nobody waits for them.
          return Effect.sync(() => {
            if (blocked === pending) blocked = undefined
          })
        })
        if (watching) return flushed
        watching = true
        return Effect.andThen(Effect.forkIn(watch, scope), flushed)
      })

    return {
      read,
      write,
      halfClose: Effect.sync(() => {
        if (!conn.writableEnded) conn.end()
      }),
      destroy: Effect.sync(() => {
        conn.destroy()
      }),
    } satisfies ByteChannel
  })
