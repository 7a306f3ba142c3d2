/**
 * One connection between two peers: a control lane for messages and a bulk
 * lane for chunked byte streams with cumulative ACK offsets and a bounded
 * in-flight window, over any ordered frame `Link` (TCP, in-memory).
 *
 * @since 0.1.0
 */
import { Array as Arr, type Cause, Clock, Deferred, Effect, Exit, Queue, type Schema, type Scope, Stream } from "effect"
import type { Envelope } from "./Envelope.ts"
import type { Frame } from "./Frame.ts"
import { ConnectionClosed, DecodeError, Rejected, type TransportError } from "./TransportError.ts"

/**
 * An ordered, reliable pipe of frames: what a concrete transport (a TCP
 * socket, an in-memory channel) provides. `write` resolves when the medium
 * has accepted the frame, honouring its backpressure; `read` ends when the
 * peer closes and fails on a broken or undecodable stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface Link {
  readonly remote: string
  readonly write: (frame: Frame) => Effect.Effect<void, TransportError>
  readonly read: Stream.Stream<Frame, TransportError>
  readonly close: Effect.Effect<void>
}

/**
 * Tuning of a connection. Defaults: 64 KiB chunks, a 1 MiB in-flight window
 * per byte stream, acks every quarter window, 4 MiB of buffered bytes
 * accepted per incoming stream, and 1024 queued inbound items.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  /** Largest chunk a byte stream is cut into. */
  readonly chunkBytes?: number | undefined
  /** Most bytes sent but not yet acknowledged, per outgoing stream. */
  readonly windowBytes?: number | undefined
  /**
   * How many consumed bytes the receiver of an outgoing stream may leave
   * unacknowledged before it sends an ack (it also acks the last byte at once,
   * and at least every 20 ms while it consumes). Default: a quarter of the
   * window; always at most `windowBytes - chunkBytes`, so that a sender held
   * at its window is always released. Smaller means finer `onProgress` and
   * more ack frames.
   */
  readonly ackBytes?: number | undefined
  /** Most bytes an incoming stream may buffer unconsumed; a sender past it is cut off. */
  readonly maxBufferedBytes?: number | undefined
  /** Inbound messages and stream announcements queued before reading pauses. */
  readonly inboundCapacity?: number | undefined
}

/**
 * What a byte stream is: an application tag (`"model"`, `"update"`), JSON
 * metadata (round number, sample count) and its size when known.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransferHeader {
  readonly tag: string
  readonly meta?: Schema.Json | undefined
  readonly totalBytes?: number | undefined
}

/**
 * Options of one outgoing byte stream. `onProgress` sees every advance of the
 * acknowledged offset (the cumulative bytes the receiver consumed), before
 * the sender resumes.
 *
 * A send waits for ACKs as long as the connection is open: a receiver that
 * stops consuming holds it at its window. To bound that wait, run the send
 * under `@fedguard/stall-guard`'s `AckProgressWatchdog.watch`, which reads
 * this callback (the former `idleTimeout` option was that, a second time).
 *
 * @since 0.1.0
 * @category models
 */
export interface SendBytesOptions {
  readonly onProgress?: ((ackedBytes: number) => Effect.Effect<void>) | undefined
}

/**
 * The outcome of a completed outgoing byte stream: every byte acknowledged.
 *
 * @since 0.1.0
 * @category models
 */
export interface TransferReceipt {
  readonly id: number
  readonly bytes: number
  readonly chunks: number
}

/**
 * A byte stream arriving from the peer. Pulling `bytes` is what acknowledges
 * them: a receiver that stops pulling stops the sender once its window is
 * full, so memory on both sides stays bounded whatever the stream's size.
 *
 * @since 0.1.0
 * @category models
 */
export interface IncomingTransfer {
  readonly id: number
  readonly tag: string
  readonly meta: Schema.Json
  readonly totalBytes: number | null
  readonly bytes: Stream.Stream<Uint8Array, TransportError>
  readonly abort: (reason: string) => Effect.Effect<void>
}

/**
 * One item of a connection's inbound stream, in the order the peer sent them.
 *
 * @since 0.1.0
 * @category models
 */
