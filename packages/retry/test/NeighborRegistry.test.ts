import { assert, describe, it } from "@effect/vitest"
import { PeerId, TransportError } from "@fedguard/transport"
import { Cause, ConfigProvider, DateTime, Effect, Exit, Fiber, Layer, Metric, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as NeighborRegistry from "../src/NeighborRegistry.ts"
import * as RetryMetrics from "../src/RetryMetrics.ts"
import * as RetryPolicy from "../src/RetryPolicy.ts"
import { isolatedMetrics, operation, peer, rejected, timeoutOf } from "./fixtures.ts"

const policy = RetryPolicy.make({ jitter: "none" })
const sentinel = PeerId.make("end-of-test")

/**
 * Every event published so far on `events` (a subscription opened before the
 * actions). A last status change of a sentinel peer marks the end: events are
 * published in order, so everything before it has been delivered.
 */
const eventsSoFar = (
  registry: NeighborRegistry.NeighborRegistry["Service"],
  events: Stream.Stream<NeighborRegistry.Event>,
) =>
  Effect.gen(function* () {
    yield* registry.markOffline(sentinel, "end-of-test")
    const all = yield* Stream.runCollect(
      Stream.takeUntil(events, (e) => e._tag === "NeighborWentOffline" && e.peer === sentinel),
    )
    return all.slice(0, -1)
  })

const tagsOf = (events: ReadonlyArray<NeighborRegistry.Event>) => events.map((e) => e._tag)

const setup = (options: NeighborRegistry.Options = {}) =>
  Effect.gen(function* () {
    const registry = yield* NeighborRegistry.make({ policy, ...options })
    const events = yield* registry.subscribe
    return { registry, events }
  })

/** Marks `peer` offline through exhausted retries. */
const exhaust = (registry: NeighborRegistry.NeighborRegistry["Service"]) =>
  Effect.gen(function* () {
    const op = yield* operation(timeoutOf)
    const fiber = yield* Effect.forkChild(Effect.flip(registry.send(peer, op.run)))
    yield* TestClock.adjust("1 hour")
    return { error: yield* Fiber.join(fiber), attempts: yield* Ref.get(op.attempts) }
  })

describe("NeighborRegistry", () => {
  it.effect("fails a send to an offline peer at once with NeighborOffline, without running it", () =>
    Effect.gen(function* () {
      const { registry, events } = yield* setup()
      yield* TestClock.adjust("5 seconds")
      yield* registry.markOffline(peer, "left the federation")
      const op = yield* operation(() => undefined)
      const error = yield* Effect.flip(registry.send(peer, op.run))
      assert.instanceOf(error, NeighborRegistry.NeighborOffline)
      if (error._tag !== "NeighborOffline") return
      assert.strictEqual(error.peer, peer)
      assert.strictEqual(error.reason, "left the federation")
      assert.strictEqual(DateTime.toEpochMillis(error.since), 5000)
      assert.include(error.message, "client-1")
      assert.strictEqual(yield* Ref.get(op.attempts), 0)
      assert.strictEqual(DateTime.toEpochMillis(yield* DateTime.now), 5000, "the send waited")
      assert.deepStrictEqual(tagsOf(yield* eventsSoFar(registry, events)), ["NeighborWentOffline"])
    }),
  )

  it.effect("runs a send to an online peer, including one it never heard of", () =>
    Effect.gen(function* () {
      const { registry } = yield* setup()
      const op = yield* operation(() => undefined)
      assert.strictEqual(yield* registry.send(peer, op.run), "done")
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      assert.deepStrictEqual(yield* registry.online, [peer])
    }),
  )

  it.effect("marks a peer offline when retries run out, returning the last transport error", () =>
    Effect.gen(function* () {
      const { registry, events } = yield* setup()
      const { error, attempts } = yield* exhaust(registry)
      assert.instanceOf(error, TransportError.SendTimeout)
      assert.strictEqual(error._tag === "SendTimeout" ? error.timeoutMs : undefined, 4)
      assert.strictEqual(attempts, 4)
      const status = yield* registry.status(peer)
      assert.strictEqual(status.state, "offline")
      assert.strictEqual(status.reason, "retries-exhausted")
      assert.strictEqual(DateTime.toEpochMillis(status.since), 7000)
      assert.deepStrictEqual(tagsOf(yield* eventsSoFar(registry, events)), [
        "RetryScheduled",
        "RetryScheduled",
        "RetryScheduled",
        "RetryGaveUp",
        "NeighborWentOffline",
      ])
      const next = yield* operation(() => undefined)
      assert.instanceOf(yield* Effect.flip(registry.send(peer, next.run)), NeighborRegistry.NeighborOffline)
      assert.strictEqual(yield* Ref.get(next.attempts), 0)
    }),
  )

  it.effect("leaves a peer online after a final error", () =>
    Effect.gen(function* () {
      const { registry, events } = yield* setup()
      const op = yield* operation(() => rejected)
      assert.instanceOf(yield* Effect.flip(registry.send(peer, op.run)), TransportError.Rejected)
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      assert.strictEqual((yield* registry.status(peer)).state, "online")
      assert.deepStrictEqual(yield* eventsSoFar(registry, events), [])
      const next = yield* operation(() => undefined)
      assert.strictEqual(yield* registry.send(peer, next.run), "done")
    }),
  )

  it.effect("brings a peer back online on an inbound message, and later sends run again", () =>
    Effect.gen(function* () {
      const { registry, events } = yield* setup()
      yield* exhaust(registry)
      yield* TestClock.adjust("1 minute")
      yield* registry.observeInbound(peer)
      const status = yield* registry.status(peer)
      assert.strictEqual(status.state, "online")
      assert.isUndefined(status.reason)
      const op = yield* operation(() => undefined)
      assert.strictEqual(yield* registry.send(peer, op.run), "done")
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      const neighborEvents = (yield* eventsSoFar(registry, events)).filter((e) => e._tag.startsWith("Neighbor"))
      assert.deepStrictEqual(tagsOf(neighborEvents), ["NeighborWentOffline", "NeighborCameOnline"])
      const cameOnline = neighborEvents[1]!
      assert.strictEqual(
        cameOnline._tag === "NeighborCameOnline" ? DateTime.toEpochMillis(cameOnline.offlineSince) : 0,
        7000,
      )
    }),
  )

  it.effect("publishes nothing for marks that change nothing", () =>
    Effect.gen(function* () {
      const { registry, events } = yield* setup({ peers: [peer] })
      yield* registry.observeInbound(peer)
      yield* registry.markOnline(peer)
      yield* registry.markOffline(peer, "first")
      yield* registry.markOffline(peer, "second")
      assert.strictEqual((yield* registry.status(peer)).reason, "first")
      yield* registry.observeInbound(peer)
      yield* registry.observeInbound(peer)
      assert.deepStrictEqual(tagsOf(yield* eventsSoFar(registry, events)), [
        "NeighborWentOffline",
        "NeighborCameOnline",
      ])
      const toOffline = Metric.withAttributes(RetryMetrics.statusChanges, { to: "offline" })
      const toOnline = Metric.withAttributes(RetryMetrics.statusChanges, { to: "online" })
      assert.strictEqual((yield* Metric.value(toOffline)).count, 2) // peer + sentinel
      assert.strictEqual((yield* Metric.value(toOnline)).count, 1)
    }).pipe(isolatedMetrics),
  )

  it.effect("stops a send in backoff at its next attempt when the peer is marked offline meanwhile", () =>
    Effect.gen(function* () {
      const { registry } = yield* setup()
      const op = yield* operation(timeoutOf)
      const fiber = yield* Effect.forkChild(Effect.flip(registry.send(peer, op.run)))
      yield* TestClock.adjust(500)
      yield* registry.markOffline(peer, "operator")
      yield* TestClock.adjust("1 hour")
      const error = yield* Fiber.join(fiber)
      assert.instanceOf(error, NeighborRegistry.NeighborOffline)
      assert.strictEqual(yield* Ref.get(op.attempts), 1)
      assert.strictEqual((yield* registry.status(peer)).reason, "operator")
    }),
  )

  it.effect("lists known peers: online ones in `online`, all of them in `snapshot`", () =>
    Effect.gen(function* () {
      const [a, b, c] = ["a", "b", "c"].map(PeerId.make) as [PeerId.PeerId, PeerId.PeerId, PeerId.PeerId]
      const { registry } = yield* setup({ peers: [a, b, c] })
      yield* registry.markOffline(b, "partitioned")
      assert.deepStrictEqual([...(yield* registry.online)].sort(), [a, c])
      const snapshot = yield* registry.snapshot
      assert.deepStrictEqual([...snapshot.keys()].sort(), [a, b, c])
      assert.strictEqual(snapshot.get(b)?.state, "offline")
      assert.strictEqual((yield* registry.status(PeerId.make("stranger"))).state, "online")
    }),
  )

  it.effect("loses no update under hundreds of concurrent sends and status changes", () =>
    Effect.gen(function* () {
      const group = (name: string, n: number) => Array.from({ length: n }, (_, i) => PeerId.make(`${name}-${i}`))
      const steady = group("steady", 10) // only good sends
      const doomed = group("doomed", 10) // only sends that time out
      const flapping = group("flapping", 20) // good sends while others flap the status
      const peers = [...steady, ...doomed, ...flapping]
      const { registry, events } = yield* setup({ peers })
      const ran = yield* Ref.make(0)
      const good = Effect.andThen(
        Ref.update(ran, (n) => n + 1),
        Effect.as(Effect.yieldNow, "ok" as const),
      )
      const timingOut = (p: PeerId.PeerId) => Effect.fail(new TransportError.SendTimeout({ peer: p, timeoutMs: 1 }))
      const times = <A>(n: number, f: () => A) => Array.from({ length: n }, f)

      // Phase 1, all at once: 150 good sends, 30 doomed sends, 80 status changes.
      const phase1 = yield* Effect.forkChild(
        Effect.all(
          [
            Effect.forEach(
              [...steady, ...flapping].flatMap((p) => times(5, () => registry.send(p, good))),
              Effect.exit,
              { concurrency: "unbounded" },
            ),
            Effect.forEach(
              doomed.flatMap((p) => times(3, () => registry.send(p, timingOut(p)))),
              Effect.exit,
              { concurrency: "unbounded" },
            ),
            Effect.all(
              flapping.flatMap((p) => [
                registry.markOffline(p, "flap"),
                registry.observeInbound(p),
                registry.markOffline(p, "flap"),
                registry.markOnline(p),
              ]),
              { concurrency: "unbounded" },
            ),
          ],
          { concurrency: "unbounded" },
        ),
      )
      yield* TestClock.adjust("1 hour")
      const [goodExits, doomedExits] = yield* Fiber.join(phase1)
      const failedWith = (tag: string) => (exit: Exit.Exit<unknown, { readonly _tag: string }>) =>
        Exit.isFailure(exit) && Cause.findErrorOption(exit.cause).pipe((e) => e._tag === "Some" && e.value._tag === tag)

      // Good sends either ran once and succeeded or were skipped (peer flapped offline).
      const succeeded = goodExits.filter(Exit.isSuccess).length
      const skipped = goodExits.filter(failedWith("NeighborOffline")).length
      assert.strictEqual(succeeded + skipped, 150)
      assert.strictEqual(yield* Ref.get(ran), succeeded)
      assert.isTrue(goodExits.slice(0, 50).every(Exit.isSuccess), "a send to a steady peer failed")
      // Doomed sends either gave up (SendTimeout) or found their peer already offline.
      const gaveUp = doomedExits.filter(failedWith("SendTimeout")).length
      assert.strictEqual(gaveUp + doomedExits.filter(failedWith("NeighborOffline")).length, 30)
      for (const p of doomed) {
        const status = yield* registry.status(p)
        assert.strictEqual(status.state, "offline")
        assert.strictEqual(status.reason, "retries-exhausted")
      }
      for (const p of steady) assert.strictEqual((yield* registry.status(p)).state, "online")

      // Phase 2, all at once: 80 marks offline, then 120 marks online.
      yield* Effect.all(
        peers.flatMap((p) => times(2, () => registry.markOffline(p, "maintenance"))),
        { concurrency: "unbounded" },
      )
      assert.strictEqual((yield* registry.online).length, 0)
      yield* Effect.all(
        peers.flatMap((p) => [registry.observeInbound(p), registry.observeInbound(p), registry.markOnline(p)]),
        { concurrency: "unbounded" },
      )
      assert.strictEqual((yield* registry.online).length, peers.length)

      const published = yield* eventsSoFar(registry, events)
      const count = (tag: NeighborRegistry.Event["_tag"], p?: PeerId.PeerId) =>
        published.filter((e) => e._tag === tag && (p === undefined || e.peer === p)).length
      // Per peer, availability events alternate, starting offline and ending online.
      for (const p of peers) {
        const changes = published.filter(
          (e) => (e._tag === "NeighborWentOffline" || e._tag === "NeighborCameOnline") && e.peer === p,
        )
        assert.deepStrictEqual(
          tagsOf(changes),
          changes.map((_, i) => (i % 2 === 0 ? "NeighborWentOffline" : "NeighborCameOnline")),
          `${p} changed state twice in a row`,
        )
        assert.strictEqual(changes.at(-1)?._tag, "NeighborCameOnline", `${p} did not end online`)
      }
      // Steady peers changed once (phase 2); doomed peers went offline once in phase 1.
      for (const p of steady) assert.strictEqual(count("NeighborWentOffline", p), 1)
      for (const p of doomed) {
        assert.strictEqual(count("NeighborWentOffline", p), 1, `${p} went offline more than once`)
        assert.isAtLeast(count("RetryGaveUp", p), 1)
      }
      // Every give-up has its event; every retry its event and metric sample.
      assert.strictEqual(count("RetryGaveUp"), gaveUp)
      assert.strictEqual((yield* Metric.value(RetryMetrics.retryDelay)).count, count("RetryScheduled"))
      const toOffline = Metric.withAttributes(RetryMetrics.statusChanges, { to: "offline" })
      const toOnline = Metric.withAttributes(RetryMetrics.statusChanges, { to: "online" })
      assert.strictEqual((yield* Metric.value(toOffline)).count, count("NeighborWentOffline") + 1) // + sentinel
      assert.strictEqual((yield* Metric.value(toOnline)).count, count("NeighborCameOnline"))
      assert.strictEqual(count("NeighborCameOnline"), count("NeighborWentOffline"))
    }).pipe(isolatedMetrics),
  )

  it.effect("builds from configuration with layerConfig, naming a wrong key", () =>
    Effect.gen(function* () {
      const provider = (env: Record<string, string>) =>
        ConfigProvider.layer(ConfigProvider.fromEnv({ env }).pipe(ConfigProvider.constantCase))
      const registry = yield* NeighborRegistry.NeighborRegistry.pipe(
        Effect.provide(NeighborRegistry.layerConfig().pipe(Layer.provide(provider({ RETRY_MAX_RETRIES: "7" })))),
      )
      assert.strictEqual(registry.policy.maxRetries, 7)
      const error = yield* Effect.flip(
        Layer.build(NeighborRegistry.layerConfig().pipe(Layer.provide(provider({ RETRY_JITTER: "lots" })))),
      )
      assert.include(error.message, '["retry"]["jitter"]')
    }),
  )
})
