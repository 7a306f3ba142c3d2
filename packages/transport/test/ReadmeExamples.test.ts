import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import { program } from "../examples/join-and-upload.ts"
// The README's test example is itself a test: importing it registers it in this file.
import "../examples/stalled-upload.test.ts"

describe("README examples", () => {
  it.effect("examples/join-and-upload.ts receives the join message, then all 10 MiB of the upload", () =>
    Effect.gen(function* () {
      const { join, bytes } = yield* program
      assert.isTrue(Option.isSome(join) && join.value._tag === "Message" && join.value.envelope.tag === "join")
      assert.strictEqual(bytes.byteLength, 10 * 1024 * 1024)
    }),
  )
})
