import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Ref, Scope } from "effect"
import { TestClock } from "effect/testing"
import type { Heartbeat } from "../src/Heartbeat.ts"
import * as HeartbeatSender from "../src/HeartbeatSender.ts"
import { id, record, settle, tags } from "./support.ts"

const me = id("client-1")

/** A `send` that records what it is given. */
const recordingSend = () => {
  const sent: Array<Heartbeat> = []
  const send = (beat: Heartbeat) => Effect.sync(() => void sent.push(beat))
  return { sent, send }
}

describe("HeartbeatSender beats", () => {
  it.effect("sends a beat at start and then every interval, with increasing seq", () =>
    Effect.gen(function* () {
      const { sent, send } = recordingSend()
      yield* HeartbeatSender.make({ from: me, send, interval: "30 seconds" })
      yield* settle
      assert.deepStrictEqual(sent, [{ from: me, seq: 1 }])
      yield* TestClock.adjust(30_000 - 1)
      assert.strictEqual(sent.length, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(sent.length, 2)
      yield* TestClock.adjust("60 seconds")
      assert.deepStrictEqual(
        sent.map((beat) => beat.seq),
        [1, 2, 3, 4],
      )
      assert.isTrue(sent.every((beat) => beat.from === me))
    }),
  )

  it.effect("attaches the status payload evaluated before each beat", () =>
    Effect.gen(function* () {
      const { sent, send } = recordingSend()
      const round = yield* Ref.make(1)
      yield* HeartbeatSender.make({
        from: me,
        send,
        status: Effect.map(Ref.get(round), (r) => ({ round: r })),
      })
      yield* settle
      yield* Ref.set(round, 2)
      yield* TestClock.adjust("30 seconds")
      assert.deepStrictEqual(
        sent.map((beat) => beat.status),
        [{ round: 1 }, { round: 2 }],
      )
    }),
  )

  it.effect("sends no beat after its Scope closes", () =>
    Effect.gen(function* () {
      const { sent, send } = recordingSend()
      const scope = yield* Scope.make()
      yield* HeartbeatSender.make({ from: me, send }).pipe(Scope.provide(scope))
      yield* TestClock.adjust("90 seconds")
      assert.strictEqual(sent.length, 4)
      yield* Scope.close(scope, Exit.void)
      yield* TestClock.adjust("1 hour")
      assert.strictEqual(sent.length, 4)
    }),
  )

  it.effect("logs a failed send and keeps beating", () =>
    Effect.gen(function* () {
      let attempts = 0
      const send = (_beat: Heartbeat) =>
        Effect.suspend(() => (++attempts === 2 ? Effect.fail("connection reset" as const) : Effect.void))
      const sender = yield* HeartbeatSender.make({ from: me, send })
      const events = yield* record(sender.subscribe)
      yield* TestClock.adjust("60 seconds")
      assert.strictEqual(attempts, 3)
      const outcomes = events.flatMap((e) =>
        e._tag === "BeatSent" || e._tag === "BeatSendFailed" ? [[e._tag, e.seq]] : [],
      )
      assert.deepStrictEqual(outcomes.slice(-2), [
        ["BeatSendFailed", 2],
        ["BeatSent", 3],
      ])
    }),
  )

  it.effect("gives up on a send that stalls for a whole interval and sends the next beat on time", () =>
    Effect.gen(function* () {
      let attempts = 0
      const send = (_beat: Heartbeat) => Effect.suspend(() => (++attempts === 1 ? Effect.never : Effect.void))
      const sender = yield* HeartbeatSender.make({ from: me, send, interval: "30 seconds" })
      const events = yield* record(sender.subscribe)
      yield* TestClock.adjust(30_000 - 1)
      assert.strictEqual(attempts, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(attempts, 2)
      assert.deepStrictEqual(tags(events), ["BeatSendFailed", "BeatSent"])
    }),
  )
})

describe("HeartbeatSender peer loss", () => {
  it.effect("reports PeerLost 90 s after the start when no ack ever arrives, not before", () =>
    Effect.gen(function* () {
      const { send } = recordingSend()
      const sender = yield* HeartbeatSender.make({ from: me, send })
      const lost = yield* Effect.forkChild(sender.lost)
      yield* TestClock.adjust(90_000 - 1)
      assert.isUndefined(lost.pollUnsafe())
      yield* TestClock.adjust(1)
      const event = yield* Fiber.join(lost)
      assert.strictEqual(event.at, 90_000)
      assert.strictEqual(event.lastAckAt, 0)
      assert.isUndefined(event.lastAckSeq)
    }),
  )

  it.effect("postpones PeerLost with every ack, to peerTimeout after the last one", () =>
    Effect.gen(function* () {
      const { send } = recordingSend()
      const sender = yield* HeartbeatSender.make({ from: me, send })
      const events = yield* record(sender.subscribe)
      const lost = yield* Effect.forkChild(sender.lost)
      yield* TestClock.adjust("1 second")
      yield* sender.acknowledge({ seq: 1 })
      yield* TestClock.adjust("59 seconds")
      yield* sender.acknowledge({ seq: 3 })
      yield* TestClock.adjust("60 seconds")
      yield* sender.acknowledge({ seq: 2 }) // late ack: still a sign of life at 120 s
      yield* TestClock.adjust(90_000 - 1)
      assert.isUndefined(lost.pollUnsafe())
      yield* TestClock.adjust(1)
      const event = yield* Fiber.join(lost)
      assert.strictEqual(event.at, 210_000)
      assert.strictEqual(event.lastAckAt, 120_000)
      assert.strictEqual(event.lastAckSeq, 3)
      const acks = events.filter((e) => e._tag === "AckReceived")
      assert.deepStrictEqual(
        acks.map((e) => e.seq),
        [1, 3, 2],
      )
      assert.strictEqual(acks[0]?._tag === "AckReceived" && acks[0].roundTripMs, 1_000)
      assert.strictEqual(tags(events).filter((tag) => tag === "PeerLost").length, 1)
    }),
  )

  it.effect("ignores acks for beats it has not sent", () =>
    Effect.gen(function* () {
      const { send } = recordingSend()
      const sender = yield* HeartbeatSender.make({ from: me, send })
      const lost = yield* Effect.forkChild(sender.lost)
      yield* TestClock.adjust("80 seconds")
      yield* sender.acknowledge({ seq: 99 })
      yield* TestClock.adjust("10 seconds")
      const event = yield* Fiber.join(lost)
      assert.strictEqual(event.at, 90_000)
    }),
  )

  it.effect("reports PeerLost only once and keeps beating until the session closes", () =>
    Effect.gen(function* () {
      const { sent, send } = recordingSend()
      const sender = yield* HeartbeatSender.make({ from: me, send })
      const events = yield* record(sender.subscribe)
      yield* TestClock.adjust("10 minutes")
      assert.strictEqual(tags(events).filter((tag) => tag === "PeerLost").length, 1)
      assert.strictEqual(sent.length, 21)
      assert.strictEqual(yield* sender.lastSeq, 21)
    }),
  )
})
