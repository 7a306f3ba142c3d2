import { assert, describe, it } from "@effect/vitest"
import { Weights } from "@fedguard/federation"
import { Result } from "effect"
import * as UpdateAdmission from "../src/UpdateAdmission.ts"

const paramCount = 4
const context: UpdateAdmission.Context = {
  round: 3,
  paramCount,
  isParticipant: true,
  alreadySubmitted: false,
  declaredSamples: 600,
}
const candidate = (overrides: Partial<UpdateAdmission.Candidate> = {}): UpdateAdmission.Candidate => ({
  id: "c1",
  round: 3,
  samples: 600,
  bytes: Weights.encode(Float32Array.from([0.5, -1, 2, 0])),
  ...overrides,
})
const reasonOf = (verdict: Result.Result<UpdateAdmission.Admitted, UpdateAdmission.UpdateRefused>) =>
  Result.isFailure(verdict) ? verdict.failure.reason : "admitted"

describe("UpdateAdmission.check", () => {
  it("admits a finite update of the right round, length and sample count, as a copy the server owns", () => {
    const bytes = Weights.encode(Float32Array.from([0.5, -1, 2, 0]))
    const verdict = UpdateAdmission.check(candidate({ bytes }), context)
    assert.isTrue(Result.isSuccess(verdict))
    if (Result.isFailure(verdict)) return
    assert.deepStrictEqual(Array.from(verdict.success.weights), [0.5, -1, 2, 0])
    assert.strictEqual(verdict.success.samples, 600)
    bytes.fill(0)
    assert.strictEqual(verdict.success.weights[0], 0.5)
  })

  it("reads bytes at any offset (a view into a larger socket buffer)", () => {
    const buffer = new Uint8Array(3 + paramCount * 4)
    buffer.set(Weights.encode(Float32Array.from([1, 2, 3, 4])), 3)
    const verdict = UpdateAdmission.check(candidate({ bytes: buffer.subarray(3) }), context)
    assert.deepStrictEqual(Result.isSuccess(verdict) ? Array.from(verdict.success.weights) : [], [1, 2, 3, 4])
  })

  it("refuses NaN, +Infinity and -Infinity anywhere", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const index of [0, 3]) {
        const weights = Float32Array.from([0.5, -1, 2, 0])
        weights[index] = bad
        assert.strictEqual(
          reasonOf(UpdateAdmission.check(candidate({ bytes: Weights.encode(weights) }), context)),
          "non-finite weights",
        )
      }
    }
  })

  it("refuses another round as stale, naming both rounds", () => {
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ round: 2 }), context)),
      "stale round 2 (round 3 is running)",
    )
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ round: 4 }), context)),
      "stale round 4 (round 3 is running)",
    )
  })

  it("refuses a second update of the same client and round", () => {
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate(), { ...context, alreadySubmitted: true })),
      "duplicate update for round 3",
    )
  })

  it("refuses an update from a client that is not a participant of the round", () => {
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate(), { ...context, isParticipant: false })),
      "not a participant of round 3",
    )
  })

  it("refuses a wrong length, too short or too long, without reading it", () => {
    assert.match(
      reasonOf(UpdateAdmission.check(candidate({ bytes: new Uint8Array(12) }), context)),
      /wrong length: 12 bytes, expected 16/,
    )
    assert.match(
      reasonOf(UpdateAdmission.check(candidate({ bytes: new Uint8Array(17) }), context)),
      /wrong length: 17 bytes/,
    )
  })

  it("refuses sample counts that are not positive integers or exceed the shard declared at join; accepts exactly the declared size", () => {
    for (const samples of [0, -5, 1.5, Number.NaN]) {
      assert.match(reasonOf(UpdateAdmission.check(candidate({ samples }), context)), /is not a positive integer/)
    }
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ samples: 601 }), context)),
      "claims 601 samples, more than the 600 declared at join",
    )
    assert.strictEqual(reasonOf(UpdateAdmission.check(candidate({ samples: 600 }), context)), "admitted")
    assert.strictEqual(reasonOf(UpdateAdmission.check(candidate({ samples: 1 }), context)), "admitted")
  })

  it("the exclusion text is the reason after 'rejected: '", () => {
    const verdict = UpdateAdmission.check(candidate({ round: 9 }), context)
    assert.strictEqual(
      Result.isFailure(verdict) ? verdict.failure.exclusion : "",
      "rejected: stale round 9 (round 3 is running)",
    )
  })
})
