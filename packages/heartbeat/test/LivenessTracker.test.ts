import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Logger, Metric, References } from "effect"
import { TestClock } from "effect/testing"
import * as HeartbeatMetrics from "../src/HeartbeatMetrics.ts"
import type { ClientWentOffline } from "../src/LivenessEvent.ts"
import * as LivenessTracker from "../src/LivenessTracker.ts"
import { beatFrom, id, record, settle, tags } from "./support.ts"

const a = id("client-a")
const b = id("client-b")
const c = id("client-c")

const TIMEOUT = 90_000
const JOIN_TIMEOUT = 120_000

const setup = (options: LivenessTracker.Options = {}) =>
  Effect.gen(function* () {
    const tracker = yield* LivenessTracker.make({ minClients: 0, ...options })
    const events = yield* record(tracker.subscribe)
    return { tracker, events }
  })

const stateOf = (tracker: LivenessTracker.LivenessTracker["Service"], client: typeof a) =>
  Effect.map(tracker.client(client), (snapshot) => snapshot.state)

describe("LivenessTracker timeouts", () => {
  it.effect("marks a client offline 90 s after its last beat, not before", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* TestClock.adjust("5 seconds")
      yield* tracker.beat(a, beatFrom(a))
      yield* TestClock.adjust(TIMEOUT - 1)
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      assert.deepStrictEqual(tags(events), ["ClientCameOnline"])

      yield* TestClock.adjust(1)
      assert.strictEqual(yield* stateOf(tracker, a), "offline")
      const offline = events[1] as ClientWentOffline
      assert.strictEqual(offline._tag, "ClientWentOffline")
      assert.strictEqual(offline.reason, "timeout")
      assert.strictEqual(offline.lastSeenAt, 5_000)
      const delay = offline.at - (offline.lastSeenAt + TIMEOUT)
      assert.isTrue(delay >= 0 && delay <= Math.max(TIMEOUT * 0.01, 10), `mark landed ${delay} ms late`)
      const snapshot = yield* tracker.client(a)
      assert.deepStrictEqual(snapshot, {
        id: a,
        state: "offline",
        registeredAt: 0,
        joinedAt: 5_000,
        lastSeenAt: 5_000,
        offlineAt: 95_000,
        reason: "timeout",
      })
    }),
  )

  it.effect("each beat postpones the deadline to 90 s after it", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.beat(a, beatFrom(a, 1))
      yield* TestClock.adjust("60 seconds")
      yield* tracker.beat(a, beatFrom(a, 2))
      yield* TestClock.adjust(TIMEOUT - 1)
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* stateOf(tracker, a), "offline")
      assert.strictEqual((events[1] as ClientWentOffline).at, 60_000 + TIMEOUT)
    }),
  )

  it.effect("counts any inbound traffic (touch) as a sign of life", () =>
    Effect.gen(function* () {
      const { tracker } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.touch(a)
      yield* TestClock.adjust("89 seconds")
      yield* tracker.touch(a)
      yield* TestClock.adjust("89 seconds")
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* stateOf(tracker, a), "offline")
    }),
  )

  it.effect("brings a client that went offline back online when it beats again", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.beat(a, beatFrom(a, 1))
      yield* TestClock.adjust("100 seconds")
      assert.strictEqual(yield* stateOf(tracker, a), "offline")
      yield* tracker.beat(a, beatFrom(a, 2))
      yield* settle
      const snapshot = yield* tracker.client(a)
      assert.strictEqual(snapshot.state, "online")
      assert.strictEqual(snapshot.joinedAt, 100_000)
      assert.isUndefined(snapshot.offlineAt)
      assert.isUndefined(snapshot.reason)
      assert.deepStrictEqual(tags(events), ["ClientCameOnline", "ClientWentOffline", "ClientCameOnline"])
      assert.isTrue(events[2]?._tag === "ClientCameOnline" && events[2].rejoined)
      // and it is timed out again from its new last beat
      yield* TestClock.adjust(TIMEOUT - 1)
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* stateOf(tracker, a), "offline")
    }),
  )

  it.effect("marks a client offline at once on an explicit signal, and not again at its timeout", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.beat(a, beatFrom(a))
      yield* TestClock.adjust("10 seconds")
      yield* tracker.markOffline(a, "connection-closed")
      yield* settle
      const snapshot = yield* tracker.client(a)
      assert.strictEqual(snapshot.state, "offline")
      assert.strictEqual(snapshot.reason, "connection-closed")
      assert.strictEqual(snapshot.offlineAt, 10_000)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(tags(events), ["ClientCameOnline", "ClientWentOffline"])
    }),
  )
})

