import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Campaign from "../src/Campaign.ts"
import * as Invariants from "../src/Invariants.ts"

// The short form of `npm run chaos`: one seed of every scenario against the real fed-server and
// fed-client bins, 5,000 garbage frames instead of 100,000. Two scenarios run side by side
// (`maxConcurrency: 2` in vitest.config.ts; each run's processes and ports are its own), the
// longest first. All six at once was faster still, but on a loaded 2-core machine it starved
// stop-clients' processes past their 1.5 s heartbeat timeout (every client marked offline).
const options: Campaign.Options = {
  seeds: [1],
  scenarios: [],
  garbageFrames: 5000,
  limits: Invariants.defaultLimits,
  replayPrefix: "npm run chaos -- --garbage-frames 5000",
}

const short = (name: string) =>
  Effect.gen(function* () {
    const scenario = Campaign.scenarios.find((s) => s.name === name)!
    const summary = yield* Campaign.runScenario(scenario, options, yield* Campaign.references)
    return summary
  }).pipe(Effect.provide(NodeServices.layer))

describe.concurrent("the short chaos campaign (seed 1 of each scenario, real processes)", () => {
  for (const name of ["kill-server", "garbage", "kill-clients", "stop-clients", "impostors"]) {
    it.live(
      `${name}: every run finishes with zero invariant violations`,
      () =>
        Effect.gen(function* () {
          const summary = yield* short(name)
          if (summary._tag === "Skipped") return assert.fail(`${name} was skipped: ${summary.skipped}`)
          assert.strictEqual(summary.runs, 1)
          assert.strictEqual(summary.violations, 0, `failing seeds: ${summary.failingSeeds.join(", ")}`)
          assert.strictEqual(summary.roundsCompleted, summary.roundsPlanned)
          // The whole garbage budget went out while the honest clients trained.
          if (name === "garbage") assert.strictEqual(summary.notes.framesWhileTraining, options.garbageFrames)
        }),
      150_000,
    )
  }

  it.live(
    "partition: zero violations, or skipped only because this machine cannot create a network namespace",
    () =>
      Effect.gen(function* () {
        const summary = yield* short("partition")
        if (summary._tag === "Skipped") {
          assert.include(summary.skipped, "cannot create a network namespace")
          return
        }
        assert.strictEqual(summary.violations, 0, `failing seeds: ${summary.failingSeeds.join(", ")}`)
        assert.strictEqual(summary.roundsCompleted, summary.roundsPlanned)
      }),
    150_000,
  )
})
