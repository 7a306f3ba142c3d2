import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import { launch } from "../examples/launch-job.ts"
import { ended, failureOf, scripted, successOf } from "./support.ts"

describe("README example (examples/launch-job.ts)", () => {
  it.effect("runs without a site that misses the 2-minute deploy timeout, and fails without hospital-a", () =>
    Effect.gen(function* () {
      const running = yield* Effect.forkChild(
        launch({ deploy: scripted({ "hospital-c": { silent: true } }), start: scripted({}) }),
      )
      yield* TestClock.adjust("2 minutes")
      const job = successOf(yield* ended(running))
      assert.strictEqual(yield* job.status, "running")

      const refused = yield* Effect.exit(
        launch({ deploy: scripted({ "hospital-a": { refuse: "disk full" } }), start: scripted({}) }),
      )
      assert.deepStrictEqual(failureOf(refused, "RequiredSiteFailed").sites, ["hospital-a"])
    }).pipe(Effect.scoped),
  )
})
