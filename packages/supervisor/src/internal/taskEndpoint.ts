/**
 * One end of a task pipe, below the task semantics: numbered messages,
 * acks, resends and de-duplication of payload messages, heartbeats both
 * ways, the peer timeout, close. `TaskAgent` and `TaskExchanger` are each
 * this core plus what a task means on their side.
 */
import { Clock, Deferred, Duration, Effect, Metric, PubSub, Result, type Scope, Stream } from "effect"
import {
  AgentClosed,
  DeliveryFailed,
  type EndError,
  MalformedMessage,
  PeerGone,
  type PipeClosed,
  type UnknownMessage,
} from "../AgentError.ts"
import type { TaskAgentConfig } from "../TaskAgentConfig.ts"
import {
  DeliveryGaveUp,
  DuplicateDropped,
  EndClosed,
  MessageReceived,
  MessageRejected,
  MessageResent,
  MessageSent,
  PeerRejectedMessage,
  PeerWentAway,
  type Side,
  type TaskAgentEvent,
} from "../TaskAgentEvent.ts"
import * as TaskAgentMetrics from "../TaskAgentMetrics.ts"
import type { TaskPipe } from "../TaskPipe.ts"
import * as TaskProtocol from "../TaskProtocol.ts"
import { makeSeenIds } from "./taskSeenIds.ts"

type Outbound<M extends TaskProtocol.Message> = M extends unknown ? Omit<M, "id"> : never

export interface EndpointOptions {
  readonly side: Side
  readonly pipe: TaskPipe["Service"]
  readonly config: TaskAgentConfig
  /**
   * Each payload message, once (duplicates are acknowledged and dropped before this). A failure
   * rejects the message (event, metric, `ProtocolError` to the peer); the end keeps serving.
   */
  readonly deliver: (message: TaskProtocol.PayloadMessage) => Effect.Effect<void, MalformedMessage>
  /** Called once when the end ends, before callers waiting on it resume. */
  readonly onEnd: (error: EndError) => Effect.Effect<void>
}

export interface Endpoint {
  /** Sends a payload message, resends it until acknowledged, fails after the last resend. */
  readonly sendPayload: (
    message: Outbound<TaskProtocol.PayloadMessage>,
    transfer?: ReadonlyArray<ArrayBuffer>,
  ) => Effect.Effect<void, DeliveryFailed | EndError>
  /** Fails with the end error once ended, else succeeds at once. */
  readonly ensureOpen: Effect.Effect<void, EndError>
  /** Waits for the end and fails with its error. */
  readonly awaitEnd: Effect.Effect<never, EndError>
  readonly close: (reason: string) => Effect.Effect<void>
  readonly events: Stream.Stream<TaskAgentEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<TaskAgentEvent>, never, Scope.Scope>
}

// Yields granted to input already received before a peer deadline counts: a starved event loop
// runs expired timers before it reads its pipe (see HeartbeatSender in @fedguard/heartbeat).
const stallGraceYields = 8

