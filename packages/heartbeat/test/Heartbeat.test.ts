import { assert, describe, it } from "@effect/vitest"
import { PeerId } from "@fedguard/transport"
import { Effect, Schema } from "effect"
import * as Heartbeat from "../src/Heartbeat.ts"

describe("Heartbeat wire messages", () => {
  it.effect("decodes a beat with a JSON status and an ack", () =>
    Effect.gen(function* () {
      const beat = yield* Schema.decodeUnknownEffect(Heartbeat.Heartbeat)({
        from: "client-1",
        seq: 3,
        status: { round: 2, loss: 0.25 },
      })
      assert.deepStrictEqual(beat, { from: PeerId.make("client-1"), seq: 3, status: { round: 2, loss: 0.25 } })
      assert.deepStrictEqual(yield* Schema.decodeUnknownEffect(Heartbeat.HeartbeatAck)({ seq: 3 }), { seq: 3 })
      const bare = yield* Schema.decodeUnknownEffect(Heartbeat.Heartbeat)({ from: "client-1", seq: 0 })
      assert.isFalse("status" in bare)
    }),
  )

  it.effect("rejects a beat without a valid sender or with a fractional or negative seq, naming the field", () =>
    Effect.gen(function* () {
      const decode = (input: unknown) => Effect.flip(Schema.decodeUnknownEffect(Heartbeat.Heartbeat)(input))
      assert.include(String(yield* decode({ from: "", seq: 1 })), "from")
      assert.include(String(yield* decode({ from: "client-1", seq: -1 })), "seq")
      assert.include(String(yield* decode({ from: "client-1", seq: 1.5 })), "seq")
      assert.include(String(yield* Effect.flip(Schema.decodeUnknownEffect(Heartbeat.HeartbeatAck)({}))), "seq")
    }),
  )
})
