import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as Envelope from "../src/Envelope.ts"

const decode = Schema.decodeUnknownExit(Envelope.Envelope)

describe("Envelope", () => {
  it.effect("accepts a tag with any JSON body", () =>
    Effect.sync(() => {
      for (const body of [null, 0, -1.5, "text", true, [], [1, "a", null], { round: 3, nested: { ok: [true] } }]) {
        const exit = decode({ tag: "update", body })
        assert.isTrue(Exit.isSuccess(exit), JSON.stringify(body))
        if (Exit.isSuccess(exit)) assert.deepStrictEqual(exit.value.body, body)
      }
    }),
  )

  it.effect("rejects an empty tag and a tag longer than 256 characters, accepts 1 and 256", () =>
    Effect.sync(() => {
      assert.isTrue(Exit.isFailure(decode({ tag: "", body: null })))
      assert.isTrue(Exit.isFailure(decode({ tag: "x".repeat(257), body: null })))
      assert.isTrue(Exit.isSuccess(decode({ tag: "x", body: null })))
      assert.isTrue(Exit.isSuccess(decode({ tag: "x".repeat(256), body: null })))
    }),
  )

  it.effect("rejects a missing tag or body and values that are not JSON", () =>
    Effect.sync(() => {
      for (const input of [
        { body: null },
        { tag: "join" },
        { tag: 7, body: null },
        { tag: "join", body: Number.POSITIVE_INFINITY },
        { tag: "join", body: { when: new Date(0) } },
        { tag: "join", body: () => 1 },
        null,
        "join",
      ]) {
        assert.isTrue(Exit.isFailure(decode(input)), String(JSON.stringify(input)))
      }
    }),
  )

  it.effect("make defaults the body to null", () =>
    Effect.sync(() => {
      const envelope = Envelope.make("heartbeat")
      assert.strictEqual(envelope.tag, "heartbeat")
      assert.strictEqual(envelope.body, null)
      assert.deepStrictEqual(Envelope.make("join", { id: "c-1" }).body, { id: "c-1" })
    }),
  )

  it.effect("make refuses an invalid tag instead of building an envelope that would fail on the wire", () =>
    Effect.sync(() => {
      assert.throws(() => Envelope.make(""))
    }),
  )
})
