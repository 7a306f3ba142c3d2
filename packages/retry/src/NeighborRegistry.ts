/**
 * Who among the neighbours is reachable: sends to offline peers are skipped
 * at once, sends to online peers are retried under a `RetryPolicy`, a peer
 * whose retries run out is marked offline, and any inbound message from it
 * brings it back.
 *
 * @since 0.1.0
 */
import { PeerId, TransportError } from "@fedguard/transport"
import {
  type Config,
  Context,
  DateTime,
  Effect,
  HashMap,
  Layer,
  Metric,
  Option,
  Predicate,
  PubSub,
  Schema,
  type Scope,
  Stream,
  SynchronizedRef,
} from "effect"
import { NeighborCameOnline, type NeighborEvent, NeighborWentOffline } from "./NeighborEvent.ts"
import * as Retry from "./Retry.ts"
import type { RetryEvent } from "./RetryEvent.ts"
import * as RetryMetrics from "./RetryMetrics.ts"
import * as RetryPolicy from "./RetryPolicy.ts"

/**
 * A send was skipped because `peer` has been offline since `since` (for
 * `reason`). Nothing was attempted and nothing waited: the caller can move on
 * to the next neighbour at once.
 *
 * @since 0.1.0
 * @category errors
 */
export class NeighborOffline extends Schema.TaggedError<NeighborOffline>()("NeighborOffline", {
  peer: PeerId.PeerId,
  since: Schema.DateTimeUtc,
  reason: Schema.String,
}) {
  override get message(): string {
    return `neighbor ${this.peer} is offline since ${DateTime.formatIso(this.since)} (${this.reason}); send skipped without an attempt`
  }
}

/**
 * The availability of one neighbour: `state` since `since`; `reason` says why
 * it went offline and is absent while online.
 *
 * @since 0.1.0
 * @category models
 */
export class NeighborStatus extends Schema.Class<NeighborStatus>("@fedguard/retry/NeighborStatus")({
  peer: PeerId.PeerId,
  state: Schema.Literals(["online", "offline"]),
  since: Schema.DateTimeUtc,
  reason: Schema.optionalKey(Schema.String),
}) {}

/**
 * Everything a registry publishes: the retries of its sends and the
 * availability changes of its neighbours.
 *
 * @since 0.1.0
 * @category events
 */
export type Event = RetryEvent | NeighborEvent

/**
 * Options of {@link make} and {@link layer}:
 *
 * - `policy`: the retry policy of every `send` (default `RetryPolicy.defaults`:
 *   3 retries, 1 s base, 30 s cap, additive jitter).
 * - `peers`: neighbours known from the start, all online (default none; other
 *   peers join the registry the first time they are used).
 * - `isRetryable`: the classifier (default `TransportError.isRetryable`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly policy?: RetryPolicy.RetryPolicy | undefined
  readonly peers?: Iterable<PeerId.PeerId> | undefined
  readonly isRetryable?: Retry.Classifier<unknown> | undefined
}

/**
 * The neighbour list of a federation participant (FederatedScope's
 * neighbour list, plus recovery). A peer never heard of is presumed online.
 *
 * - `send(peer, effect)`: fails at once with `NeighborOffline` (the effect is
 *   not run) if `peer` is offline; otherwise runs `effect` under the policy.
 *   When the retries (or the budget) run out on a retryable error the peer is
 *   marked offline and the last error returned; a final error returns as is
 *   and leaves the peer online. A send whose peer is marked offline by
 *   someone else during its backoff stops at its next attempt with
 *   `NeighborOffline`.
 * - `observeInbound(peer)`: an inbound message or heartbeat proves the peer
 *   alive and marks it online (the seed never recovered an offline peer).
 * - `markOnline(peer)` / `markOffline(peer, reason)`: explicit changes.
 *   Marks that change nothing publish nothing.
 * - `status`, `online`, `snapshot`: reads; `events` / `subscribe`: the event
 *   stream (a `PubSub`); `subscribe` subscribes at once, in the caller's
 *   Scope, so no event published after it returns is missed.
 *
 * All changes are atomic (a `SynchronizedRef`): under any number of concurrent
 * fibers no change is lost and events are published in the order of changes.
 *
 * @since 0.1.0
 * @category services
 */