describe("LivenessTracker startup debounce", () => {
  it.effect("reports a never-seen client once as never-joined at the join timeout, never as offline", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* TestClock.adjust(JOIN_TIMEOUT - 1)
      assert.strictEqual(yield* stateOf(tracker, a), "registered")
      assert.deepStrictEqual(events, [])

      yield* TestClock.adjust(1)
      const snapshot = yield* tracker.client(a)
      assert.strictEqual(snapshot.state, "never-joined")
      assert.strictEqual(snapshot.reason, "never-joined")
      assert.strictEqual(snapshot.offlineAt, JOIN_TIMEOUT)
      yield* TestClock.adjust("1 hour")
      assert.deepStrictEqual(tags(events), ["ClientNeverJoined"])
    }),
  )

  it.effect("ignores markOffline for a client that never joined", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.markOffline(a, "connection-closed")
      yield* settle
      assert.strictEqual(yield* stateOf(tracker, a), "registered")
      assert.deepStrictEqual(events, [])
    }),
  )

  it.effect("lets a never-joined client join later like any other", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* TestClock.adjust("5 minutes")
      yield* tracker.beat(a, beatFrom(a))
      yield* settle
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      assert.deepStrictEqual(tags(events), ["ClientNeverJoined", "ClientCameOnline"])
      yield* TestClock.adjust(TIMEOUT)
      assert.deepStrictEqual(tags(events), ["ClientNeverJoined", "ClientCameOnline", "ClientWentOffline"])
    }),
  )

  it.effect("does not report a client that joined before the join timeout as never-joined", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup({ timeout: "10 minutes" })
      yield* tracker.register(a)
      yield* TestClock.adjust("1 minute")
      yield* tracker.beat(a, beatFrom(a))
      yield* TestClock.adjust("3 minutes")
      assert.strictEqual(yield* stateOf(tracker, a), "online")
      assert.deepStrictEqual(tags(events), ["ClientCameOnline"])
    }),
  )
})

describe("LivenessTracker authentication", () => {
  it.effect("rejects a beat claiming another client's identity without changing any state", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.register(b)
      const before = yield* tracker.snapshot
      const beatsBefore = (yield* Metric.value(HeartbeatMetrics.beatsReceived)).count

      const error = yield* Effect.flip(tracker.beat(a, beatFrom(b)))
      assert.strictEqual(error._tag, "ImpersonationRejected")
      assert.include(error.message, "client-b")
      yield* settle
      assert.deepStrictEqual(yield* tracker.snapshot, before)
      assert.deepStrictEqual(events, [])
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.beatsReceived)).count, beatsBefore)

      // the genuine beat is accepted and acknowledged
      const ack = yield* tracker.beat(b, beatFrom(b, 7))
      assert.deepStrictEqual(ack, { seq: 7 })
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.beatsReceived)).count, beatsBefore + 1)
    }),
  )

  it.effect("rejects beats, touches and signals for a client that was never registered", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup()
      const error = yield* Effect.flip(tracker.beat(c, beatFrom(c)))
      assert.strictEqual(error._tag, "UnknownClient")
      assert.strictEqual((yield* Effect.flip(tracker.touch(c)))._tag, "UnknownClient")
      assert.strictEqual((yield* Effect.flip(tracker.markOffline(c, "closed")))._tag, "UnknownClient")
      assert.strictEqual((yield* Effect.flip(tracker.client(c)))._tag, "UnknownClient")
      yield* settle
      assert.deepStrictEqual(yield* tracker.snapshot, [])
      assert.deepStrictEqual(events, [])

      yield* tracker.register(c)
      assert.deepStrictEqual(yield* tracker.beat(c, beatFrom(c, 3)), { seq: 3 })
    }),
  )
})

