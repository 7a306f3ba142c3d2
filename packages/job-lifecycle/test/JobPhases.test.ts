import { assert, describe, it } from "@effect/vitest"
import { Effect, Ref } from "effect"
import { TestClock } from "effect/testing"
import * as JobPhases from "../src/JobPhases.ts"
import * as QuorumPolicy from "../src/QuorumPolicy.ts"
import { ended, failureOf, isRunning, scripted, siteIds, successOf } from "./support.ts"

const TIMEOUT = 60_000
const sites = siteIds(3)
const policy = QuorumPolicy.make({ minSites: 2 })
const reasons = (excluded: ReadonlyArray<{ site: string; phase: string; reason: string }>) =>
  excluded.map((e) => `${e.site}/${e.phase}: ${e.reason}`)

describe("JobPhases.deploy", () => {
  it.effect("counts a deploy reply that never comes as a failure at the timeout, not before", () =>
    Effect.gen(function* () {
      const deploy = scripted({ "site-3": { silent: true } })
      const fiber = yield* Effect.forkChild(JobPhases.deploy(policy, sites, deploy, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      const report = successOf(yield* ended(fiber))
      assert.deepStrictEqual(report.participants, ["site-1", "site-2"])
      assert.deepStrictEqual(reasons(report.excluded), ["site-3/deploy: deployment timeout"])
    }),
  )

  it.effect("counts a reply arriving just before the timeout as a success", () =>
    Effect.gen(function* () {
      const deploy = scripted({ "site-3": { after: TIMEOUT - 1 } })
      const fiber = yield* Effect.forkChild(JobPhases.deploy(policy, sites, deploy, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT)
      const report = successOf(yield* ended(fiber))
      assert.deepStrictEqual(report.participants, sites)
      assert.deepStrictEqual(report.excluded, [])
    }),
  )

  it.effect("never counts deployment timeouts as successes: fewer than minSites fails with each reason", () =>
    Effect.gen(function* () {
      const deploy = scripted({ "site-2": { refuse: "disk full" }, "site-3": { silent: true } })
      const fiber = yield* Effect.forkChild(JobPhases.deploy(policy, sites, deploy, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT)
      const error = failureOf(yield* ended(fiber), "QuorumNotMet")
      assert.strictEqual(error.phase, "deploy")
      assert.strictEqual(error.remaining, 1)
      assert.deepStrictEqual(reasons(error.excluded), ["site-2/deploy: disk full", "site-3/deploy: deployment timeout"])
    }),
  )

  it.effect("fails the job naming a required site that failed to deploy, though the quorum holds", () =>
    Effect.gen(function* () {
      const required = QuorumPolicy.make({ minSites: 1, requiredSites: ["site-2"] })
      const deploy = scripted({ "site-2": { refuse: "certificate expired" } })
      const error = failureOf(
        yield* Effect.exit(JobPhases.deploy(required, sites, deploy, { timeout: TIMEOUT })),
        "RequiredSiteFailed",
      )
      assert.deepStrictEqual(error.sites, ["site-2"])
      assert.strictEqual(error.message, "deploy failed: required site(s) site-2 (certificate expired)")
    }),
  )

  it.effect("goes on without a non-required site that failed to deploy (not all-or-nothing)", () =>
    Effect.gen(function* () {
      const required = QuorumPolicy.make({ minSites: 1, requiredSites: ["site-1"] })
      const deploy = scripted({ "site-2": { refuse: "certificate expired" } })
      const report = yield* JobPhases.deploy(required, sites, deploy, { timeout: TIMEOUT })
      assert.deepStrictEqual(report.participants, ["site-1", "site-3"])
      assert.deepStrictEqual(reasons(report.excluded), ["site-2/deploy: certificate expired"])
    }),
  )

  it.effect("fails when a required site is not among the sites at all (open enrolment)", () =>
    Effect.gen(function* () {
      const required = QuorumPolicy.make({ minSites: 1, requiredSites: ["hospital-a"] })
      const exit = yield* Effect.exit(JobPhases.deploy(required, sites, scripted({}), { timeout: TIMEOUT }))
      assert.strictEqual(
        failureOf(exit, "RequiredSiteFailed").message,
        "deploy failed: required site(s) hospital-a (not a participant)",
      )
    }),
  )

  it.effect("interrupts a site's action cut off by the timeout, and leaves answered ones alone", () =>
    Effect.gen(function* () {
      const interrupted = yield* Ref.make<ReadonlyArray<string>>([])
      const deploy = (site: string) =>
        (site === "site-1" ? Effect.never : Effect.void).pipe(
          Effect.onInterrupt(() => Ref.update(interrupted, (all) => [...all, site])),
        )
      const fiber = yield* Effect.forkChild(JobPhases.deploy(policy, sites, deploy, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT)
      yield* ended(fiber)
      assert.deepStrictEqual(yield* Ref.get(interrupted), ["site-1"])
    }),
  )
})

describe("JobPhases.start", () => {
  it.effect("excludes a site that does not confirm its start at the timeout, not before, and goes on", () =>
    Effect.gen(function* () {
      const start = scripted({ "site-1": { silent: true } })
      const fiber = yield* Effect.forkChild(JobPhases.start(policy, sites, start, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      const report = successOf(yield* ended(fiber))
      assert.deepStrictEqual(report.participants, ["site-2", "site-3"])
      assert.deepStrictEqual(reasons(report.excluded), ["site-1/start: start timeout"])
      assert.deepStrictEqual(report.unconfirmed, [])
    }),
  )

  it.effect("fails the start when exclusions leave fewer than minSites", () =>
    Effect.gen(function* () {
      const start = scripted({ "site-1": { silent: true }, "site-2": { refuse: "CUDA unavailable" } })
      const fiber = yield* Effect.forkChild(JobPhases.start(policy, sites, start, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT)
      const error = failureOf(yield* ended(fiber), "QuorumNotMet")
      assert.strictEqual(error.phase, "start")
      assert.deepStrictEqual(reasons(error.excluded), ["site-1/start: start timeout", "site-2/start: CUDA unavailable"])
    }),
  )

  it.effect("fails the start when a required site times out (strict)", () =>
    Effect.gen(function* () {
      const required = QuorumPolicy.make({ minSites: 1, requiredSites: ["site-3"] })
      const fiber = yield* Effect.forkChild(
        JobPhases.start(required, sites, scripted({ "site-3": { silent: true } }), { timeout: TIMEOUT }),
      )
      yield* TestClock.adjust(TIMEOUT)
      assert.deepStrictEqual(failureOf(yield* ended(fiber), "RequiredSiteFailed").sites, ["site-3"])
    }),
  )

  it.effect("with strictStart: false keeps a silent site as unconfirmed, but still excludes a refusal", () =>
    Effect.gen(function* () {
      const lenient = QuorumPolicy.make({ minSites: 2, strictStart: false })
      const start = scripted({ "site-1": { silent: true }, "site-2": { refuse: "CUDA unavailable" } })
      const fiber = yield* Effect.forkChild(JobPhases.start(lenient, sites, start, { timeout: TIMEOUT }))
      yield* TestClock.adjust(TIMEOUT)
      const report = successOf(yield* ended(fiber))
      assert.deepStrictEqual(report.participants, ["site-1", "site-3"])
      assert.deepStrictEqual(report.unconfirmed, ["site-1"])
      assert.deepStrictEqual(reasons(report.excluded), ["site-2/start: CUDA unavailable"])
    }),
  )
})

describe("JobPhases.reasonOf", () => {
  it("takes a string as is, else a message, else a tag", () => {
    assert.strictEqual(JobPhases.reasonOf("disk full"), "disk full")
    assert.strictEqual(JobPhases.reasonOf(new Error("no GPU")), "no GPU")
    assert.strictEqual(JobPhases.reasonOf({ _tag: "SiteBusy", message: "" }), "SiteBusy")
    assert.strictEqual(JobPhases.reasonOf(7), "7")
  })
})
