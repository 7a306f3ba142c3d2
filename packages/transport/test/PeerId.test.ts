import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Schema } from "effect"
import * as PeerId from "../src/PeerId.ts"

const decode = Schema.decodeUnknownExit(PeerId.PeerId)

describe("PeerId", () => {
  it.effect("accepts a non-empty id of up to 128 characters", () =>
    Effect.sync(() => {
      assert.strictEqual(PeerId.make("client-1"), "client-1")
      assert.isTrue(Exit.isSuccess(decode("x")))
      assert.isTrue(Exit.isSuccess(decode("x".repeat(128))))
    }),
  )

  it.effect("rejects an empty id, an id over 128 characters and a non-string", () =>
    Effect.sync(() => {
      assert.isTrue(Exit.isFailure(decode("")))
      assert.isTrue(Exit.isFailure(decode("x".repeat(129))))
      assert.isTrue(Exit.isFailure(decode(7)))
      assert.isTrue(Exit.isFailure(decode(null)))
    }),
  )

  it.effect("make throws on an invalid literal rather than minting an unproven identity", () =>
    Effect.sync(() => {
      assert.throws(() => PeerId.make(""))
      assert.throws(() => PeerId.make("x".repeat(129)))
    }),
  )
})
