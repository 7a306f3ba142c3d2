import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as JobState from "../src/JobState.ts"
import * as JobStatus from "../src/JobStatus.ts"

// The lifecycle written out by hand, so the test does not read the table it checks.
const legal = new Set([
  "submitted→deploying",
  "submitted→aborted",
  "deploying→starting",
  "deploying→failed",
  "deploying→aborted",
  "starting→running",
  "starting→failed",
  "starting→aborted",
  "running→paused",
  "running→completed",
  "running→failed",
  "running→aborted",
  "paused→running",
  "paused→failed",
  "paused→aborted",
])

const pairs = JobStatus.all.flatMap((from) => JobStatus.all.map((to) => [from, to] as const))

describe("JobState", () => {
  it("allows each lifecycle move, returning its JobTransitioned event", () => {
    for (const [from, to] of pairs.filter(([from, to]) => legal.has(`${from}→${to}`))) {
      const result = JobState.transition(from, to, "because")
      if (Result.isFailure(result)) return assert.fail(`${from} → ${to} was refused`)
      assert.strictEqual(result.success._tag, "JobTransitioned")
      assert.deepStrictEqual([result.success.from, result.success.to, result.success.reason], [from, to, "because"])
    }
  })

  it("refuses every other pair with IllegalTransition { from, to }", () => {
    const illegal = pairs.filter(([from, to]) => !legal.has(`${from}→${to}`))
    assert.strictEqual(illegal.length, 64 - legal.size)
    for (const [from, to] of illegal) {
      const result = JobState.transition(from, to, "because")
      if (Result.isSuccess(result)) return assert.fail(`${from} → ${to} was allowed`)
      assert.strictEqual(result.failure._tag, "IllegalTransition")
      assert.deepStrictEqual([result.failure.from, result.failure.to], [from, to])
    }
  })

  it("never resumes an aborted, failed or completed job (FLARE once resumed an aborted one)", () => {
    for (const from of ["aborted", "failed", "completed"] as const) {
      assert.isTrue(Result.isFailure(JobState.transition(from, "running", "resume")))
      assert.deepStrictEqual(JobState.next(from), [])
      assert.isTrue(JobStatus.isTerminal(from))
    }
    const refused = JobState.transition("aborted", "running", "resume")
    assert.strictEqual(Result.isFailure(refused) && refused.failure.message, "a job cannot go from aborted to running")
  })

  it("does not complete a paused job, nor treat staying put as a move", () => {
    assert.isFalse(JobState.canTransition("paused", "completed"))
    assert.isFalse(JobState.canTransition("running", "running"))
    assert.isFalse(JobStatus.isTerminal("paused"))
  })
})
