import { assert, describe, it } from "@effect/vitest"
import { Auth, Protocol } from "@fedguard/app-kit"
import { Model } from "@fedguard/federation"
import { type Connection, Envelope } from "@fedguard/transport"
import { Effect, Exit, Fiber, Logger, Option, Redacted, References, Stream } from "effect"
import { TestClock } from "effect/testing"
import { RoundCoordinator } from "../src/RoundCoordinator.ts"
import {
  honest,
  paramCount,
  scriptedClient,
  secret,
  serverUp,
  settingsWith,
  settle,
  until,
  withServer,
} from "./support/Harness.ts"

const settings = settingsWith()

/** Every remaining inbound item of a connection, until it ends (or fails). */
const drain = (connection: Connection.Connection) =>
  connection.inbound.pipe(
    Stream.filter((item) => item._tag === "Message"),
    Stream.mapEffect((item) => Protocol.fromEnvelope(item.envelope, "server")),
    Stream.runCollect,
    Effect.exit,
  )

const refusals = (exit: Exit.Exit<ReadonlyArray<Protocol.Message>, unknown>) =>
  Exit.isSuccess(exit)
    ? exit.value.filter((m) => m._tag === "refused").map((m) => (m._tag === "refused" ? m.reason : ""))
    : []

describe("ClientSession: the handshake", () => {
  it.effect("a wrong proof is refused, published, and the connection is closed (the peer sees end-of-stream)", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const { connection, welcomed } = yield* scriptedClient(network, "c1", 100, honest(0, 1), {
        secret: "not-the-secret",
      })
      assert.isFalse(welcomed)
      const rest = yield* drain(connection)
      // Graceful end: the stream ends, it does not hang.
      assert.isTrue(Exit.isSuccess(rest))
      assert.isFalse(yield* connection.isOpen)
      assert.isTrue(seen.some((e) => e._tag === "ClientRefused" && e.id === "c1" && /wrong proof/.test(e.reason)))
      assert.isFalse(seen.some((e) => e._tag === "ClientJoined"))
    }).pipe(withServer(settings)),
  )

  it.effect("a connection that sends no join is refused and closed after the 10 s handshake timeout, not before", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const connection = yield* network.endpoint("idle").connect("server:1")
      const ended = yield* Effect.forkChild(drain(connection))
      yield* settle()
      yield* TestClock.adjust("9999 millis")
      yield* settle()
      assert.isTrue(yield* connection.isOpen)
      assert.isFalse(seen.some((e) => e._tag === "ClientRefused"))
      yield* TestClock.adjust("1 millis")
      const rest = yield* Fiber.join(ended)
      assert.deepStrictEqual(refusals(rest), ["no join within 10s"])
      assert.isTrue(seen.some((e) => e._tag === "ClientRefused" && e.id === "?"))
    }).pipe(withServer(settings)),
  )

  it.effect("an id outside --client-ids is refused even with the right proof", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const { connection, welcomed } = yield* scriptedClient(network, "intruder", 100, honest(0, 1))
      assert.isFalse(welcomed)
      assert.isTrue(Exit.isSuccess(yield* drain(connection)))
      assert.isTrue(seen.some((e) => e._tag === "ClientRefused" && e.reason === "unknown client id"))
    }).pipe(withServer(settingsWith({ clientIds: "c0,c1", expectedClients: "2" }))),
  )

  it.effect("garbage instead of a join is refused without harming the server: the next client still joins", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const garbage = yield* network.endpoint("garbage").connect("server:1")
      yield* garbage.send(Envelope.make("join", { _tag: "join", id: 42 }))
      assert.isTrue(Exit.isSuccess(yield* drain(garbage)))
      assert.isTrue(seen.some((e) => e._tag === "ClientRefused" && /message "join"/.test(e.reason)))
      const { welcomed } = yield* scriptedClient(network, "c0", 100, honest(0, 1))
      assert.isTrue(welcomed)
    }).pipe(withServer(settings)),
  )
})

