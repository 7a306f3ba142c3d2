/**
 * The server side of liveness: which registered clients are alive, when each
 * one went offline and why, and whether enough of them are alive (quorum).
 *
 * Every authenticated beat, and any other inbound traffic (`touch`), is a
 * sign of life. A client goes offline when its failure detector's deadline
 * after its last sign of life passes (fixed 90 s by default, or phi-accrual),
 * or when told so (`markOffline`, e.g. on connection close). Deadlines are
 * scheduled per client by one scheduler fiber sleeping on the `Clock` until
 * the earliest one (a min-heap with lazy invalidation), so marks are exact
 * under `TestClock` and late by no more than the event loop's lag for real,
 * and a beat costs O(1) whatever the number of clients.
 *
 * Boundary: a client whose last sign of life was at `t` is online at
 * `t + timeout - ε` and offline from `t + timeout` inclusive. (A beat arriving
 * at exactly `t + timeout` may be processed before or after the mark; after,
 * the client comes back online at once.)
 *
 * States: `registered` (never seen) → `online` → `offline` → `online` again on
 * any sign of life; `registered` → `never-joined` after `joinTimeout` (counted
 * from registration) → `online` if it beats later. A client never seen alive
 * never produces `ClientWentOffline`.
 *
 * @since 0.1.0
 */
import type { PeerId } from "@fedguard/transport"
import { Clock, Context, Deferred, Duration, Effect, Layer, PubSub, type Scope, Stream } from "effect"
import * as FailureDetector from "./FailureDetector.ts"
import type { Heartbeat, HeartbeatAck } from "./Heartbeat.ts"
import * as HeartbeatConfig from "./HeartbeatConfig.ts"
import * as HeartbeatMetrics from "./HeartbeatMetrics.ts"
import * as LivenessTable from "./internal/LivenessTable.ts"
import { AwaitAliveTimedOut, ImpersonationRejected, UnknownClient } from "./LivenessError.ts"
import {
  ClientCameOnline,
  ClientNeverJoined,
  ClientWentOffline,
  type LivenessEvent,
  QuorumLost,
  QuorumRestored,
} from "./LivenessEvent.ts"
import * as PhiAccrual from "./PhiAccrual.ts"

type Id = PeerId.PeerId

/**
 * A client's liveness state; see the module documentation for the
 * transitions.
 *
 * @since 0.1.0
 * @category models
 */
export type ClientState = "registered" | "online" | "offline" | "never-joined"

const stateNames: ReadonlyArray<ClientState> = ["registered", "online", "offline", "never-joined"]

/**
 * One client's liveness, as `snapshot` and `client` report it. Times are epoch
 * milliseconds from the `Clock`: `joinedAt` is when it last came online,
 * `lastSeenAt` its last sign of life, `offlineAt` and `reason` (`"timeout"`,
 * `"never-joined"`, or the reason given to `markOffline`) are set while it is
 * offline or never-joined.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientSnapshot {
  readonly id: Id
  readonly state: ClientState
  readonly registeredAt: number
  readonly joinedAt?: number
  readonly lastSeenAt?: number
  readonly offlineAt?: number
  readonly reason?: string
}

/**
 * A client's detection latency: how long after its last sign of life it would
 * be declared offline, with the inter-arrival statistics it was computed from
 * (`samples: 0` for the fixed timeout).
 *
 * @since 0.1.0
 * @category models
 */
export interface DetectionLatency {
  readonly samples: number
  readonly meanIntervalMs: number
  readonly stdDeviationMs: number
  readonly latency: Duration.Duration
}

