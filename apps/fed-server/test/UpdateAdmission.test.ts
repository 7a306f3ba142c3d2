import { assert, describe, it } from "@effect/vitest"
import { Weights } from "@fedguard/federation"
import { Option, Result } from "effect"
import * as UpdateAdmission from "../src/UpdateAdmission.ts"

const paramCount = 4
const context: UpdateAdmission.Context = {
  round: 3,
  isParticipant: true,
  alreadySubmitted: false,
  declaredSamples: 600,
}
const spilled: UpdateAdmission.Content = { _tag: "Spilled", spill: { path: "/tmp/x/1.f32le" }, bytes: paramCount * 4 }
const candidate = (overrides: Partial<UpdateAdmission.Candidate> = {}): UpdateAdmission.Candidate => ({
  id: "c1",
  round: 3,
  samples: 600,
  content: spilled,
  ...overrides,
})
const reasonOf = (verdict: Result.Result<UpdateAdmission.Admitted, UpdateAdmission.UpdateRefused>) =>
  Result.isFailure(verdict) ? verdict.failure.reason : "admitted"

/** Scans `bytes` fed in the given chunk sizes (the rest in one last chunk); the verdict's reason or "admitted". */
const scanned = (bytes: Uint8Array, sizes: ReadonlyArray<number> = []) => {
  const scan = UpdateAdmission.scanWeights("c1", paramCount)
  const kept: Array<boolean> = []
  let offset = 0
  for (const size of [...sizes, bytes.byteLength]) {
    if (offset >= bytes.byteLength) break
    kept.push(scan.feed(bytes.subarray(offset, Math.min(offset + size, bytes.byteLength))))
    offset += size
  }
  const verdict = scan.verdict()
  return { reason: Option.match(verdict, { onNone: () => "admitted", onSome: (r) => r.reason }), kept, verdict }
}

describe("UpdateAdmission.check", () => {
  it("admits a spilled update of the right round and sample count: its id, samples, bytes and spill, no weights", () => {
    const verdict = UpdateAdmission.check(candidate(), context)
    assert.isTrue(Result.isSuccess(verdict))
    if (Result.isFailure(verdict)) return
    assert.deepStrictEqual(verdict.success, { id: "c1", samples: 600, bytes: 16, spill: { path: "/tmp/x/1.f32le" } })
  })

  it("refuses with the bytes' own verdict when the metadata passes", () => {
    const refusal = new UpdateAdmission.UpdateRefused({ id: "c1", kind: "non-finite", reason: "non-finite weights" })
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ content: { _tag: "Refused", refusal } }), context)),
      "non-finite weights",
    )
  })

  it("checks the round before the bytes' verdict: a stale NaN update is refused as stale, as before streaming", () => {
    const refusal = new UpdateAdmission.UpdateRefused({ id: "c1", kind: "non-finite", reason: "non-finite weights" })
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ round: 2, content: { _tag: "Refused", refusal } }), context)),
      "stale round 2 (round 3 is running)",
    )
    assert.strictEqual(
      reasonOf(UpdateAdmission.check(candidate({ samples: 0, content: { _tag: "Refused", refusal } }), context)),
      "sample count 0 is not a positive integer",
    )
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

describe("UpdateAdmission.refuseSamples", () => {
  it("refuses from the metadata alone what check would refuse, and nothing else", () => {
    assert.isTrue(Option.isNone(UpdateAdmission.refuseSamples("c1", 600, 600)))
    assert.strictEqual(
      Option.getOrThrow(UpdateAdmission.refuseSamples("c1", 601, 600)).reason,
      "claims 601 samples, more than the 600 declared at join",
    )
    assert.strictEqual(Option.getOrThrow(UpdateAdmission.refuseSamples("c1", 0, 600)).kind, "bad-samples")
  })
})

describe("UpdateAdmission.scanWeights", () => {
  const finite = Weights.encode(Float32Array.from([0.5, -1, 2, 0]))

  it("admits finite values of the model's length however the bytes are cut, values split across chunks included", () => {
    for (const sizes of [[], [16], [1], [3, 5, 7], [2, 2, 2, 2, 2, 2, 2, 2], [15], [4, 4, 4]]) {
      const { reason, kept } = scanned(finite, sizes)
      assert.strictEqual(reason, "admitted", `chunks ${sizes}`)
      assert.isTrue(kept.every((k) => k))
    }
  })

  it("refuses NaN, +Infinity and -Infinity anywhere, also split across two chunks, and says so from that chunk on", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]) {
      for (const index of [0, 1, 3]) {
        const weights = Float32Array.from([0.5, -1, 2, 0])
        weights[index] = bad
        for (const sizes of [[], [1], [6], [4 * index + 2]]) {
          const { reason, kept } = scanned(Weights.encode(weights), sizes)
          assert.strictEqual(reason, "non-finite weights", `${bad} at ${index}, chunks ${sizes}`)
          assert.isFalse(kept.at(-1))
        }
      }
    }
  })

  it("keeps every chunk before the one holding a NaN, and refuses the update only at the last chunk when the NaN is there", () => {
    const weights = Float32Array.from([0.5, -1, 2, Number.NaN])
    const { kept, reason } = scanned(Weights.encode(weights), [4, 4, 4])
    assert.deepStrictEqual(kept, [true, true, true, false])
    assert.strictEqual(reason, "non-finite weights")
  })

  it("refuses a wrong length, too short or too long, before a non-finite value, naming both lengths", () => {
    assert.strictEqual(scanned(new Uint8Array(12)).reason, "wrong length: 12 bytes, expected 16 (4 float32)")
    assert.strictEqual(scanned(new Uint8Array(17), [16]).reason, "wrong length: 17 bytes, expected 16 (4 float32)")
    const shortNaN = Weights.encode(Float32Array.from([Number.NaN, 1, 2]))
    assert.match(scanned(shortNaN).reason, /^wrong length: 12 bytes/)
    assert.strictEqual(scanned(new Uint8Array(0), []).reason, "wrong length: 0 bytes, expected 16 (4 float32)")
  })

  it("does not read past the model's length: bytes beyond it only make the length wrong", () => {
    const long = new Uint8Array(20)
    long.set(finite)
    long.set(Weights.encode(Float32Array.of(Number.NaN)), 16)
    const { reason, kept } = scanned(long, [8, 8])
    assert.match(reason, /^wrong length: 20 bytes/)
    assert.deepStrictEqual(kept, [true, true, true])
  })
})
