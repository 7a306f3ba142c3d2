import { assert, describe, it } from "@effect/vitest"
import { Auth } from "@fedguard/app-kit"
import { Envelope } from "@fedguard/transport"
import { Cause, Effect, Exit, Fiber, Queue, Redacted, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as ServerSession from "../src/ServerSession.ts"
import {
  environment,
  FakeServer,
  isDone,
  recordEvents,
  secret,
  settingsOf,
  startClient,
  welcome,
  welcomed,
} from "./support/FakeServer.ts"

describe("ServerSession", () => {
  it.effect("answers the challenge with an HMAC proof of the secret, never the secret itself", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.send({ _tag: "challenge", nonce: "abc" })
      const join = yield* Queue.take(peer.messages)
      assert.strictEqual(join._tag, "join")
      if (join._tag !== "join") return
      assert.strictEqual(join.id, "c0")
      assert.strictEqual(join.samples, 20)
      assert.isTrue(Auth.verify(Redacted.make(secret), "abc", "c0", join.proof))
      assert.isFalse(Auth.verify(Redacted.make("another-secret"), "abc", "c0", join.proof))
      assert.notInclude(JSON.stringify(join), secret)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("beats with @fedguard/heartbeat's messages once welcomed, not before", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.send({ _tag: "challenge", nonce: "n1" })
      yield* Queue.take(peer.messages)
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Queue.size(peer.beats), 0)
      yield* peer.send(welcome())
      const beat = yield* Queue.take(peer.beats)
      assert.deepStrictEqual({ from: beat.from, seq: beat.seq }, { from: "c0", seq: 1 })
      yield* TestClock.adjust("100 millis")
      assert.strictEqual((yield* Queue.take(peer.beats)).seq, 2)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("acked heartbeats keep the session alive well past the peer timeout", () =>
    Effect.gen(function* () {
      const { server, events, peer } = yield* welcomed()
      yield* TestClock.adjust("5 seconds")
      assert.isTrue(yield* peer.connection.isOpen)
      assert.isAbove(yield* Queue.size(peer.beats), 40)
      assert.strictEqual(yield* server.waiting, 0)
      assert.lengthOf(yield* events.published("ServerLost"), 0)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("declares a stalled server lost exactly the peer timeout after its last ack, not before", () =>
    Effect.gen(function* () {
      const { server, events } = yield* welcomed()
      // Beats at 0, 100, …, 1000 ms are acked; then the server stalls (SIGSTOP): nothing reaches it.
      yield* TestClock.adjust("1 second")
      yield* server.network.stall("server:1")
      yield* TestClock.adjust("499 millis")
      assert.lengthOf(yield* events.published("ServerLost"), 0)
      yield* TestClock.adjust("1 millis")
      const [lost] = yield* events.published("ServerLost")
      assert.isDefined(lost)
      if (lost === undefined) return
      assert.match(lost.reason, /no heartbeat ack from server:1 for 500 ms \(peer timeout 500 ms\)/)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a client timeout below the server's interval beats faster instead of losing a healthy server", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      yield* startClient(settingsOf({ heartbeatTimeout: "1s" }))
      const peer = yield* server.nextPeer
      // The server beats every 30 s and waits 90 s; the client gives up on acks after 1 s.
      yield* peer.welcomeClient("n1", welcome("c0", { heartbeatIntervalMs: 30_000, heartbeatTimeoutMs: 90_000 }))
      yield* events.next("Joined")
      yield* TestClock.adjust("10 seconds")
      assert.lengthOf(yield* events.published("ServerLost"), 0)
      assert.isAtLeast(yield* Queue.size(peer.beats), 20)
      // …and still notices the stall within its own timeout.
      yield* server.network.stall("server:1")
      yield* TestClock.adjust("1 second")
      assert.match((yield* events.next("ServerLost")).reason, /peer timeout 1000 ms/)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it("the beat interval never exceeds half the peer timeout", () => {
    assert.deepStrictEqual(
      ServerSession.heartbeatTiming(
        { heartbeatTimeout: 1000 },
        { heartbeatIntervalMs: 30_000, heartbeatTimeoutMs: 90_000 },
      ),
      { intervalMs: 500, peerTimeoutMs: 1000 },
    )
    assert.deepStrictEqual(
      ServerSession.heartbeatTiming({}, { heartbeatIntervalMs: 30_000, heartbeatTimeoutMs: 90_000 }),
      { intervalMs: 30_000, peerTimeoutMs: 90_000 },
    )
  })

  it.effect("a server that never welcomes is left at the join timeout, not before", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.send({ _tag: "challenge", nonce: "n1" })
      yield* Queue.take(peer.messages)
      yield* TestClock.adjust("4999 millis")
      assert.lengthOf(yield* events.published("ServerLost"), 0)
      yield* TestClock.adjust("1 millis")
      const [lost] = yield* events.published("ServerLost")
      assert.isDefined(lost)
      if (lost === undefined) return
      assert.match(lost.reason, /not welcomed by server:1: no welcome within 5000 ms/)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("an undecodable message from the server is a typed Undecodable error, not a crash, and final", () =>
    Effect.gen(function* () {
      const { server, events, client, peer } = yield* welcomed()
      yield* peer.connection.send(Envelope.make("training-completed", { finalAccuracy: "high" }))
      const exit = yield* Fiber.await(client)
      assert.isTrue(Exit.isFailure(exit))
      if (!Exit.isFailure(exit)) return
      assert.isFalse(Cause.hasDies(exit.cause))
      const error = Cause.findErrorOption(exit.cause)
      assert.strictEqual(error._tag === "Some" ? error.value._tag : undefined, "Undecodable")
      assert.match((yield* events.next("ServerMisbehaved")).reason, /training-completed/)
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(yield* server.waiting, 0)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a garbled heartbeat ack or an oversized model is Undecodable too", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const first = yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.welcomeClient("n1")
      yield* peer.connection.send(Envelope.make("heartbeat-ack", { seq: -1 }))
      const exit = yield* Fiber.await(first)
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /Undecodable.*heartbeat ack/s)

      const second = yield* startClient(settingsOf({ id: "c1" }))
      const other = yield* server.nextPeer
      yield* other.welcomeClient("n2", welcome("c1"))
      yield* other.sendModel(1, new Float32Array(8000))
      const oversized = yield* Fiber.await(second)
      assert.match(String(Exit.isFailure(oversized) ? oversized.cause : ""), /Undecodable/)
      assert.isTrue(isDone(second))
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect(
    "a model stream cut by the server's close does not hide the refusal sent before it: the client ends Refused, without reconnecting",
    () =>
      Effect.gen(function* () {
        const { events, peer, client } = yield* welcomed()
        // The server was streaming round 1's model when a newer session of this id replaced this
        // one: half the model, then its refusal, then the close.
        const half = new Uint8Array(7850 * 2)
        yield* Effect.forkChild(
          peer.connection.sendBytes(
            { tag: "model", meta: { round: 1, paramCount: 7850 }, totalBytes: 7850 * 4 },
            Stream.concat(Stream.make(half), Stream.never),
          ),
        )
        // The client is reading the model when the refusal and the close come.
        for (let i = 0; i < 200; i++) yield* Effect.yieldNow
        yield* peer.send({ _tag: "refused", reason: "replaced by a newer session of client id c0" })
        yield* peer.connection.close("session ended")
        const exit = yield* Fiber.await(client)
        assert.isTrue(Exit.isFailure(exit))
        assert.match(String(Exit.isFailure(exit) ? Cause.squash(exit.cause) : ""), /replaced by a newer session/)
        assert.lengthOf(yield* events.published("ServerLost"), 0)
      }).pipe(Effect.scoped, Effect.provide(environment)),
  )
})