describe("LivenessTracker quorum", () => {
  it.effect("signals QuorumLost and QuorumRestored when the alive count crosses minClients", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup({ minClients: 2 })
      for (const client of [a, b, c]) yield* tracker.register(client)
      yield* tracker.beat(a, beatFrom(a))
      yield* tracker.beat(b, beatFrom(b))
      yield* TestClock.adjust("10 seconds")
      yield* tracker.beat(c, beatFrom(c))
      // quorum first reached: no event. Timeline: a offline at 90 s, c at 100 s, b (beats at 30 s) at 120 s
      yield* TestClock.adjust("20 seconds")
      yield* tracker.beat(b, beatFrom(b, 2))
      yield* TestClock.adjust(60_000 - 1)
      const quorumEvents = () => events.filter((e) => e._tag === "QuorumLost" || e._tag === "QuorumRestored")
      assert.deepStrictEqual(quorumEvents(), [])
      yield* TestClock.adjust(1) // 90 s: a offline, 2 alive
      assert.strictEqual(yield* tracker.aliveCount, 2)
      assert.deepStrictEqual(quorumEvents(), [])
      yield* TestClock.adjust("10 seconds") // 100 s: c offline, 1 alive
      assert.strictEqual(yield* tracker.aliveCount, 1)
      assert.deepStrictEqual(
        quorumEvents().map((e) => [e._tag, e.at, e.alive]),
        [["QuorumLost", 100_000, 1]],
      )
      yield* tracker.beat(a, beatFrom(a, 2))
      yield* settle
      assert.deepStrictEqual(
        quorumEvents().map((e) => [e._tag, e.at, e.alive]),
        [
          ["QuorumLost", 100_000, 1],
          ["QuorumRestored", 100_000, 2],
        ],
      )
    }),
  )

  it.effect("does not signal QuorumLost before the quorum was ever reached", () =>
    Effect.gen(function* () {
      const { tracker, events } = yield* setup({ minClients: 2 })
      yield* tracker.register(a)
      yield* tracker.register(b)
      yield* tracker.beat(a, beatFrom(a))
      yield* TestClock.adjust("5 minutes")
      assert.deepStrictEqual(
        tags(events).filter((tag) => tag.startsWith("Quorum")),
        [],
      )
    }),
  )

  it.effect("awaitAlive returns the alive clients as soon as n are online", () =>
    Effect.gen(function* () {
      const { tracker } = yield* setup()
      for (const client of [a, b, c]) yield* tracker.register(client)
      const waiting = yield* Effect.forkChild(tracker.awaitAlive(2, "1 minute"))
      yield* TestClock.adjust("10 seconds")
      yield* tracker.beat(a, beatFrom(a))
      yield* settle
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust("10 seconds")
      yield* tracker.beat(c, beatFrom(c))
      const alive = yield* Fiber.join(waiting)
      assert.deepStrictEqual([...alive].sort(), [a, c])
      // already satisfied: returns at once
      assert.deepStrictEqual([...(yield* tracker.awaitAlive(1, "1 second"))].sort(), [a, c])
    }),
  )

  it.effect("awaitAlive fails with AwaitAliveTimedOut when too few clients come online in time", () =>
    Effect.gen(function* () {
      const { tracker } = yield* setup()
      for (const client of [a, b, c]) yield* tracker.register(client)
      yield* tracker.beat(a, beatFrom(a))
      const waiting = yield* Effect.forkChild(Effect.flip(tracker.awaitAlive(3, "30 seconds")))
      yield* TestClock.adjust(30_000 - 1)
      assert.isUndefined(waiting.pollUnsafe())
      yield* TestClock.adjust(1)
      const error = yield* Fiber.join(waiting)
      assert.strictEqual(error._tag, "AwaitAliveTimedOut")
      assert.strictEqual(error.alive, 1)
      assert.strictEqual(error.wanted, 3)
    }),
  )
})

describe("LivenessTracker metrics and snapshots", () => {
  it.effect("counts offline transitions and reports the online gauge and alive clients", () =>
    Effect.gen(function* () {
      const { tracker } = yield* setup()
      const offlineBefore = (yield* Metric.value(HeartbeatMetrics.offlineTransitions)).count
      for (const client of [a, b]) yield* tracker.register(client)
      yield* tracker.beat(a, beatFrom(a))
      yield* tracker.beat(b, beatFrom(b))
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.clientsOnline)).value, 2)
      assert.deepStrictEqual([...(yield* tracker.aliveClients)].sort(), [a, b])
      yield* tracker.markOffline(b, "connection-closed")
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.clientsOnline)).value, 1)
      assert.deepStrictEqual(yield* tracker.aliveClients, [a])
      yield* TestClock.adjust(TIMEOUT)
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.offlineTransitions)).count, offlineBefore + 2)
      assert.strictEqual((yield* Metric.value(HeartbeatMetrics.clientsOnline)).value, 0)
      assert.strictEqual(yield* tracker.aliveCount, 0)
    }),
  )

  it.effect("keeps registration idempotent", () =>
    Effect.gen(function* () {
      const { tracker } = yield* setup()
      yield* tracker.register(a)
      yield* tracker.beat(a, beatFrom(a))
      yield* tracker.register(a)
      assert.strictEqual((yield* tracker.snapshot).length, 1)
      assert.strictEqual(yield* stateOf(tracker, a), "online")
    }),
  )
})

