import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import { SiteExcluded } from "../src/JobEvent.ts"
import * as QuorumPolicy from "../src/QuorumPolicy.ts"
import { spec } from "./support.ts"

const policy = QuorumPolicy.make({ minSites: 2, requiredSites: ["hospital-a"] })

describe("QuorumPolicy", () => {
  it("lets a round proceed with exactly minSites participants, not with one fewer", () => {
    const open = QuorumPolicy.make({ minSites: 3 })
    assert.isTrue(QuorumPolicy.roundHolds(open, ["a", "b", "c"]))
    assert.isFalse(QuorumPolicy.roundHolds(open, ["a", "b"]))
  })

  it("stops a round without a required site however many others take part", () => {
    assert.isFalse(QuorumPolicy.roundHolds(policy, ["b", "c", "d", "e"]))
    assert.isTrue(QuorumPolicy.roundHolds(policy, ["hospital-a", "c"]))
  })

  it("does not count a site twice", () => {
    assert.isFalse(QuorumPolicy.roundHolds(QuorumPolicy.make({ minSites: 2 }), ["a", "a"]))
  })

  it("reads as a pipeable predicate too", () => {
    assert.isTrue(QuorumPolicy.roundHolds(["hospital-a", "b"])(policy))
  })

  it("names the missing required site before counting (the more specific fact)", () => {
    const excluded = [new SiteExcluded({ site: "hospital-a", phase: "deploy", reason: "deployment timeout" })]
    const verdict = QuorumPolicy.judge(policy, "deploy", [], excluded)
    if (Result.isSuccess(verdict)) return assert.fail("expected a failure")
    assert.strictEqual(verdict.failure._tag, "RequiredSiteFailed")
    assert.strictEqual(verdict.failure.message, "deploy failed: required site(s) hospital-a (deployment timeout)")
  })

  it("fails a short phase with QuorumNotMet and every excluded site's reason", () => {
    const excluded = [
      new SiteExcluded({ site: "b", phase: "start", reason: "start timeout" }),
      new SiteExcluded({ site: "c", phase: "start", reason: "out of memory" }),
    ]
    const verdict = QuorumPolicy.judge(policy, "start", ["hospital-a"], excluded)
    if (Result.isSuccess(verdict)) return assert.fail("expected a failure")
    assert.strictEqual(
      verdict.failure.message,
      "start failed: 1 site(s) remain, 2 required (b: start timeout, c: out of memory)",
    )
  })

  it("takes minSites and requiredSites from a spec, strict at start unless told otherwise", () => {
    const fromSpec = QuorumPolicy.fromSpec(spec({ minSites: 3, requiredSites: ["site-1"] }))
    assert.deepStrictEqual(fromSpec, { minSites: 3, requiredSites: ["site-1"], strictStart: true })
    assert.isFalse(QuorumPolicy.fromSpec(spec(), { strictStart: false }).strictStart)
  })
})