export class NeighborRegistry extends Context.Service<
  NeighborRegistry,
  {
    readonly policy: RetryPolicy.RetryPolicy
    send<A, E, R>(peer: PeerId.PeerId, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E | NeighborOffline, R>
    observeInbound(peer: PeerId.PeerId): Effect.Effect<void>
    markOnline(peer: PeerId.PeerId): Effect.Effect<void>
    markOffline(peer: PeerId.PeerId, reason: string): Effect.Effect<void>
    status(peer: PeerId.PeerId): Effect.Effect<NeighborStatus>
    readonly online: Effect.Effect<ReadonlyArray<PeerId.PeerId>>
    readonly snapshot: Effect.Effect<ReadonlyMap<PeerId.PeerId, NeighborStatus>>
    readonly events: Stream.Stream<Event>
    readonly subscribe: Effect.Effect<Stream.Stream<Event>, never, Scope.Scope>
  }
>()("@fedguard/retry/NeighborRegistry") {}

/**
 * Builds a registry whose event `PubSub` is shut down when the Scope closes.
 * Events are buffered without bound per subscriber: a subscriber must keep up
 * (they are rare: one per retry and per availability change).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options = {},
): Effect.fn.Return<NeighborRegistry["Service"], never, Scope.Scope> {
  const policy = options.policy ?? RetryPolicy.defaults
  const classify = options.isRetryable ?? TransportError.isRetryable
  const createdAt = yield* DateTime.now
  const pubsub = yield* PubSub.unbounded<Event>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const state = yield* SynchronizedRef.make(
    HashMap.fromIterable(
      Array.from(options.peers ?? [], (peer) => [
        peer,
        new NeighborStatus({ peer, state: "online", since: createdAt }),
      ]),
    ),
  )

  const publish = (event: Event) => Effect.asVoid(PubSub.publish(pubsub, event))

  // The change and its event happen under the ref's lock, so concurrent
  // transitions neither lose an update nor publish out of order.
  const transition = (peer: PeerId.PeerId, to: "online" | "offline", reason: string) =>
    SynchronizedRef.modifyEffect(state, (peers) =>
      Effect.gen(function* () {
        const current = HashMap.get(peers, peer)
        const wasOffline = Option.isSome(current) && current.value.state === "offline"
        if ((to === "offline") === wasOffline) {
          // No change, but a first `markOnline` makes the peer known.
          if (Option.isSome(current)) return [undefined, peers] as const
          const known = new NeighborStatus({ peer, state: "online", since: yield* DateTime.now })
          return [undefined, HashMap.set(peers, peer, known)] as const
        }
        const at = yield* DateTime.now
        const next =
          to === "offline"
            ? new NeighborStatus({ peer, state: "offline", since: at, reason })
            : new NeighborStatus({ peer, state: "online", since: at })
        yield* Metric.update(Metric.withAttributes(RetryMetrics.statusChanges, { to }), 1)
        yield* publish(
          to === "offline"
            ? new NeighborWentOffline({ peer, at, reason })
            : new NeighborCameOnline({ peer, at, offlineSince: Option.getOrThrow(current).since }),
        )
        return [undefined, HashMap.set(peers, peer, next)] as const
      }),
    )

  const markOnline = Effect.fn("NeighborRegistry.markOnline")(function* (peer: PeerId.PeerId) {
    yield* transition(peer, "online", "")
  })
  const observeInbound = Effect.fn("NeighborRegistry.observeInbound")(function* (peer: PeerId.PeerId) {
    yield* transition(peer, "online", "")
  })
  const markOffline = Effect.fn("NeighborRegistry.markOffline")(function* (peer: PeerId.PeerId, reason: string) {
    yield* transition(peer, "offline", reason)
  })

  const ensureOnline = (peer: PeerId.PeerId): Effect.Effect<void, NeighborOffline> =>
    Effect.flatMap(SynchronizedRef.get(state), (peers) => {
      const current = HashMap.get(peers, peer)
      if (Option.isNone(current)) return markOnline(peer)
      const { since, reason } = current.value
      return current.value.state === "offline"
        ? Effect.fail(new NeighborOffline({ peer, since, reason: reason ?? "unknown" }))
        : Effect.void
    })

  const send = <A, E, R>(peer: PeerId.PeerId, effect: Effect.Effect<A, E, R>) => {
    const attempt: Effect.Effect<A, E | NeighborOffline, R> = Effect.andThen(ensureOnline(peer), effect)
    const retried = Retry.retry(attempt, policy, {
      peer,
      isRetryable: (error) => !Predicate.isTagged(error, "NeighborOffline") && classify(error),
      onEvent: (event) =>
        event._tag === "RetryGaveUp" ? Effect.andThen(publish(event), markOffline(peer, event.reason)) : publish(event),
    })
    return Effect.andThen(ensureOnline(peer), retried).pipe(
      Effect.withSpan("NeighborRegistry.send", { attributes: { peer } }),
    )
  }

  const statusOf = (peers: HashMap.HashMap<PeerId.PeerId, NeighborStatus>, peer: PeerId.PeerId) =>
    Option.getOrElse(HashMap.get(peers, peer), () => new NeighborStatus({ peer, state: "online", since: createdAt }))

  return NeighborRegistry.of({
    policy,
    send: (peer, effect) => send(peer, effect),
    observeInbound,
    markOnline,
    markOffline,
    status: (peer) => Effect.map(SynchronizedRef.get(state), (peers) => statusOf(peers, peer)),
    online: Effect.map(SynchronizedRef.get(state), (peers) =>
      Array.from(HashMap.values(peers))
        .filter((status) => status.state === "online")
        .map((status) => status.peer),
    ),
    snapshot: Effect.map(SynchronizedRef.get(state), (peers) => new Map(HashMap.toEntries(peers))),
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  })
})

/**
 * A Layer providing a {@link NeighborRegistry} built with `options`; its
 * event stream ends when the Layer is released.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<NeighborRegistry> =>
  Layer.effect(NeighborRegistry, make(options))

/**
 * A Layer whose policy is read from configuration under `path` (default
 * `"retry"`, see `RetryPolicy.config`); fails with a `ConfigError` naming the
 * wrong key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (
  path: string = "retry",
  options: Omit<Options, "policy"> = {},
): Layer.Layer<NeighborRegistry, Config.ConfigError> =>
  Layer.effect(
    NeighborRegistry,
    Effect.flatMap(RetryPolicy.config(path), (policy) => make({ ...options, policy })),
  )