describe("ClientSession: duplicate ids", () => {
  it.effect(
    "a second session of an id replaces the first at once: the old one is told why and its round slot is released",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const first = yield* network.endpoint("c1").connect("server:1")
        assert.strictEqual(yield* joinAs(first, "c1"), "welcome")
        yield* scriptedClient(network, "c0", 100, honest(0.1, 100))
        const coordinator = yield* RoundCoordinator
        const global = Model.make("softmax").init(1)
        const round = yield* Effect.forkChild(coordinator.run(1, global, ["c0", "c1"]))
        yield* settle()
        const oldEnd = yield* Effect.forkChild(drain(first))
        // Another process with the same id: its session replaces the first.
        const second = yield* network.endpoint("c1-again").connect("server:1")
        yield* joinAs(second, "c1")
        const outcome = yield* Fiber.join(round)
        // The round did not wait for the replaced session (no clock moved).
        assert.strictEqual(outcome.durationMs, 0)
        assert.deepStrictEqual(
          outcome.state.excluded.map((e) => [e.id, e.reason._tag]),
          [["c1", "Replaced"]],
        )
        assert.deepStrictEqual(
          outcome.state.accepted.map((u) => u.id),
          ["c0"],
        )
        const told = refusals(yield* Fiber.join(oldEnd))
        assert.strictEqual(told.length, 1)
        assert.match(told[0]!, /replaced by a newer session of client id c1/)
        assert.isTrue(seen.some((e) => e._tag === "ClientReplaced" && e.id === "c1"))
        // Still online: a replacement is not a departure.
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
      }).pipe(withServer(settings)),
  )

  it.effect(
    "two processes flapping on one id: after the first replacement the next one is refused with a reason both can log",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const a = yield* network.endpoint("a").connect("server:1")
        assert.strictEqual(yield* joinAs(a, "c1"), "welcome")
        const b = yield* network.endpoint("b").connect("server:1")
        assert.strictEqual(yield* joinAs(b, "c1"), "welcome")
        // A, replaced, reconnects at once: refused, and B keeps its session.
        const a2 = yield* network.endpoint("a2").connect("server:1")
        const answer = yield* joinAs(a2, "c1")
        assert.match(answer, /^refused: duplicate client id c1/)
        assert.isTrue(yield* b.isOpen)
        yield* until(seen, (e) => e._tag === "ClientRefused" && /duplicate client id c1/.test(e.reason))
        assert.strictEqual(seen.filter((e) => e._tag === "ClientReplaced").length, 1)
      }).pipe(withServer(settings)),
  )

  it.effect("a replacement after the flap window (the heartbeat timeout) is allowed again", () =>
    Effect.gen(function* () {
      const { network } = yield* serverUp
      const a = yield* network.endpoint("a").connect("server:1")
      yield* joinAs(a, "c1")
      const b = yield* network.endpoint("b").connect("server:1")
      yield* joinAs(b, "c1")
      // B keeps beating (any frame counts) while the window passes.
      yield* TestClock.adjust("4 seconds")
      yield* b.send(Envelope.make("heartbeat", { from: "c1", seq: 1 }))
      yield* settle()
      yield* TestClock.adjust("1 seconds")
      const c = yield* network.endpoint("c").connect("server:1")
      assert.strictEqual(yield* joinAs(c, "c1"), "welcome")
    }).pipe(withServer(settings)),
  )
})

describe("ClientLiveness: one way to offline", () => {
  it.effect("a killed client produces exactly one ClientWentOffline, though its deadline passes later too", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      yield* scriptedClient(network, "c1", 100, () => [])
      yield* network.kill("c1")
      yield* until(seen, (e) => e._tag === "ClientWentOffline")
      yield* TestClock.adjust("1 minute")
      yield* settle()
      assert.strictEqual(seen.filter((e) => e._tag === "ClientWentOffline").length, 1)
    }).pipe(withServer(settings)),
  )

  it.effect(
    "a silent client goes offline at its deadline, its connection is closed, and the close adds no second event",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const { connection } = yield* scriptedClient(network, "c1", 100, () => [])
        yield* TestClock.adjust("4999 millis")
        yield* settle()
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
        yield* TestClock.adjust("1 millis")
        yield* until(seen, (e) => e._tag === "ClientWentOffline")
        assert.isTrue(Exit.isSuccess(yield* drain(connection)))
        assert.isFalse(yield* connection.isOpen)
        yield* settle()
        assert.strictEqual(seen.filter((e) => e._tag === "ClientWentOffline").length, 1)
      }).pipe(withServer(settings)),
  )

  it.effect(
    "an upload that stops moving mid-stream does not hold the heartbeats behind it: the client stays online",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const connection = yield* network.endpoint("c1").connect("server:1")
        assert.strictEqual(yield* joinAs(connection, "c1"), "welcome")
        // Half an update, then nothing more (FLARE's frozen stream), while the heartbeats go on.
        const half = new Uint8Array(paramCount * 2)
        yield* Effect.forkChild(
          connection.sendBytes(
            { tag: "update", meta: { round: 1, samples: 10, trainLoss: 0.5 }, totalBytes: paramCount * 4 },
            Stream.concat(Stream.make(half), Stream.never),
          ),
        )
        for (let seq = 1; seq <= 4; seq++) {
          yield* TestClock.adjust("4 seconds")
          yield* connection.send(Envelope.make("heartbeat", { from: "c1", seq }))
          yield* settle()
        }
        // 16 s with the upload frozen, against a 5 s heartbeat timeout.
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
        assert.isTrue(yield* connection.isOpen)
      }).pipe(withServer(settings)),
  )

  it.effect("heartbeats keep a client online and are acked with the heartbeat package's own message", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const connection = yield* network.endpoint("c1").connect("server:1")
      assert.strictEqual(yield* joinAs(connection, "c1"), "welcome")
      const acks = yield* Effect.forkChild(
        connection.inbound.pipe(
          Stream.filter((item) => item._tag === "Message" && item.envelope.tag === "heartbeat-ack"),
          Stream.take(3),
          Stream.runCollect,
        ),
      )
      for (let seq = 1; seq <= 3; seq++) {
        yield* TestClock.adjust("4 seconds")
        yield* connection.send(Envelope.make("heartbeat", { from: "c1", seq }))
        yield* settle()
      }
      const received = yield* Fiber.join(acks)
      assert.deepStrictEqual(
        received.map((item) => (item._tag === "Message" ? item.envelope.body : undefined)),
        [{ seq: 1 }, { seq: 2 }, { seq: 3 }],
      )
      assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
    }).pipe(withServer(settings)),
  )
})