export const make = Effect.fnUntraced(function* (options: EndpointOptions) {
  const { side, pipe, config } = options
  const clock = yield* Clock.Clock
  const now = () => clock.currentTimeMillisUnsafe()
  const heartbeatMs = Duration.toMillis(config.heartbeatInterval)
  const peerTimeoutMs = Duration.toMillis(config.peerTimeout)
  const startTimeoutMs = Duration.toMillis(config.startTimeout)
  const resendMs = Duration.toMillis(config.resendInterval)

  const pubsub = yield* PubSub.unbounded<TaskAgentEvent>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const publish = (event: TaskAgentEvent) => PubSub.publishUnsafe(pubsub, event)
  const count = (metric: Metric.Counter<number>, attributes: Record<string, string>) =>
    Metric.update(Metric.withAttributes(metric, { side, ...attributes }), 1)

  let nextId = 1
  let lastHeardAt = now()
  let heard = false
  let endedWith: EndError | undefined
  const ended = Deferred.makeUnsafe<never, EndError>()
  // Heard from the peer at least once: payloads wait for it, so a worker's start-up time does not
  // count against its resends (FLARE's TaskExchanger waits for the peer the same way).
  const peerUp = Deferred.makeUnsafe<void>()
  const pending = new Map<number, Deferred.Deferred<void, EndError>>()
  const seen = makeSeenIds()

  const end = (error: EndError): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (endedWith !== undefined) return Effect.void
      endedWith = error
      for (const waiter of pending.values()) Deferred.doneUnsafe(waiter, Effect.fail(error))
      pending.clear()
      const at = now()
      const report =
        error._tag === "AgentClosed"
          ? Effect.andThen(
              Effect.sync(() => publish(new EndClosed({ side, by: error.by, reason: error.reason, at }))),
              count(TaskAgentMetrics.closed, { by: error.by }),
            )
          : Effect.andThen(
              Effect.sync(() =>
                publish(
                  new PeerWentAway({
                    side,
                    reason: error.reason,
                    lastHeardAt: error.lastHeardAt,
                    silentMs: error.silentMs,
                    ...(error.detail === undefined ? {} : { detail: error.detail }),
                    at,
                  }),
                ),
              ),
              Effect.andThen(
                count(TaskAgentMetrics.peersGone, { reason: error.reason }),
                Effect.logWarning(`task pipe (${side}): ${error.message}`),
              ),
            )
      return report.pipe(
        Effect.andThen(options.onEnd(error)),
        Effect.andThen(Effect.sync(() => Deferred.doneUnsafe(ended, Effect.fail(error)))),
      )
    })

  const pipeGone = (closed: PipeClosed) =>
    end(new PeerGone({ reason: "pipe-closed", lastHeardAt, silentMs: now() - lastHeardAt, detail: closed.reason }))

  // Sends one value; a closed pipe ends this end (the peer is gone) and fails with that.
  const post = (message: TaskProtocol.Message, transfer?: ReadonlyArray<ArrayBuffer>) =>
    pipe.send(message, transfer).pipe(
      Effect.catchTag("PipeClosed", (closed) =>
        // The end error is read after `pipeGone` ran: it may have ended this end just now.
        Effect.andThen(
          pipeGone(closed),
          Effect.suspend(() => Effect.fail(endedWith ?? new AgentClosed({ by: "local", reason: "ended" }))),
        ),
      ),
    )

  const ensureOpen: Effect.Effect<void, EndError> = Effect.suspend(() =>
    endedWith === undefined ? Effect.void : Effect.fail(endedWith),
  )

  const sendOnce = <M extends Outbound<TaskProtocol.Message>>(message: M) =>
    Effect.suspend(() => {
      const id = nextId++
      const full = { ...message, id } as unknown as TaskProtocol.Message
      return post(full).pipe(
        Effect.andThen(
          Effect.sync(() => publish(new MessageSent({ side, kind: full._tag, messageId: id, at: now() }))),
        ),
        Effect.andThen(count(TaskAgentMetrics.messagesSent, { kind: full._tag })),
      )
    })

  const sendPayload = (
    message: Outbound<TaskProtocol.PayloadMessage>,
    transfer: ReadonlyArray<ArrayBuffer> = [],
  ): Effect.Effect<void, DeliveryFailed | EndError> =>
    Effect.suspend(() => {
      if (endedWith !== undefined) return Effect.fail(endedWith)
      const id = nextId++
      return deliverPayload({ ...message, id } as TaskProtocol.PayloadMessage, transfer).pipe(
        Effect.ensuring(Effect.sync(() => pending.delete(id))),
      )
    })

  const deliverPayload = Effect.fnUntraced(function* (
    message: TaskProtocol.PayloadMessage,
    transfer: ReadonlyArray<ArrayBuffer>,
  ): Effect.fn.Return<void, DeliveryFailed | EndError> {
    const { id, _tag: kind } = message
    const acked = Deferred.makeUnsafe<void, EndError>()
    pending.set(id, acked)
    yield* Effect.raceFirst(Deferred.await(peerUp), Deferred.await(ended))
    const useTransfer = pipe.transfers && transfer.length > 0
    // A transferred payload leaves with the first copy; a resend carries the id (the receiver
    // re-acks a duplicate) and `moved` instead, since the sender no longer holds the bytes.
    const resendCopy: TaskProtocol.PayloadMessage = useTransfer
      ? { ...message, data: new Uint8Array(0), moved: true }
      : message
    yield* post(message, useTransfer ? transfer : undefined)
    publish(new MessageSent({ side, kind, messageId: id, at: now() }))
    yield* count(TaskAgentMetrics.messagesSent, { kind })
    for (let resend = 1; ; resend++) {
      const answered = yield* Deferred.await(acked).pipe(Effect.timeoutOption(resendMs))
      if (answered._tag === "Some") return
      if (resend > config.maxResends) {
        publish(new DeliveryGaveUp({ side, kind, messageId: id, resends: config.maxResends, at: now() }))
        yield* count(TaskAgentMetrics.deliveriesFailed, { kind })
        yield* Effect.logWarning(`task pipe (${side}): ${kind} ${id} never acknowledged`)
        return yield* new DeliveryFailed({ messageId: id, kind, resends: config.maxResends })
      }
      yield* ensureOpen
      yield* post(resendCopy)
      publish(new MessageResent({ side, kind, messageId: id, resend, at: now() }))
      yield* count(TaskAgentMetrics.messagesResent, { kind })
    }
  })

  const reject = (error: MalformedMessage | UnknownMessage, of?: number) =>
    Effect.gen(function* () {
      const path = error._tag === "MalformedMessage" ? error.path : undefined
      publish(
        new MessageRejected({
          side,
          tag: error.tag,
          ...(path === undefined ? {} : { path }),
          reason: error.message,
          at: now(),
        }),
      )
      yield* count(TaskAgentMetrics.messagesRejected, {})
      yield* Effect.logWarning(`task pipe (${side}): rejected a message: ${error.message}`)
      if (endedWith !== undefined) return
      yield* sendOnce({
        _tag: "ProtocolError",
        tag: error.tag,
        reason: error.message.slice(0, 1024),
        ...(of === undefined ? {} : { of }),
        ...(path === undefined ? {} : { path: path.slice(0, 256) }),
      }).pipe(Effect.ignore)
    })

  const receive = (raw: unknown): Effect.Effect<void> =>
    Effect.gen(function* () {
      lastHeardAt = now()
      heard = true
      Deferred.doneUnsafe(peerUp, Effect.void)
      const decoded = TaskProtocol.decode(raw)
      if (Result.isFailure(decoded)) {
        if (TaskProtocol.claimsProtocolError(raw)) {
          yield* Effect.logWarning(`task pipe (${side}): undecodable ProtocolError dropped`)
          return
        }
        return yield* reject(decoded.failure, TaskProtocol.idOf(raw))
      }
      const message = decoded.success
      publish(new MessageReceived({ side, kind: message._tag, messageId: message.id, at: lastHeardAt }))
      yield* count(TaskAgentMetrics.messagesReceived, { kind: message._tag })
      switch (message._tag) {
        case "Heartbeat":
          return
        case "Ack": {
          const waiter = pending.get(message.of)
          if (waiter !== undefined) Deferred.doneUnsafe(waiter, Effect.void)
          return
        }
        case "Close":
          return yield* end(new AgentClosed({ by: "peer", reason: message.reason }))
        case "ProtocolError":
          publish(
            new PeerRejectedMessage({
              side,
              tag: message.tag,
              reason: message.reason,
              ...(message.of === undefined ? {} : { of: message.of }),
              ...(message.path === undefined ? {} : { path: message.path }),
              at: lastHeardAt,
            }),
          )
          return yield* Effect.logWarning(`task pipe (${side}): the peer rejected a message: ${message.reason}`)
        default: {
          const duplicate = seen.has(message.id)
          if (!duplicate && message.moved === true) {
            // Its payload left with an earlier copy that never arrived: nothing to deliver, and no
            // ack, so the sender gives up (DeliveryFailed) rather than believing it delivered.
            return yield* reject(
              new MalformedMessage({
                tag: message._tag,
                path: "moved",
                reason: "a resend of a transferred payload whose first copy never arrived",
              }),
              message.id,
            )
          }
          yield* sendOnce({ _tag: "Ack", of: message.id }).pipe(Effect.ignore)
          if (duplicate) {
            publish(new DuplicateDropped({ side, kind: message._tag, messageId: message.id, at: lastHeardAt }))
            return yield* count(TaskAgentMetrics.duplicatesDropped, { kind: message._tag })
          }
          seen.add(message.id)
          return yield* options.deliver(message).pipe(Effect.catch((error) => reject(error, message.id)))
        }
      }
    })

  const inbound = Stream.runForEach(pipe.messages, receive).pipe(Effect.andThen(Effect.flatMap(pipe.closed, pipeGone)))

  const heartbeats = Effect.gen(function* () {
    let next = now()
    while (true) {
      yield* sendOnce({ _tag: "Heartbeat" })
      next += heartbeatMs
      const current = now()
      if (next < current) next = current
      yield* Effect.sleep(next - current)
    }
  })

  // Until the peer's first message, the silence allowed is the start timeout (a worker starting up).
  const deadline = () => lastHeardAt + (heard ? peerTimeoutMs : startTimeoutMs)
  const watchdog = Effect.gen(function* () {
    while (true) {
      const current = now()
      if (current >= deadline()) {
        for (let i = 0; i < stallGraceYields && now() >= deadline(); i++) yield* Effect.yieldNow
        if (now() >= deadline()) break
        continue
      }
      // Unheard, wake at least every peer timeout: the first message shortens the deadline.
      yield* Effect.sleep(heard ? deadline() - current : Math.min(deadline() - current, peerTimeoutMs))
    }
    yield* end(
      new PeerGone({
        reason: "silent",
        lastHeardAt,
        silentMs: now() - lastHeardAt,
        ...(heard ? {} : { detail: "no message from the peer since the start" }),
      }),
    )
  })

  const untilEnd = <A, E>(loop: Effect.Effect<A, E>) =>
    Effect.raceFirst(Effect.ignore(loop), Effect.ignore(Deferred.await(ended)))

  yield* Effect.forkScoped(untilEnd(inbound))
  yield* Effect.forkScoped(untilEnd(heartbeats))
  yield* Effect.forkScoped(untilEnd(watchdog))

  // Closed first, then told: a pipe that is already gone must not turn a close into PeerGone.
  const close = (reason: string): Effect.Effect<void> =>
    Effect.suspend(() => {
      if (endedWith !== undefined) return Effect.void
      return end(new AgentClosed({ by: "local", reason })).pipe(
        Effect.andThen(sendOnce({ _tag: "Close", reason: reason.slice(0, 1024) }).pipe(Effect.ignore)),
      )
    })
  yield* Effect.addFinalizer(() => close("the scope closed"))

  return {
    sendPayload,
    ensureOpen,
    awaitEnd: Deferred.await(ended),
    close,
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  } satisfies Endpoint
})