/**
 * Options of a tracker. `timeout` (default 90 s) builds the default
 * fixed-timeout detector and is ignored when `detector` is given;
 * `joinTimeout` (default 120 s, from registration) reports never-joined
 * clients; `minClients` (default 1; 0 disables) drives `QuorumLost` /
 * `QuorumRestored`; `logTransitions` (default `true`) logs each transition
 * (came online, went offline, never joined, quorum lost or restored) as a
 * line; an application that publishes the events and logs them itself turns
 * it off, so a transition is never logged twice.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly timeout?: Duration.Input | undefined
  readonly joinTimeout?: Duration.Input | undefined
  readonly minClients?: number | undefined
  readonly detector?: FailureDetector.FailureDetector | undefined
  readonly logTransitions?: boolean | undefined
}

/**
 * The liveness tracker service. Methods:
 *
 * - `register(id)`: expect client `id` (idempotent); starts its join timeout.
 * - `beat(authenticated, beat)`: records a beat from the connection
 *   authenticated as `authenticated`; fails with `ImpersonationRejected` (no
 *   state change) when `beat.from` differs, `UnknownClient` when never
 *   registered; returns the `HeartbeatAck` to send back. O(1), no event
 *   unless the state changes; logged at DEBUG.
 * - `touch(id)`: any other inbound traffic from `id` counts as a sign of life.
 * - `markOffline(id, reason)`: explicit signal (connection closed…); no-op
 *   unless the client is online.
 * - `client(id)` / `snapshot`: per-client state; `aliveClients`, `aliveCount`.
 * - `awaitAlive(n, timeout)`: waits until at least `n` clients are online and
 *   returns them, or fails with `AwaitAliveTimedOut`.
 * - `detectionLatency(id)`: the client's current deadline offset.
 * - `events`: the liveness events as a Stream (each run subscribes anew);
 *   `subscribe` subscribes now and returns the Stream, so no event is missed
 *   between subscribing and consuming.
 *
 * @since 0.1.0
 * @category services
 */
export class LivenessTracker extends Context.Service<
  LivenessTracker,
  {
    readonly register: (id: Id) => Effect.Effect<void>
    readonly beat: (
      authenticated: Id,
      beat: Heartbeat,
    ) => Effect.Effect<HeartbeatAck, ImpersonationRejected | UnknownClient>
    readonly touch: (id: Id) => Effect.Effect<void, UnknownClient>
    readonly markOffline: (id: Id, reason: string) => Effect.Effect<void, UnknownClient>
    readonly client: (id: Id) => Effect.Effect<ClientSnapshot, UnknownClient>
    readonly snapshot: Effect.Effect<ReadonlyArray<ClientSnapshot>>
    readonly aliveClients: Effect.Effect<ReadonlyArray<Id>>
    readonly aliveCount: Effect.Effect<number>
    readonly awaitAlive: (n: number, timeout: Duration.Input) => Effect.Effect<ReadonlyArray<Id>, AwaitAliveTimedOut>
    readonly detectionLatency: (id: Id) => Effect.Effect<DetectionLatency, UnknownClient>
    readonly events: Stream.Stream<LivenessEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<LivenessEvent>, never, Scope.Scope>
  }
>()("@fedguard/heartbeat/LivenessTracker") {}

/**
 * Tracker options from the shared `HeartbeatConfig` (the detector it names,
 * phi-accrual seeded with the configured beat interval).
 *
 * @since 0.1.0
 * @category constructors
 */
export const optionsFromConfig = (config: HeartbeatConfig.HeartbeatConfig): Options => ({
  timeout: config.timeout,
  joinTimeout: config.joinTimeout,
  minClients: config.minClients,
  detector:
    config.detector === "phi-accrual"
      ? PhiAccrual.make({
          threshold: config.phiThreshold,
          maxSampleSize: config.phiMaxSampleSize,
          minStdDeviation: config.phiMinStdDeviation,
          acceptableHeartbeatPause: config.phiAcceptableHeartbeatPause,
          firstHeartbeatEstimate: config.interval,
        })
      : FailureDetector.fixedTimeout(config.timeout),
})

interface Waiter {
  readonly n: number
  readonly deferred: Deferred.Deferred<ReadonlyArray<Id>>
}