/** Joins on an open connection as `id`; returns "welcome" or "refused: <reason>". */
const joinAs = (connection: Connection.Connection, id: string) =>
  Effect.gen(function* () {
    const first = yield* connection.inbound.pipe(Stream.runHead, Effect.map(Option.getOrThrow))
    if (first._tag !== "Message") return "unexpected"
    const challenge = yield* Protocol.fromEnvelope(first.envelope, "server")
    if (challenge._tag !== "challenge") return "unexpected"
    const proof = Auth.prove(Redacted.make(secret), challenge.nonce, id)
    yield* connection.send(Protocol.toEnvelope({ _tag: "join", id, proof, samples: 100 }))
    const answer = yield* connection.inbound.pipe(Stream.runHead, Effect.map(Option.getOrThrow))
    if (answer._tag !== "Message") return "unexpected"
    const message = yield* Protocol.fromEnvelope(answer.envelope, "server")
    return message._tag === "refused" ? `refused: ${message.reason}` : message._tag
  })

describe("ClientSession: the stall monitor of each session", () => {
  // Short stall guard settings: a send blocked 1 s on 3 checks of 100 ms in a row is a stall; the
  // ack-progress watchdog (3 s) ends it later.
  const stallSettings = (closeStalled: "true" | "false") =>
    settingsWith({
      sendTimeout: "500ms",
      stallTimeout: "1s",
      checkInterval: "100ms",
      ackProgressTimeout: "3s",
      closeStalled,
    })

  // c1 joins, stops reading, and round 1 starts sending it the model: the send stays pending.
  const stalledModelSend = Effect.gen(function* () {
    const { network, seen } = yield* serverUp
    const c1 = yield* network.endpoint("c1").connect("server:1")
    assert.strictEqual(yield* joinAs(c1, "c1"), "welcome")
    yield* network.stall("c1")
    const coordinator = yield* RoundCoordinator
    yield* Effect.forkChild(coordinator.run(1, Model.make("softmax").init(1), ["c1"]))
    yield* settle()
    return { seen, c1 }
  })

  // Every log line, as the JSON logger would write it: what a person reading the log sees.
  const capture = <A, E, R>(body: (lines: Array<string>) => Effect.Effect<A, E, R>) => {
    const lines: Array<string> = []
    const collector = Logger.make((options) => void lines.push(String(options.message)))
    return body(lines).pipe(Effect.provideService(References.CurrentLoggers, new Set([collector])))
  }

  it.effect(
    "warn-only: a model send blocked past the stall timeout on 3 checks logs stall-detected, not before, keeps the connection, then stall-cleared",
    () =>
      capture((lines) =>
        Effect.gen(function* () {
          const { seen, c1 } = yield* stalledModelSend
          yield* TestClock.adjust("999 millis")
          yield* settle()
          assert.notInclude(lines, "stall-detected")
          yield* TestClock.adjust("301 millis")
          yield* settle()
          assert.include(lines, "stall-detected")
          const detected = seen.find((e) => e._tag === "StallDetected")
          assert.deepInclude(detected, { id: "c1", checks: 3, closed: false })
          assert.isTrue(yield* c1.isOpen)
          // The watchdog gives up on the send at 3 s: nothing is pending any more, the stall clears.
          yield* TestClock.adjust("2 seconds")
          yield* settle()
          assert.include(lines, "stall-cleared")
          assert.isTrue(yield* c1.isOpen)
        }).pipe(withServer(stallSettings("false"))),
      ),
  )

  it.effect(
    "--close-stalled true: the stalled connection is closed when the stall is detected, and the client goes offline",
    () =>
      Effect.gen(function* () {
        const { seen } = yield* stalledModelSend
        yield* TestClock.adjust("1300 millis")
        yield* until(seen, (e) => e._tag === "ClientWentOffline")
        assert.deepInclude(
          seen.find((e) => e._tag === "StallDetected"),
          { id: "c1", closed: true },
        )
      }).pipe(withServer(stallSettings("true"))),
  )
})