describe("LivenessTracker per-client scheduling", () => {
  it.effect("takes 10,000 clients offline each at its own deadline", () =>
    Effect.gen(function* () {
      const clients = Array.from({ length: 10_000 }, (_, i) => id(`client-${i}`))
      const { tracker, events } = yield* setup({ timeout: "10 seconds" })
      for (const client of clients) yield* tracker.register(client)
      // client i beats last at i·7 ms (mod 5 s) into the run: 10,000 distinct deadlines interleaved
      const lastBeatAt = new Map<string, number>()
      const order = clients.map((client, i) => ({ client, at: (i * 7) % 5_000 })).sort((x, y) => x.at - y.at)
      let now = 0
      for (const { client, at } of order) {
        if (at > now) {
          yield* TestClock.adjust(at - now)
          now = at
        }
        yield* tracker.beat(client, beatFrom(client))
        lastBeatAt.set(client, at)
      }
      assert.strictEqual(yield* tracker.aliveCount, 10_000)
      // half-way through the deadlines, exactly those due are offline
      yield* TestClock.adjust(10_000 + 2_500 - now)
      const half = yield* tracker.snapshot
      for (const client of half) {
        const due = lastBeatAt.get(client.id)! + 10_000 <= 12_500
        assert.strictEqual(client.state, due ? "offline" : "online", client.id)
      }
      yield* TestClock.adjust("10 seconds")
      const offline = events.filter((e): e is ClientWentOffline => e._tag === "ClientWentOffline")
      assert.strictEqual(offline.length, 10_000)
      for (const event of offline) assert.strictEqual(event.at, lastBeatAt.get(event.id)! + 10_000)
      for (let i = 1; i < offline.length; i++) assert.isTrue(offline[i - 1]!.at <= offline[i]!.at)
    }),
  )
})

describe("LivenessTracker logging", () => {
  const capture = <A, E, R>(body: (lines: Array<string>) => Effect.Effect<A, E, R>) => {
    const lines: Array<string> = []
    const collector = Logger.make((options) => lines.push(`${options.logLevel}: ${String(options.message)}`))
    return body(lines).pipe(
      Effect.provideService(References.CurrentLoggers, new Set([collector])),
      Effect.provideService(References.MinimumLogLevel, "Debug"),
    )
  }

  it.effect("logs beats at DEBUG and an offline transition at WARNING", () =>
    capture((lines) =>
      Effect.gen(function* () {
        const { tracker } = yield* setup()
        yield* tracker.register(a)
        yield* tracker.beat(a, beatFrom(a, 4))
        assert.isTrue(lines.includes("Debug: heartbeat 4 from client-a"))
        assert.isFalse(lines.some((line) => line.includes("went offline")))
        yield* TestClock.adjust(TIMEOUT)
        const offline = lines.filter((line) => line.includes("went offline"))
        assert.deepStrictEqual(offline, ["Warn: client client-a went offline (timeout), last seen 90000 ms ago"])
      }),
    ),
  )

  it.effect("with logTransitions off it logs no transition above DEBUG (the events still flow)", () =>
    capture((lines) =>
      Effect.gen(function* () {
        const { tracker, events } = yield* setup({ logTransitions: false, minClients: 1 })
        yield* tracker.register(a)
        yield* tracker.beat(a, beatFrom(a, 4))
        yield* TestClock.adjust(TIMEOUT)
        assert.isTrue(lines.includes("Debug: heartbeat 4 from client-a"))
        // Nothing above DEBUG: no came-online, went-offline or quorum-lost line.
        assert.deepStrictEqual(
          lines.filter((line) => !line.startsWith("Debug: ")),
          [],
        )
        const tags = events.map((event) => event._tag)
        assert.includeMembers(tags, ["ClientCameOnline", "ClientWentOffline", "QuorumLost"])
      }),
    ),
  )

  it.effect("summarises a storm of offline transitions after the first 20 lines", () =>
    capture((lines) =>
      Effect.gen(function* () {
        const { tracker } = yield* setup()
        const clients = Array.from({ length: 100 }, (_, i) => id(`storm-${i}`))
        for (const client of clients) yield* tracker.register(client)
        for (const client of clients) yield* tracker.beat(client, beatFrom(client))
        yield* TestClock.adjust(TIMEOUT)
        const offline = lines.filter((line) => line.includes("went offline"))
        assert.strictEqual(offline.length, 21)
        assert.strictEqual(offline.filter((line) => line.startsWith("Warn: client storm-")).length, 20)
        assert.include(offline[20], "... and 80 more clients went offline")
        assert.strictEqual(yield* tracker.aliveCount, 0)
      }),
    ),
  )
})