export type Inbound =
  | { readonly _tag: "Message"; readonly envelope: Envelope }
  | { readonly _tag: "Transfer"; readonly transfer: IncomingTransfer }

/**
 * Counters of a connection, for reports and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stats {
  readonly framesIn: number
  readonly framesOut: number
  readonly bytesIn: number
  readonly bytesOut: number
}

/**
 * A live connection to one peer.
 *
 * - `send` queues a message on the control lane (never behind bulk chunks).
 * - `sendBytes` streams bytes in chunks, waiting whenever `windowBytes` are
 *   unacknowledged, and completes when the receiver acknowledged every byte.
 * - `inbound` is the single stream of messages and incoming byte streams; it
 *   ends on a graceful close and fails with the reason otherwise.
 * - `close` sends a close frame, flushes it, and closes the link.
 *
 * @since 0.1.0
 * @category models
 */
export interface Connection {
  readonly remote: string
  readonly send: (envelope: Envelope) => Effect.Effect<void, TransportError>
  readonly sendBytes: <E = never>(
    header: TransferHeader,
    data: Stream.Stream<Uint8Array, E>,
    options?: SendBytesOptions,
  ) => Effect.Effect<TransferReceipt, TransportError | E>
  readonly inbound: Stream.Stream<Inbound, TransportError>
  readonly close: (reason?: string) => Effect.Effect<void>
  readonly closed: Effect.Effect<string>
  readonly isOpen: Effect.Effect<boolean>
  readonly stats: Effect.Effect<Stats>
}

interface Outgoing {
  acked: number
  sent: number
  failure: TransportError | undefined
  wake: Deferred.Deferred<void> | undefined
  readonly onProgress: ((ackedBytes: number) => Effect.Effect<void>) | undefined
}

interface Incoming {
  readonly queue: Queue.Queue<Uint8Array, TransportError | Cause.Done>
  // The sender's `ackBytes`: 1 (ack every piece) for a sender that did not say.
  readonly ackBytes: number
  received: number
  buffered: number
  consumed: number
  acked: number
  ackedAt: number
  // The sender's StreamEnd arrived: consuming the last received byte acknowledges at once.
  ended: boolean
}

// One item per pull, unlike `Stream.fromQueue`, which takes every queued item at once: a consumer
// that stops early (`Stream.runHead` for a handshake, `Stream.take(n)`) must leave the rest queued
// for the next reader instead of silently dropping it.
const takeEach = <A, E>(queue: Queue.Dequeue<A, E | Cause.Done>): Stream.Stream<A, Exclude<E, Cause.Done>> =>
  Stream.fromEffectRepeat(Queue.take(queue))

// The next item of a queue if one is waiting (none once the queue is done).
const pollUnsafe = <A, E>(queue: Queue.Dequeue<A, E>): A | undefined => {
  const taken = Queue.takeUnsafe(queue)
  return taken !== undefined && Exit.isSuccess(taken) ? taken.value : undefined
}

const defaults = {
  chunkBytes: 64 * 1024,
  windowBytes: 1024 * 1024,
  maxBufferedBytes: 4 * 1024 * 1024,
  inboundCapacity: 1024,
}

// Acks are coalesced by bytes (`ackBytes`), but a receiver that consumes slowly still reports
// progress this often, so that a watchdog on the sender's side sees a slow link as progressing.
const ackIntervalMs = 20

