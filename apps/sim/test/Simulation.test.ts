import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Findings from "../src/Findings.ts"
import * as Simulation from "../src/Simulation.ts"

// The short form of `npm run sim`: 100 clients, 8 rounds, enough faults (0.04 per client and
// round) and an outage of 45 % of the clients, so that detections, exclusions, rejoins and a
// pause all happen in every run.
const short = (seed: number) => Simulation.run({ clients: 100, rounds: 8, seed, faultRate: 0.04, outage: 0.45 })

const assertSound = (result: Simulation.Result) => {
  assert.isTrue(result.finished, "the run ended before its virtual-time limit")
  assert.strictEqual(result.serverOutcome, "completed")
  assert.strictEqual(result.roundsCompleted, 8)
  assert.deepStrictEqual(result.violations, [])
  // The faults happened and were seen: not a fault-free run that passes by doing nothing.
  assert.isAbove(
    Object.values(result.faults).reduce((a, b) => a + b, 0),
    40,
  )
  assert.isAbove(result.detection.silenceToOffline.count, 0)
  assert.isAbove(result.exclusions.offline ?? 0, 0)
  assert.isAbove(result.roundsPaused.length, 0)
  // Every silence-detected client was silent for the timeout, and not much longer.
  assert.isAtLeast(result.detection.silenceToOffline.min, result.heartbeatTimeoutMs)
  assert.isAtMost(result.detection.silenceToOffline.max, result.heartbeatTimeoutMs + 1_000)
  assert.strictEqual(result.spillsLeft, 0)
}

describe("Simulation (100 clients, real services, TestClock)", () => {
  it.live(
    "the same seed gives the same event log, byte for byte, and no invariant breaks",
    () =>
      Effect.gen(function* () {
        const first = yield* short(1)
        const second = yield* short(1)
        assertSound(first)
        assert.strictEqual(second.eventLogSha256, first.eventLogSha256)
        assert.strictEqual(second.eventLog, first.eventLog)
        assert.isAbove(first.eventLogLines, 1_000)
      }),
    60_000,
  )

  it.live(
    "another seed gives another schedule and another log, with no invariant broken either",
    () =>
      Effect.gen(function* () {
        const one = yield* short(1)
        const two = yield* short(2)
        assertSound(two)
        assert.notStrictEqual(two.eventLogSha256, one.eventLogSha256)
      }),
    60_000,
  )
})

const entry = (event: string, fields: Record<string, unknown>, t = 0) => ({ t, event, fields })

describe("Findings (the invariants catch what they claim to)", () => {
  it("an offline for silence shorter than the timeout is a violation; at the timeout it is not", () => {
    const offline = entry("client-offline", { id: "c0001", reason: "timeout" }, 20_000)
    assert.strictEqual(Findings.checkOffline(offline, 14_999, 15_000)?.invariant, "early-offline")
    assert.isUndefined(Findings.checkOffline(offline, 15_000, 15_000))
    // A closed connection is not a timeout: it may come at any time.
    const closed = entry("client-offline", { id: "c0001", reason: "connection closed" }, 20_000)
    assert.isUndefined(Findings.checkOffline(closed, 10, 15_000))
  })

  const weights = Float32Array.from([1, 2, 3])
  const updates: Findings.Updates = new Map([[1, new Map([["c0", { weights, samples: 10 }]])]])
  const completed = (participants: ReadonlyArray<string>, excluded: ReadonlyArray<{ id: string; reason: string }>) =>
    entry("round-completed", { round: 1, participants, excluded, modelUpdated: false, modelSha256: "" })

  it.effect("a committed round below the quorum is a violation unless a pause or quorum loss was reported", () =>
    Effect.gen(function* () {
      const silent = yield* Findings.checkRounds([entry("round-started", {}), completed(["c0"], [])], updates, 2)
      assert.deepStrictEqual(
        silent.violations.map((v) => v.invariant),
        ["quorum"],
      )
      const said = yield* Findings.checkRounds(
        [entry("round-started", {}), entry("quorum-lost", {}), completed(["c0"], [])],
        updates,
        2,
      )
      assert.deepStrictEqual(said.violations, [])
    }),
  )

  it.effect("an averaged update from an excluded client, or one never trained, is a violation", () =>
    Effect.gen(function* () {
      const excluded = yield* Findings.checkRounds([completed(["c0"], [{ id: "c0", reason: "stalled" }])], updates, 1)
      assert.deepStrictEqual(
        excluded.violations.map((v) => v.invariant),
        ["unadmitted-update"],
      )
      const ghost = yield* Findings.checkRounds([completed(["c0", "c9"], [])], updates, 1)
      assert.include(ghost.violations[0]?.detail ?? "", "c9 never trained it")
      const clean = yield* Findings.checkRounds([completed(["c0"], [])], updates, 1)
      assert.deepStrictEqual(clean.violations, [])
    }),
  )

  it.effect("a round whose model is not the FedAvg of its participants is a violation", () =>
    Effect.gen(function* () {
      const record = { round: 1, participants: ["c0"], excluded: [], modelUpdated: true, modelSha256: "0".repeat(64) }
      const found = yield* Findings.checkRounds([entry("round-completed", record)], updates, 1)
      assert.include(found.violations[0]?.detail ?? "", "not the FedAvg")
    }),
  )
})
