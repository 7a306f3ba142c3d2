import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { trainRounds } from "../examples/task-thread-training.ts"

describe("README example (examples/task-thread-training.ts)", () => {
  it.live("trains three rounds in a real worker thread, moving each model there and the update back", () =>
    Effect.gen(function* () {
      const models = [0, 1, 2].map(() => new Uint8Array(1024).fill(10))
      const updates = yield* trainRounds(new URL("./task-example-worker.ts", import.meta.url), models)
      assert.deepStrictEqual(
        updates.map((u) => [u.byteLength, u[0]]),
        [
          [1024, 10],
          [1024, 11],
          [1024, 12],
        ],
      )
      assert.isTrue(
        models.every((m) => m.byteLength === 0),
        "each model was transferred, not copied",
      )
    }).pipe(Effect.timeout("15 seconds")),
  )
})
