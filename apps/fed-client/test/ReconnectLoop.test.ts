import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Queue, Schema } from "effect"
import { TestClock } from "effect/testing"
import { ClientSettings } from "../src/ClientSettings.ts"
import * as ReconnectLoop from "../src/ReconnectLoop.ts"
import {
  environment,
  FakeServer,
  isDone,
  recordEvents,
  secret,
  settingsOf,
  slowToClose,
  startClient,
  welcome,
} from "./support/FakeServer.ts"

const errorTagOf = <A, E>(exit: Exit.Exit<A, E>) => {
  if (!Exit.isFailure(exit)) return undefined
  const error = Cause.findErrorOption(exit.cause)
  return error._tag === "Some" ? (error.value as { readonly _tag: string })._tag : undefined
}

describe("ReconnectLoop", () => {
  it("uses @fedguard/retry's policy: base·2^(n-1), additive jitter of one base, capped", () => {
    const policy = ReconnectLoop.policyOf({ maxRetries: 3, retryBaseDelay: 1000, retryMaxDelay: 30_000 })
    assert.strictEqual(policy.jitter, "additive")
    assert.strictEqual(policy.maxRetries, 3)
  })

  it.effect("loses a server that stops acking and rejoins on a new connection exactly after the published delay", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      const client = yield* startClient(settingsOf())
      const first = yield* server.nextPeer
      yield* first.setAcking(false)
      yield* first.welcomeClient("n1")
      yield* events.next("Joined")
      yield* TestClock.adjust("500 millis")
      const lost = yield* events.next("ServerLost")
      // A welcomed session failed: the first delay of the policy, 1 s plus up to 1 s of jitter.
      assert.isAtLeast(lost.reconnectInMs, 1000)
      assert.isAtMost(lost.reconnectInMs, 2000)
      yield* TestClock.adjust(lost.reconnectInMs - 1)
      assert.strictEqual(yield* server.waiting, 0)
      yield* TestClock.adjust(1)
      const second = yield* server.nextPeer
      const rejoin = yield* second.welcomeClient("n2")
      assert.strictEqual(rejoin._tag, "join")
      yield* second.send({ _tag: "training-completed", finalAccuracy: 0.9, rounds: 1 })
      const done = yield* Fiber.join(client)
      assert.strictEqual(done.finalAccuracy, 0.9)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a stalled server's slow close delays neither ServerLost nor the reconnect", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      // Closing a connection takes 2 s, as a TCP socket waits for a SIGSTOPped peer's end.
      const client = yield* startClient(settingsOf(), { transport: slowToClose("2 seconds") })
      const first = yield* server.nextPeer
      yield* first.welcomeClient("n1")
      yield* events.next("Joined")
      yield* TestClock.adjust("1 second")
      yield* server.network.stall("server:1")
      yield* TestClock.adjust("499 millis")
      assert.lengthOf(yield* events.published("ServerLost"), 0)
      yield* TestClock.adjust("1 millis")
      const [lost] = yield* events.published("ServerLost")
      assert.isDefined(lost)
      if (lost === undefined) return
      yield* TestClock.adjust(lost.reconnectInMs - 1)
      assert.strictEqual(yield* server.waiting, 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(yield* server.waiting, 1)
      // Let the slow closes finish on the TestClock before the test's Scope ends.
      const stopping = yield* Effect.forkChild(Fiber.interrupt(client))
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(stopping)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("after a server restart, seeded clients reconnect at spread delays, each within the policy's bounds", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      const ids = ["c0", "c1", "c2", "c3"]
      for (const [index, id] of ids.entries()) {
        yield* startClient(settingsOf({ id, maxRetries: "3", retryMaxDelay: "30s" }), { seed: 100 + index })
        const peer = yield* server.nextPeer
        yield* peer.welcomeClient(`n-${id}`, welcome(id))
        yield* events.next("Joined")
      }
      // The server dies: every connection breaks at once and connecting fails until it is back.
      yield* server.network.kill("server:1")
      const firstDelays = new Map<string, number>()
      for (let i = 0; i < ids.length; i++) {
        const lost = yield* events.next("ServerLost")
        firstDelays.set(lost.id, lost.reconnectInMs)
      }
      assert.deepStrictEqual([...firstDelays.keys()].sort(), ids)
      for (const delay of firstDelays.values()) {
        assert.isAtLeast(delay, 1000)
        assert.isAtMost(delay, 2000)
      }
      assert.strictEqual(new Set(firstDelays.values()).size, ids.length, "no two clients wait the same delay")
      // Their next attempts fail too: retry 2 waits 2–3 s, retry 3 waits 4–5 s, again spread.
      yield* TestClock.adjust("2 seconds")
      const secondDelays: Array<number> = []
      for (let i = 0; i < ids.length; i++) secondDelays.push((yield* events.next("ConnectFailed")).reconnectInMs ?? -1)
      for (const delay of secondDelays) {
        assert.isAtLeast(delay, 2000)
        assert.isAtMost(delay, 3000)
      }
      assert.strictEqual(new Set(secondDelays).size, ids.length)
      yield* TestClock.adjust("3 seconds")
      for (let i = 0; i < ids.length; i++) {
        const delay = (yield* events.next("ConnectFailed")).reconnectInMs ?? -1
        assert.isAtLeast(delay, 4000)
        assert.isAtMost(delay, 5000)
      }
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a welcomed session resets the failure count; unwelcomed ones count against maxRetries", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      const client = yield* startClient(settingsOf())
      // Two sessions closed before their welcome: retries 1 and 2 (1–2 s, then 2–3 s).
      for (const [bounds, nonce] of [
        [[1000, 2000], "n1"],
        [[2000, 3000], "n2"],
      ] as const) {
        const peer = yield* server.nextPeer
        yield* peer.send({ _tag: "challenge", nonce })
        yield* Queue.take(peer.messages)
        yield* peer.connection.close("not now")
        const lost = yield* events.next("ServerLost")
        assert.match(lost.reason, /not welcomed/)
        assert.isAtLeast(lost.reconnectInMs, bounds[0])
        assert.isAtMost(lost.reconnectInMs, bounds[1])
        yield* TestClock.adjust(lost.reconnectInMs)
      }
      // The third is welcomed, then ends: the count starts again, no give-up (maxRetries 2).
      const third = yield* server.nextPeer
      yield* third.welcomeClient("n3")
      yield* events.next("Joined")
      yield* third.connection.close("restarting")
      const lost = yield* events.next("ServerLost")
      assert.match(lost.reason, /ended before training completed/)
      assert.isAtMost(lost.reconnectInMs, 2000)
      yield* TestClock.adjust(lost.reconnectInMs)
      yield* server.nextPeer
      assert.isFalse(isDone(client))
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("gives up after maxRetries + 1 attempts without a welcome, not before, and tries no more", () =>
    Effect.gen(function* () {
      const events = yield* recordEvents
      // No server listens: every connect fails.
      const client = yield* startClient(settingsOf())
      const first = yield* events.next("ConnectFailed")
      assert.match(first.reason, /unreachable/)
      yield* TestClock.adjust(first.reconnectInMs ?? -1)
      const second = yield* events.next("ConnectFailed")
      yield* TestClock.adjust((second.reconnectInMs ?? -1) - 1)
      assert.isFalse(isDone(client))
      yield* TestClock.adjust(1)
      const gaveUp = yield* events.next("GaveUp")
      assert.strictEqual(gaveUp.attempts, 3)
      const exit = yield* Fiber.await(client)
      assert.strictEqual(errorTagOf(exit), "ReconnectGaveUp")
      assert.match(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), /after 3 attempts without a welcome/)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a refused join ends the client with Refused at once, without reconnecting", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      const client = yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.send({ _tag: "challenge", nonce: "abc" })
      yield* Queue.take(peer.messages)
      yield* peer.send({ _tag: "refused", reason: "unknown client id" })
      const exit = yield* Fiber.await(client)
      assert.strictEqual(errorTagOf(exit), "Refused")
      assert.strictEqual((yield* events.next("Refused")).reason, "unknown client id")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* server.waiting, 0)
      assert.lengthOf(yield* events.published("ServerLost"), 0)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("with the default policy a client rides out a server outage of a minute and then joins", () =>
    Effect.gen(function* () {
      const events = yield* recordEvents
      const defaults = Schema.decodeUnknownSync(ClientSettings)({
        server: "server:1",
        id: "c0",
        secret,
        shardIndex: "0",
        shardCount: "2",
      })
      yield* startClient(defaults)
      // No server for (at least) 60 s: every connect fails, and the client keeps trying.
      let waited = 0
      while (waited < 60_000) {
        const failed = yield* events.next("ConnectFailed")
        const delay = failed.reconnectInMs ?? 0
        assert.isAbove(delay, 0)
        if (waited + delay >= 60_000) break
        yield* TestClock.adjust(delay)
        waited += delay
      }
      assert.lengthOf(yield* events.published("GaveUp"), 0)
      // The server is back before the next attempt: the client joins.
      const server = yield* FakeServer
      yield* TestClock.adjust("31 seconds")
      const peer = yield* server.nextPeer
      yield* peer.welcomeClient("n1")
      yield* events.next("Joined")
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )
})