/**
 * Runs the connection protocol over a link. The reader and writer fibers
 * live in the caller's Scope: closing it closes the connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  link: Link,
  options: Options = {},
): Effect.fn.Return<Connection, never, Scope.Scope> {
  const chunkBytes = options.chunkBytes ?? defaults.chunkBytes
  const windowBytes = Math.max(options.windowBytes ?? defaults.windowBytes, chunkBytes)
  // A sender held at its window has more than `windowBytes - chunkBytes` unacknowledged: asking for
  // an ack at least that often guarantees the ack that releases it.
  const ackBytes = Math.max(1, Math.min(Math.floor(options.ackBytes ?? windowBytes / 4), windowBytes - chunkBytes))
  const maxBufferedBytes = Math.max(options.maxBufferedBytes ?? defaults.maxBufferedBytes, windowBytes)
  const peer = link.remote
  const clock = yield* Clock.Clock

  const control = yield* Queue.unbounded<Frame>()
  const bulk = yield* Queue.bounded<Frame>(2)
  const doorbell = yield* Queue.sliding<void>(1)
  const inbound = yield* Queue.bounded<Inbound, TransportError | Cause.Done>(
    options.inboundCapacity ?? defaults.inboundCapacity,
  )
  const closedWith = yield* Deferred.make<string>()
  const closeFlushed = yield* Deferred.make<void>()
  const outgoing = new Map<number, Outgoing>()
  const incoming = new Map<number, Incoming>()
  const abortedIncoming = new Set<number>()
  const stats = { framesIn: 0, framesOut: 0, bytesIn: 0, bytesOut: 0 }
  let nextId = 1
  let closedReason: string | undefined

  const wakeOutgoing = (state: Outgoing) => {
    const wake = state.wake
    state.wake = undefined
    if (wake !== undefined) Deferred.doneUnsafe(wake, Effect.void)
  }

  const pushControl = (frame: Frame): void => {
    Queue.offerUnsafe(control, frame)
    Queue.offerUnsafe(doorbell, undefined)
  }

  const enqueueControl = (frame: Frame) => Effect.sync(() => pushControl(frame))

  const enqueueBulk = (frame: Frame) =>
    Queue.offer(bulk, frame).pipe(Effect.andThen(Effect.sync(() => Queue.offerUnsafe(doorbell, undefined))))

  // Ends the connection once: every waiter and consumer learns why. A close frame
  // or a local close is graceful (inbound ends); anything else fails inbound.
  const shutdown = (reason: string, error: TransportError | undefined, graceful = false) =>
    Effect.suspend(() => {
      if (closedReason !== undefined) return Effect.void
      closedReason = reason
      const failure = error ?? new ConnectionClosed({ peer, reason })
      for (const state of outgoing.values()) {
        state.failure ??= failure
        wakeOutgoing(state)
      }
      // The writer is gone or about to be: a sender suspended on the full bulk lane must resume
      // (its offer returns false) and find the failure, instead of waiting for a drain that never comes.
      Queue.shutdownUnsafe(bulk)
      return Effect.gen(function* () {
        for (const state of incoming.values()) yield* Queue.fail(state.queue, failure)
        incoming.clear()
        if (graceful) yield* Queue.end(inbound)
        else yield* Queue.fail(inbound, failure)
        yield* Deferred.succeed(closedWith, reason)
        yield* link.close
      })
    })

  const protocolError = (reason: string, path?: string) =>
    new DecodeError(path === undefined ? { peer, reason } : { peer, reason, path })

  // Acknowledges what the consumer took, once `ackBytes` are unacknowledged, the stream is
  // consumed to its end, or `ackIntervalMs` passed since the last ack.
  const ackIncoming = (id: number, state: Incoming, bytes: number): void => {
    state.buffered -= bytes
    state.consumed += bytes
    if (closedReason !== undefined) return
    const now = clock.currentTimeMillisUnsafe()
    if (
      state.consumed - state.acked < state.ackBytes &&
      !(state.ended && state.consumed === state.received) &&
      now - state.ackedAt < ackIntervalMs
    ) {
      return
    }
    state.acked = state.consumed
    state.ackedAt = now
    pushControl({ _tag: "Ack", id, offset: state.consumed })
  }

  // The bytes of an incoming stream, one chunk per pull (a consumer that stops early leaves the
  // rest queued, as with `takeEach`); taking a chunk is what acknowledges it. A chunk already
  // queued is taken without suspending: on TCP this runs once per socket read.
  const incomingBytes = (id: number, state: Incoming): Stream.Stream<Uint8Array, TransportError> => {
    const deliver = (
      taken: Exit.Exit<Uint8Array, TransportError | Cause.Done>,
    ): Exit.Exit<Arr.NonEmptyReadonlyArray<Uint8Array>, TransportError | Cause.Done> => {
      if (Exit.isFailure(taken)) return Exit.failCause(taken.cause)
      ackIncoming(id, state, taken.value.byteLength)
      return Exit.succeed(Arr.of(taken.value))
    }
    const pull = Effect.suspend(() => {
      const taken = Queue.takeUnsafe(state.queue)
      return taken === undefined ? Effect.flatMap(Effect.exit(Queue.take(state.queue)), deliver) : deliver(taken)
    })
    return Stream.fromPull(Effect.succeed(pull))
  }

  const abortIncoming = (id: number, reason: string) =>
    Effect.suspend(() => {
      const state = incoming.get(id)
      if (state === undefined) return Effect.void
      incoming.delete(id)
      abortedIncoming.add(id)
      return Queue.fail(state.queue, new ConnectionClosed({ peer, reason: `transfer ${id} aborted: ${reason}` })).pipe(
        Effect.andThen(
          closedReason === undefined
            ? enqueueControl({ _tag: "StreamAbort", id, reason, origin: "receiver" })
            : Effect.void,
        ),
      )
    })

  // Handles one frame from the peer: `undefined` when that was done on the spot (chunks and acks,
  // the bulk of the traffic), otherwise the effect that does it.
  const dispatch = (frame: Frame): Effect.Effect<void, TransportError> | undefined => {
    stats.framesIn++
    switch (frame._tag) {
      case "Message":
        return Queue.offer(inbound, { _tag: "Message", envelope: frame.envelope }).pipe(Effect.asVoid)
      case "StreamOpen": {
        if (incoming.has(frame.id) || abortedIncoming.has(frame.id)) {
          return Effect.fail(protocolError(`stream ${frame.id} opened twice`, "id"))
        }
        return Effect.gen(function* () {
          const queue = yield* Queue.unbounded<Uint8Array, TransportError | Cause.Done>()
          const state: Incoming = {
            queue,
            ackBytes: frame.ackBytes ?? 1,
            received: 0,
            buffered: 0,
            consumed: 0,
            acked: 0,
            ackedAt: clock.currentTimeMillisUnsafe(),
            ended: false,
          }
          incoming.set(frame.id, state)
          const transfer: IncomingTransfer = {
            id: frame.id,
            tag: frame.tag,
            meta: frame.meta,
            totalBytes: frame.totalBytes,
            bytes: incomingBytes(frame.id, state),
            abort: (reason) => abortIncoming(frame.id, reason),
          }
          yield* Queue.offer(inbound, { _tag: "Transfer", transfer })
        })
      }
      case "Chunk": {
        const state = incoming.get(frame.id)
        if (state === undefined) {
          return abortedIncoming.has(frame.id)
            ? undefined
            : Effect.fail(protocolError(`chunk for unknown stream ${frame.id}`, "id"))
        }
        if (frame.offset !== state.received) {
          return Effect.fail(
            protocolError(
              `chunk of stream ${frame.id} at offset ${frame.offset}, expected ${state.received}`,
              "offset",
            ),
          )
        }
        state.received += frame.bytes.byteLength
        state.buffered += frame.bytes.byteLength
        stats.bytesIn += frame.bytes.byteLength
        if (state.buffered > maxBufferedBytes) {
          return abortIncoming(frame.id, `sender exceeded the ${maxBufferedBytes}-byte window`)
        }
        // Unbounded, so the offer always fits: `maxBufferedBytes` above is what bounds it.
        Queue.offerUnsafe(state.queue, frame.bytes)
        return undefined
      }
      case "StreamEnd": {
        const state = incoming.get(frame.id)
        if (state === undefined) return Effect.void
        incoming.delete(frame.id)
        if (frame.totalBytes !== state.received) {
          return Queue.fail(
            state.queue,
            protocolError(`stream ${frame.id} ended at ${frame.totalBytes} bytes, received ${state.received}`),
          ).pipe(Effect.asVoid)
        }
        state.ended = true
        // Consumed to the end before the end marker arrived: the rest of the ack is due now.
        const due = state.consumed === state.received && state.acked < state.consumed
        if (due) state.acked = state.consumed
        return Queue.end(state.queue).pipe(
          Effect.andThen(due ? enqueueControl({ _tag: "Ack", id: frame.id, offset: state.consumed }) : Effect.void),
        )
      }
      case "Ack": {
        const state = outgoing.get(frame.id)
        if (state === undefined || frame.offset <= state.acked) return undefined
        if (frame.offset > state.sent) {
          return Effect.fail(protocolError(`ack of stream ${frame.id} beyond the bytes sent`, "offset"))
        }
        state.acked = frame.offset
        // Progress is reported before the sender wakes, so that the last report precedes completion.
        if (state.onProgress === undefined) {
          wakeOutgoing(state)
          return undefined
        }
        return state.onProgress(frame.offset).pipe(Effect.ensuring(Effect.sync(() => wakeOutgoing(state))))
      }
      case "StreamAbort": {
        // The same id can name a stream in each direction: `origin` says which one is meant.
        const out = frame.origin === "sender" ? undefined : outgoing.get(frame.id)
        if (out !== undefined) {
          out.failure ??= new Rejected({ peer, reason: `transfer ${frame.id} aborted by receiver: ${frame.reason}` })
          wakeOutgoing(out)
          return Effect.void
        }
        if (frame.origin === "receiver") return Effect.void
        const state = incoming.get(frame.id)
        if (state === undefined) return Effect.void
        incoming.delete(frame.id)
        abortedIncoming.add(frame.id)
        return Queue.fail(
          state.queue,
          new ConnectionClosed({ peer, reason: `transfer ${frame.id} aborted by sender: ${frame.reason}` }),
        ).pipe(Effect.asVoid)
      }
      case "Close":
        return shutdown(`closed by peer: ${frame.reason}`, undefined, true)
    }
  }

  // Frames of one read in order, the synchronous ones without an effect each.
  const dispatchAll = (frames: ReadonlyArray<Frame>, from = 0): Effect.Effect<void, TransportError> => {
    for (let i = from; i < frames.length; i++) {
      const effect = dispatch(frames[i]!)
      if (effect === undefined) continue
      return i + 1 === frames.length
        ? effect
        : Effect.andThen(
            effect,
            Effect.suspend(() => dispatchAll(frames, i + 1)),
          )
    }
    return Effect.void
  }

  const writer = Effect.gen(function* () {
    while (true) {
      // Control first: a heartbeat or ack waits for at most the one bulk frame being written.
      const next = pollUnsafe(control) ?? pollUnsafe(bulk)
      if (next === undefined) {
        yield* Queue.take(doorbell)
        continue
      }
      yield* link.write(next)
      stats.framesOut++
      if (next._tag === "Chunk") stats.bytesOut += next.bytes.byteLength
      if (next._tag === "Close") yield* Deferred.succeed(closeFlushed, undefined)
    }
  }).pipe(Effect.catch((error: TransportError) => shutdown(error.message, error)))

  const reader = link.read.pipe(
    Stream.runForEachArray((frames) => dispatchAll(frames)),
    Effect.matchEffect({
      onFailure: (error) => shutdown(error.message, error),
      onSuccess: () => shutdown("connection ended without a close frame", undefined),
    }),
  )

  yield* Effect.forkScoped(writer)
  yield* Effect.forkScoped(reader)
  yield* Effect.addFinalizer(() => shutdown("closed locally", undefined, true))

  const failureOf = (state: Outgoing): TransportError | undefined =>
    state.failure ?? (closedReason === undefined ? undefined : new ConnectionClosed({ peer, reason: closedReason }))

  // Suspends until `ready` holds or the stream fails.
  const waitUntil = (state: Outgoing, ready: () => boolean): Effect.Effect<void, TransportError> =>
    Effect.suspend(() => {
      const failure = failureOf(state)
      if (failure !== undefined) return Effect.fail(failure)
      if (ready()) return Effect.void
      const wake = Deferred.makeUnsafe<void>()
      state.wake = wake
      return Deferred.await(wake).pipe(Effect.andThen(waitUntil(state, ready)))
    })

  const sendBytes = <E>(
    header: TransferHeader,
    data: Stream.Stream<Uint8Array, E>,
    sendOptions: SendBytesOptions = {},
  ): Effect.Effect<TransferReceipt, TransportError | E> =>
    Effect.suspend(() => {
      if (closedReason !== undefined) return Effect.fail(new ConnectionClosed({ peer, reason: closedReason }))
      const id = nextId++
      const state: Outgoing = {
        acked: 0,
        sent: 0,
        failure: undefined,
        wake: undefined,
        onProgress: sendOptions.onProgress,
      }
      outgoing.set(id, state)
      let chunks = 0
      let completed = false
      const sendPiece = (piece: Uint8Array) =>
        waitUntil(
          state,
          () => state.sent === state.acked || state.sent - state.acked + piece.byteLength <= windowBytes,
        ).pipe(
          Effect.andThen(
            Effect.suspend(() => {
              const offset = state.sent
              state.sent += piece.byteLength
              chunks++
              return enqueueBulk({ _tag: "Chunk", id, offset, bytes: piece })
            }),
          ),
        )
      const sendBuffer = (buffer: Uint8Array): Effect.Effect<void, TransportError> => {
        if (buffer.byteLength <= chunkBytes) return buffer.byteLength === 0 ? Effect.void : sendPiece(buffer)
        return Effect.gen(function* () {
          for (let start = 0; start < buffer.byteLength; start += chunkBytes) {
            yield* sendPiece(buffer.subarray(start, Math.min(start + chunkBytes, buffer.byteLength)))
          }
        })
      }
      return enqueueControl({
        _tag: "StreamOpen",
        id,
        tag: header.tag,
        meta: header.meta ?? null,
        totalBytes: header.totalBytes ?? null,
        ackBytes,
      }).pipe(
        Effect.andThen(Stream.runForEach(data, sendBuffer)),
        Effect.andThen(Effect.suspend(() => enqueueBulk({ _tag: "StreamEnd", id, totalBytes: state.sent }))),
        Effect.andThen(waitUntil(state, () => state.acked === state.sent)),
        Effect.map(() => {
          completed = true
          return { id, bytes: state.sent, chunks }
        }),
        Effect.ensuring(
          Effect.suspend(() => {
            outgoing.delete(id)
            return completed || closedReason !== undefined
              ? Effect.void
              : enqueueControl({ _tag: "StreamAbort", id, reason: "sender gave up", origin: "sender" })
          }),
        ),
      )
    })

  const close = (reason = "closed") =>
    Effect.suspend(() => {
      if (closedReason !== undefined) return Effect.void
      return enqueueControl({ _tag: "Close", reason }).pipe(
        Effect.andThen(Effect.timeoutOption(Deferred.await(closeFlushed), "1 second")),
        Effect.andThen(shutdown(`closed locally: ${reason}`, undefined, true)),
      )
    })

  return {
    remote: peer,
    send: (envelope) =>
      Effect.suspend(() =>
        closedReason === undefined
          ? enqueueControl({ _tag: "Message", envelope })
          : Effect.fail(new ConnectionClosed({ peer, reason: closedReason })),
      ),
    sendBytes,
    inbound: takeEach(inbound),
    close,
    closed: Deferred.await(closedWith),
    isOpen: Effect.sync(() => closedReason === undefined),
    stats: Effect.sync(() => ({ ...stats })),
  } satisfies Connection
})

/**
 * Collects an incoming byte stream into one buffer, failing with
 * `FrameTooLarge`-free `DecodeError` when it grows past `maxBytes` (a bound
 * the caller must choose: a peer's claim of size is not trusted).
 *
 * @since 0.1.0
 * @category combinators
 */
export const collectBytes = (transfer: IncomingTransfer, maxBytes: number): Effect.Effect<Uint8Array, TransportError> =>
  Effect.suspend(() => {
    const parts: Array<Uint8Array> = []
    let total = 0
    return transfer.bytes.pipe(
      Stream.runForEach((chunk) => {
        total += chunk.byteLength
        if (total > maxBytes) {
          return transfer.abort(`larger than ${maxBytes} bytes`).pipe(
            Effect.andThen(
              Effect.fail(
                new DecodeError({
                  peer: `transfer ${transfer.id}`,
                  reason: `more than ${maxBytes} bytes`,
                  path: "size",
                }),
              ),
            ),
          )
        }
        parts.push(chunk)
        return Effect.void
      }),
      Effect.map(() => {
        const out = new Uint8Array(total)
        let offset = 0
        for (const part of parts) {
          out.set(part, offset)
          offset += part.byteLength
        }
        return out
      }),
    )
  })