/**
 * Builds a tracker whose scheduler fiber and event hub live in the current
 * Scope: closing it stops all scheduling and ends the event streams.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (options?: Options) => Effect.Effect<LivenessTracker["Service"], never, Scope.Scope> =
  Effect.fnUntraced(function* (options: Options = {}) {
    const detector =
      options.detector ?? FailureDetector.fixedTimeout(options.timeout ?? HeartbeatConfig.defaults.timeout)
    const joinTimeoutMs = Duration.toMillis(options.joinTimeout ?? HeartbeatConfig.defaults.joinTimeout)
    const minClients = options.minClients ?? HeartbeatConfig.defaults.minClients
    const clock = yield* Clock.Clock
    // Metrics are updated synchronously from the hot path with the context the
    // tracker was built in (it holds the metric registry).
    const context = yield* Effect.context<never>()
    const pubsub = yield* PubSub.unbounded<LivenessEvent>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))

    const now = () => clock.currentTimeMillisUnsafe()
    const valid = { disableChecks: true } as const
    // Transition logs are collected by the synchronous core and run after it.
    // A storm (one expiry pass taking thousands of clients offline) logs the
    // first `logBurst` lines of a kind and one summary line for the rest.
    let logs: Array<Effect.Effect<void>> = []
    const suppressed = { online: 0, offline: 0, neverJoined: 0 }
    const logBurst = 20
    // An application that publishes the events itself (and logs them) turns these lines off, so
    // one transition is not logged twice.
    const logging = options.logTransitions ?? true
    const logTransition = (kind: keyof typeof suppressed, line: () => Effect.Effect<void>) => {
      if (!logging) return
      if (logs.length < logBurst) logs.push(line())
      else suppressed[kind]++
    }
    const waiters = new Set<Waiter>()
    let quorumHeld = false
    let quorumReached = false

    const aliveIds = (): Array<Id> => {
      const alive: Array<Id> = []
      const { state, ids, size } = table
      for (let slot = 0; slot < size; slot++) if (state[slot] === LivenessTable.Online) alive.push(ids[slot]!)
      return alive
    }

    const afterTransition = (at: number) => {
      const alive = table.aliveCount
      HeartbeatMetrics.clientsOnline.updateUnsafe(alive, context)
      if (minClients > 0) {
        if (!quorumHeld && alive >= minClients) {
          quorumHeld = true
          if (quorumReached) {
            PubSub.publishUnsafe(pubsub, new QuorumRestored({ at, alive, minClients }, valid))
            if (logging) logs.push(Effect.logInfo(`quorum restored: ${alive} clients alive (minimum ${minClients})`))
          }
          quorumReached = true
        } else if (quorumHeld && alive < minClients) {
          quorumHeld = false
          PubSub.publishUnsafe(pubsub, new QuorumLost({ at, alive, minClients }, valid))
          if (logging) logs.push(Effect.logWarning(`quorum lost: ${alive} clients alive (minimum ${minClients})`))
        }
      }
      if (waiters.size > 0) {
        let ids: ReadonlyArray<Id> | undefined
        for (const waiter of waiters) {
          if (waiter.n <= alive) {
            ids ??= aliveIds()
            waiters.delete(waiter)
            Deferred.doneUnsafe(waiter.deferred, Effect.succeed(ids))
          }
        }
      }
    }

    const table: LivenessTable.LivenessTable = new LivenessTable.LivenessTable(detector, joinTimeoutMs, {
      cameOnline: (slot, at, previous) => {
        const id = table.ids[slot]!
        const rejoined = previous !== LivenessTable.Registered
        PubSub.publishUnsafe(pubsub, new ClientCameOnline({ id, at, rejoined }, valid))
        logTransition("online", () => Effect.logInfo(`client ${id} ${rejoined ? "came back online" : "came online"}`))
        afterTransition(at)
      },
      wentOffline: (slot, at, reason, lastSeenAt) => {
        const id = table.ids[slot]!
        PubSub.publishUnsafe(pubsub, new ClientWentOffline({ id, at, reason, lastSeenAt }, valid))
        HeartbeatMetrics.offlineTransitions.updateUnsafe(1, context)
        logTransition("offline", () =>
          Effect.logWarning(`client ${id} went offline (${reason}), last seen ${at - lastSeenAt} ms ago`),
        )
        afterTransition(at)
      },
      neverJoined: (slot, at, registeredAt) => {
        const id = table.ids[slot]!
        PubSub.publishUnsafe(pubsub, new ClientNeverJoined({ id, at, registeredAt }, valid))
        logTransition("neverJoined", () =>
          Effect.logWarning(`client ${id} never joined within ${at - registeredAt} ms of its registration`),
        )
      },
    })

    const drainLogs = (): Effect.Effect<void> | undefined => {
      if (logs.length === 0) return undefined
      if (suppressed.online > 0) logs.push(Effect.logInfo(`... and ${suppressed.online} more clients came online`))
      if (suppressed.offline > 0)
        logs.push(Effect.logWarning(`... and ${suppressed.offline} more clients went offline`))
      if (suppressed.neverJoined > 0) {
        logs.push(Effect.logWarning(`... and ${suppressed.neverJoined} more clients never joined`))
      }
      suppressed.online = suppressed.offline = suppressed.neverJoined = 0
      const batch = logs
      logs = []
      return batch.length === 1 ? batch[0]! : Effect.forEach(batch, (log) => log, { discard: true })
    }

    const expiryChunk = 4096
    // The scheduler fiber sleeps until the earliest deadline; an operation that
    // schedules an earlier one wakes it through `wake`.
    let sleepingUntil = Number.NEGATIVE_INFINITY
    let wake = Deferred.makeUnsafe<void>()
    const wakeIfEarlier = () => {
      if (table.nextDeadline() < sleepingUntil) {
        sleepingUntil = Number.NEGATIVE_INFINITY
        Deferred.doneUnsafe(wake, Effect.void)
      }
    }
    const afterChange = <A, E>(result: Effect.Effect<A, E>): Effect.Effect<A, E> => {
      wakeIfEarlier()
      const pending = drainLogs()
      return pending === undefined ? result : Effect.andThen(pending, result)
    }

    yield* Effect.forkScoped(
      Effect.gen(function* () {
        while (true) {
          const more = table.expireDue(now, expiryChunk)
          const pending = drainLogs()
          if (pending !== undefined) yield* pending
          if (more) {
            yield* Effect.yieldNow
            continue
          }
          const next = table.nextDeadline()
          const current = now()
          if (next <= current) continue
          wake = Deferred.makeUnsafe<void>()
          sleepingUntil = next
          yield* next === Number.POSITIVE_INFINITY
            ? Deferred.await(wake)
            : Effect.raceFirst(Effect.sleep(Math.max(1, Math.ceil(next - current))), Deferred.await(wake))
          sleepingUntil = Number.NEGATIVE_INFINITY
        }
      }),
    )

    const slotOf = (id: Id): number | undefined => table.slots.get(id)
    const unknown = (id: Id) => Effect.fail(new UnknownClient({ id }))

    const describe = (slot: number): ClientSnapshot => {
      const joinedAt = table.joinedAt[slot]!
      const lastSeenAt = table.lastSeen[slot]!
      const offlineAt = table.offlineAt[slot]!
      const reason = table.reasonOf(slot)
      return {
        id: table.ids[slot]!,
        state: stateNames[table.state[slot]!]!,
        registeredAt: table.registeredAt[slot]!,
        ...(Number.isNaN(joinedAt) ? {} : { joinedAt }),
        ...(Number.isNaN(lastSeenAt) ? {} : { lastSeenAt }),
        ...(Number.isNaN(offlineAt) ? {} : { offlineAt }),
        ...(reason === undefined ? {} : { reason }),
      }
    }

    // `beat` and `touch` are the hot path (one call per beat of every client):
    // untraced, synchronous inside one `Effect.suspend`, no event unless the
    // state changes.
    const beat = (
      authenticated: Id,
      heartbeat: Heartbeat,
    ): Effect.Effect<HeartbeatAck, ImpersonationRejected | UnknownClient> =>
      Effect.suspend((): Effect.Effect<HeartbeatAck, ImpersonationRejected | UnknownClient> => {
        if (heartbeat.from !== authenticated) {
          return Effect.fail(new ImpersonationRejected({ authenticated, claimed: heartbeat.from }))
        }
        const slot = slotOf(authenticated)
        if (slot === undefined) return unknown(authenticated)
        table.signOfLife(slot, now(), true)
        HeartbeatMetrics.beatsReceived.updateUnsafe(1, context)
        return afterChange(
          Effect.as(Effect.logDebug(`heartbeat ${heartbeat.seq} from ${authenticated}`), { seq: heartbeat.seq }),
        )
      })

    const touch = (id: Id): Effect.Effect<void, UnknownClient> =>
      Effect.suspend((): Effect.Effect<void, UnknownClient> => {
        const slot = slotOf(id)
        if (slot === undefined) return unknown(id)
        table.signOfLife(slot, now(), false)
        return afterChange(Effect.void)
      })

    const register = Effect.fn("LivenessTracker.register")(function* (id: Id) {
      table.register(id, now())
      yield* afterChange(Effect.logDebug(`client ${id} registered`))
    })

    const markOffline = Effect.fn("LivenessTracker.markOffline")(function* (id: Id, reason: string) {
      const slot = slotOf(id)
      if (slot === undefined) return yield* unknown(id)
      table.markOffline(slot, now(), reason)
      yield* afterChange(Effect.void)
    })

    const client = (id: Id): Effect.Effect<ClientSnapshot, UnknownClient> =>
      Effect.suspend(() => {
        const slot = slotOf(id)
        return slot === undefined ? unknown(id) : Effect.succeed(describe(slot))
      })

    const snapshot = Effect.sync(() => {
      const all: Array<ClientSnapshot> = []
      for (let slot = 0; slot < table.size; slot++) all.push(describe(slot))
      return all
    })

    const awaitAlive = Effect.fn("LivenessTracker.awaitAlive")(function* (n: number, timeout: Duration.Input) {
      if (table.aliveCount >= n) return aliveIds() as ReadonlyArray<Id>
      const waiter: Waiter = { n, deferred: Deferred.makeUnsafe<ReadonlyArray<Id>>() }
      waiters.add(waiter)
      return yield* Deferred.await(waiter.deferred).pipe(
        Effect.timeoutOrElse({
          duration: timeout,
          orElse: () =>
            Effect.fail(
              new AwaitAliveTimedOut({ wanted: n, alive: table.aliveCount, timeoutMs: Duration.toMillis(timeout) }),
            ),
        }),
        Effect.ensuring(Effect.sync(() => waiters.delete(waiter))),
      )
    })

    const detectionLatency = (id: Id): Effect.Effect<DetectionLatency, UnknownClient> =>
      Effect.suspend((): Effect.Effect<DetectionLatency, UnknownClient> => {
        const slot = slotOf(id)
        if (slot === undefined) return unknown(id)
        const stats = table.statsOf(slot)
        return Effect.succeed({
          samples: stats.count,
          meanIntervalMs: stats.mean,
          stdDeviationMs: stats.stdDeviation,
          latency: Duration.millis(detector.timeoutAfter(stats)),
        })
      })

    return LivenessTracker.of({
      register,
      beat,
      touch,
      markOffline,
      client,
      snapshot,
      aliveClients: Effect.sync(() => aliveIds() as ReadonlyArray<Id>),
      aliveCount: Effect.sync(() => table.aliveCount),
      awaitAlive,
      detectionLatency,
      events: Stream.fromPubSub(pubsub),
      subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
    })
  })

/**
 * The tracker as a Layer, built with `options` (defaults: fixed 90 s timeout,
 * 120 s join timeout, quorum of 1).
 *
 * @example
 * ```ts
 * import { LivenessTracker } from "@fedguard/heartbeat"
 * const TrackerLive = LivenessTracker.layer({ timeout: "60 seconds", minClients: 5 })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<LivenessTracker> =>
  Layer.effect(LivenessTracker, make(options))

/**
 * The tracker as a Layer configured from the `ConfigProvider` (section
 * `path`, default `"heartbeat"`; see `HeartbeatConfig`). Fails with a
 * `Config.ConfigError` naming the wrong key.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConfig = (path?: string) =>
  Layer.effect(
    LivenessTracker,
    Effect.flatMap(HeartbeatConfig.config(path), (config) => make(optionsFromConfig(config))),
  )
