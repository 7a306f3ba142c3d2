/**
 * The client side of liveness: a fiber that sends a heartbeat every interval
 * for as long as the session Scope is open, and reports `PeerLost` when the
 * server stops acknowledging.
 *
 * The sender knows nothing of the network: it calls the `send` function it is
 * given (e.g. `connection.send(Envelope.make(Heartbeat.heartbeatTag, beat))`)
 * and is fed the server's acks through `acknowledge`. A failed or stalled
 * send (one that does not complete within one interval) is logged, counted
 * and reported as `BeatSendFailed`; the loop goes on.
 *
 * Timing: the first beat leaves when the sender starts (seq 1), then one per
 * interval on a fixed grid (start + k·interval; a send that overran its slot
 * is followed by the next beat at once, without piling up). `PeerLost` fires
 * `peerTimeout` after the last ack (or after the start when none came),
 * inclusive, once; the sender keeps beating until its Scope closes, and no
 * beat leaves after that.
 *
 * @since 0.1.0
 */
import type { PeerId } from "@fedguard/transport"
import {
  Cause,
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Layer,
  Metric,
  PubSub,
  type Schema,
  type Scope,
  Stream,
} from "effect"
import type { Heartbeat, HeartbeatAck } from "./Heartbeat.ts"
import * as HeartbeatConfig from "./HeartbeatConfig.ts"
import * as HeartbeatMetrics from "./HeartbeatMetrics.ts"
import { AckReceived, BeatSendFailed, BeatSent, PeerLost, type SenderEvent } from "./SenderEvent.ts"

// Yields granted to input already received before a missed ack deadline counts.
const stallGraceYields = 8

/**
 * Options of a sender:
 *
 * - `from`: the client's own (authenticated) identity, stamped on each beat.
 * - `send`: delivers one beat to the server; its failures are logged, never
 *   fatal.
 * - `interval` (default 30 s): time between beats; also the bound on one
 *   `send`.
 * - `peerTimeout` (default 90 s): without an ack for this long, `PeerLost`.
 * - `status`: evaluated before each beat; its JSON value travels as the
 *   beat's `status` (omitted when `undefined`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options<E, R> {
  readonly from: PeerId.PeerId
  readonly send: (beat: Heartbeat) => Effect.Effect<void, E, R>
  readonly interval?: Duration.Input | undefined
  readonly peerTimeout?: Duration.Input | undefined
  readonly status?: Effect.Effect<Schema.Json | undefined, never, R> | undefined
}

/**
 * A running heartbeat sender:
 *
 * - `acknowledge(ack)`: feed the server's acks in; an ack for a seq not sent
 *   yet is ignored.
 * - `lost`: waits until the peer is lost and returns the `PeerLost` event.
 * - `lastSeq`: the seq of the latest beat handed to `send` (0 before any).
 * - `events` / `subscribe`: `BeatSent`, `BeatSendFailed`, `AckReceived`,
 *   `PeerLost` as a Stream (`subscribe` subscribes at once).
 *
 * @since 0.1.0
 * @category services
 */
export class HeartbeatSender extends Context.Service<
  HeartbeatSender,
  {
    readonly acknowledge: (ack: HeartbeatAck) => Effect.Effect<void>
    readonly lost: Effect.Effect<PeerLost>
    readonly lastSeq: Effect.Effect<number>
    readonly events: Stream.Stream<SenderEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<SenderEvent>, never, Scope.Scope>
  }
>()("@fedguard/heartbeat/HeartbeatSender") {}

/**
 * Starts a sender in the current Scope (the client's session): the beat loop
 * and the ack watchdog are fibers forked into it and stop when it closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { PeerId } from "@fedguard/transport"
 * import { HeartbeatSender } from "@fedguard/heartbeat"
 *
 * const session = Effect.scoped(Effect.gen(function* () {
 *   const sender = yield* HeartbeatSender.make({
 *     from: PeerId.make("client-1"),
 *     send: (beat) => Effect.log("would send", beat),
 *   })
 *   // route incoming acks to sender.acknowledge(ack) ...
 *   yield* sender.lost // then close the session and reconnect with backoff
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <E, R>(options: Options<E, R>) => Effect.Effect<HeartbeatSender["Service"], never, Scope.Scope | R> =
  Effect.fnUntraced(function* <E, R>(options: Options<E, R>) {
    const intervalMs = Duration.toMillis(options.interval ?? HeartbeatConfig.defaults.interval)
    const peerTimeoutMs = Duration.toMillis(options.peerTimeout ?? HeartbeatConfig.defaults.peerTimeout)
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    const pubsub = yield* PubSub.unbounded<SenderEvent>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const lostDeferred = Deferred.makeUnsafe<PeerLost>()

    const startedAt = now()
    let lastSeq = 0
    let lastSentAt = startedAt
    let lastAckAt = startedAt
    let lastAckSeq: number | undefined

    const sendFailed = (seq: number, cause: Cause.Cause<unknown>) => {
      const error = Cause.pretty(cause)
      PubSub.publishUnsafe(pubsub, new BeatSendFailed({ seq, at: now(), error }))
      return Effect.andThen(
        Effect.logWarning(`heartbeat ${seq} could not be sent; next beat in ${intervalMs} ms`, cause),
        Metric.update(HeartbeatMetrics.beatSendFailures, 1),
      )
    }

    const beatOnce = Effect.gen(function* () {
      const seq = ++lastSeq
      const status = options.status === undefined ? undefined : yield* options.status
      const beat: Heartbeat = status === undefined ? { from: options.from, seq } : { from: options.from, seq, status }
      lastSentAt = now()
      yield* options.send(beat).pipe(
        Effect.timeout(intervalMs),
        Effect.matchCauseEffect({
          onFailure: (cause) => (Cause.hasInterruptsOnly(cause) ? Effect.failCause(cause) : sendFailed(seq, cause)),
          onSuccess: () => {
            PubSub.publishUnsafe(pubsub, new BeatSent({ seq, at: now() }))
            return Effect.andThen(
              Metric.update(HeartbeatMetrics.beatsSent, 1),
              Effect.logDebug(`heartbeat ${seq} sent`),
            )
          },
        }),
      )
    })

    yield* Effect.forkScoped(
      Effect.gen(function* () {
        let next = startedAt
        while (true) {
          yield* beatOnce
          next += intervalMs
          const current = now()
          if (next < current) next = current
          yield* Effect.sleep(next - current)
        }
      }),
    )

    yield* Effect.forkScoped(
      Effect.gen(function* () {
        while (true) {
          const deadline = lastAckAt + peerTimeoutMs
          const current = now()
          if (current >= deadline) {
            // A stalled event loop (a starved process) runs expired timers before it reads
            // its sockets: an ack may be waiting unread. Effect's scheduler resumes after
            // the I/O phase, so a few yields let pending input travel socket -> decoder ->
            // connection -> acknowledge before we decide. No virtual time passes, so
            // TestClock tests see the same instant.
            for (let i = 0; i < stallGraceYields && now() >= lastAckAt + peerTimeoutMs; i++) yield* Effect.yieldNow
            if (now() >= lastAckAt + peerTimeoutMs) break
            continue
          }
          yield* Effect.sleep(Math.max(1, Math.ceil(deadline - current)))
        }
        const lost = new PeerLost({
          at: now(),
          lastAckAt,
          ...(lastAckSeq === undefined ? {} : { lastAckSeq }),
        })
        Deferred.doneUnsafe(lostDeferred, Effect.succeed(lost))
        PubSub.publishUnsafe(pubsub, lost)
        yield* Effect.logWarning(`peer lost: no heartbeat ack for ${lost.at - lastAckAt} ms`)
      }),
    )

    const acknowledge = (ack: HeartbeatAck): Effect.Effect<void> =>
      Effect.suspend(() => {
        if (ack.seq < 1 || ack.seq > lastSeq) {
          return Effect.logDebug(`ignored heartbeat ack ${ack.seq}: latest beat sent is ${lastSeq}`)
        }
        const at = now()
        if (at > lastAckAt) lastAckAt = at
        if (lastAckSeq === undefined || ack.seq > lastAckSeq) lastAckSeq = ack.seq
        const roundTrip = ack.seq === lastSeq ? { roundTripMs: at - lastSentAt } : {}
        PubSub.publishUnsafe(pubsub, new AckReceived({ seq: ack.seq, at, ...roundTrip }))
        return Effect.logDebug(`heartbeat ack ${ack.seq} received`)
      })

    return HeartbeatSender.of({
      acknowledge,
      lost: Deferred.await(lostDeferred),
      lastSeq: Effect.sync(() => lastSeq),
      events: Stream.fromPubSub(pubsub),
      subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
    })
  })

/**
 * The sender as a Layer: it starts when the Layer is built and stops when
 * the Layer's scope closes (build it in the session's scope).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = <E, R>(options: Options<E, R>): Layer.Layer<HeartbeatSender, never, R> =>
  Layer.effect(HeartbeatSender, make(options))
