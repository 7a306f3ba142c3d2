import { assert, describe, it } from "@effect/vitest"
import { Result } from "effect"
import * as TimeoutBudget from "../src/TimeoutBudget.ts"

const standard = TimeoutBudget.derive("120 seconds")

const brokenRules = (budget: TimeoutBudget.TimeoutBudget): Array<string> => {
  const checked = TimeoutBudget.check(budget)
  return Result.isSuccess(checked) ? [] : checked.failure.broken.map((b) => b.rule)
}

const messages = (budget: TimeoutBudget.TimeoutBudget): Array<string> => {
  const checked = TimeoutBudget.check(budget)
  return Result.isSuccess(checked) ? [] : [...checked.failure.violations]
}

describe("TimeoutBudget.derive", () => {
  it("gives the documented defaults for a 120 s round, all from defaults, and they hold every rule", () => {
    const { sources, ...values } = standard
    assert.deepStrictEqual(values, {
      heartbeatInterval: 30_000,
      heartbeatTimeout: 90_000,
      joinTimeout: 120_000,
      sendTimeout: 30_000,
      ackProgressTimeout: 60_000,
      checkInterval: 5_000,
      stallTimeout: 45_000,
      consecutiveChecks: 3,
      roundTimeout: 120_000,
    })
    assert.strictEqual(sources?.ackProgressTimeout, "default")
    assert.strictEqual(sources?.roundTimeout, "given")
    assert.deepStrictEqual(brokenRules(standard), [])
  })

  it("keeps the defaults for longer rounds rather than growing them", () => {
    assert.strictEqual(TimeoutBudget.derive("1 hour").heartbeatTimeout, 90_000)
  })

  it("scales everything down for a short round, consistently", () => {
    for (const round of [30_000, 10_000, 1_000, 200]) {
      const budget = TimeoutBudget.derive(round)
      assert.deepStrictEqual(brokenRules(budget), [], `round ${round} ms`)
    }
    const short = TimeoutBudget.derive("12 seconds")
    assert.strictEqual(short.heartbeatInterval, 3_000)
    assert.strictEqual(short.ackProgressTimeout, 6_000)
    assert.strictEqual(short.sources?.heartbeatInterval, "derived")
  })

  it("keeps given values and derives the rest from them", () => {
    const budget = TimeoutBudget.derive("120 seconds", { heartbeatInterval: "10 seconds", consecutiveChecks: 5 })
    assert.strictEqual(budget.heartbeatInterval, 10_000)
    assert.strictEqual(budget.heartbeatTimeout, 30_000)
    assert.strictEqual(budget.sendTimeout, 10_000)
    assert.strictEqual(budget.consecutiveChecks, 5)
    assert.strictEqual(budget.sources?.heartbeatInterval, "given")
    assert.strictEqual(budget.sources?.heartbeatTimeout, "derived")
    assert.deepStrictEqual(brokenRules(budget), [])
  })
})

describe("TimeoutBudget.check", () => {
  it("reports a zero or negative duration and a fractional check count (positive), not positive ones", () => {
    assert.deepStrictEqual(brokenRules({ ...standard, checkInterval: 0 }), ["positive"])
    assert.deepStrictEqual(brokenRules({ ...standard, consecutiveChecks: 1.5 }), ["positive"])
    assert.deepStrictEqual(brokenRules({ ...standard, consecutiveChecks: 1 }), [])
  })

  it("heartbeat-timeout: 60 s is not above 2 × 30 s, 60.001 s is", () => {
    assert.deepStrictEqual(messages({ ...standard, heartbeatTimeout: 60_000 }), [
      "heartbeat timeout 60 s must exceed 2 × interval 30 s: one lost or late beat would declare a live peer dead",
    ])
    assert.deepStrictEqual(brokenRules({ ...standard, heartbeatTimeout: 60_001, sendTimeout: 30_000 }), [])
  })

  it("join-window: a join timeout of one interval breaks it, one just above holds", () => {
    assert.deepStrictEqual(brokenRules({ ...standard, joinTimeout: 30_000 }), ["join-window"])
    assert.deepStrictEqual(brokenRules({ ...standard, joinTimeout: 30_001 }), [])
  })

  it("send-below-heartbeat: a send timeout equal to the heartbeat timeout breaks it, one below holds", () => {
    const equal = { ...standard, sendTimeout: 90_000, stallTimeout: 95_000 }
    assert.include(brokenRules(equal), "send-below-heartbeat")
    assert.notInclude(brokenRules({ ...equal, sendTimeout: 44_000 }), "send-below-heartbeat")
  })

  it("stall-above-send: a stall timeout equal to the send timeout breaks it, one above holds", () => {
    assert.deepStrictEqual(brokenRules({ ...standard, stallTimeout: 30_000 }), ["stall-above-send"])
    assert.deepStrictEqual(brokenRules({ ...standard, stallTimeout: 30_001 }), [])
  })

  it("check-within-ack and check-within-stall: a check interval longer than the timeout breaks them", () => {
    const slow = { ...standard, checkInterval: 50_000, roundTimeout: 1_000_000 }
    assert.deepStrictEqual(brokenRules(slow), ["check-within-stall"])
    assert.deepStrictEqual(brokenRules({ ...slow, checkInterval: 61_000 }), ["check-within-ack", "check-within-stall"])
    assert.deepStrictEqual(brokenRules({ ...slow, checkInterval: 45_000 }), [])
  })

  it("ack-within-round: 60 s + 5 s must be below the round: 65 s breaks it, 65.001 s holds", () => {
    const tight = { ...standard, heartbeatTimeout: 61_000, stallTimeout: 31_000, roundTimeout: 65_000 }
    assert.deepStrictEqual(messages(tight), [
      "ack-progress window 60 s + 5 s = 65 s must be below round timeout 65 s: a stalled send would be reported as a straggler, not as stalled",
    ])
    assert.deepStrictEqual(brokenRules({ ...tight, roundTimeout: 65_001 }), [])
  })

  it("stall-within-round: 45 s + 3 × 5 s = 60 s must be below the round, and counts every check", () => {
    const tight = {
      ...standard,
      heartbeatInterval: 20_000,
      heartbeatTimeout: 50_000,
      ackProgressTimeout: 40_000,
      roundTimeout: 60_000,
    }
    assert.deepStrictEqual(messages(tight), [
      "stall close window 45 s + 3 × 5 s = 60 s exceeds round timeout 60 s: the monitor would decide after the round ended",
    ])
    assert.deepStrictEqual(brokenRules({ ...tight, roundTimeout: 60_001 }), [])
    assert.deepStrictEqual(brokenRules({ ...tight, roundTimeout: 60_001, consecutiveChecks: 4 }), [
      "stall-within-round",
    ])
  })

  it("heartbeat-within-round: a heartbeat timeout equal to the round breaks it, one below holds", () => {
    assert.deepStrictEqual(brokenRules({ ...standard, heartbeatTimeout: 120_000 }), ["heartbeat-within-round"])
    assert.deepStrictEqual(brokenRules({ ...standard, heartbeatTimeout: 119_999 }), [])
  })

  it("reports every broken rule at once, one message each, with the settings involved", () => {
    const checked = TimeoutBudget.check(TimeoutBudget.derive("60 seconds", { heartbeatInterval: "30 seconds" }))
    assert.isTrue(Result.isFailure(checked))
    if (Result.isFailure(checked)) {
      assert.deepStrictEqual(
        checked.failure.broken.map((b) => b.rule),
        ["ack-within-round", "stall-within-round", "heartbeat-within-round"],
      )
      assert.strictEqual(checked.failure.violations.length, 3)
      assert.deepStrictEqual(checked.failure.broken[2]?.keys, ["heartbeatTimeout", "roundTimeout"])
    }
  })
})

describe("TimeoutBudget.explain", () => {
  it("prints each setting with its value, source and bounding rules, then the verdict", () => {
    const text = TimeoutBudget.explain(TimeoutBudget.derive("120 seconds", { sendTimeout: "20 seconds" }))
    const lines = text.split("\n")
    assert.match(lines[0]!, /^setting\s+value\s+source\s+bounded by$/)
    assert.match(text, /sendTimeout\s+20 s\s+given\s+sendTimeout < heartbeatTimeout; stallTimeout > sendTimeout/)
    assert.match(text, /stallTimeout\s+30 s\s+derived/)
    assert.match(text, /heartbeatInterval\s+30 s\s+default/)
    assert.strictEqual(lines.at(-1), "all 10 rules hold")
  })

  it("lists the violations of an inconsistent budget instead of the verdict", () => {
    const text = TimeoutBudget.explain({ ...standard, heartbeatTimeout: 120_000 })
    assert.match(text, /violated: heartbeat timeout 120 s must be below round timeout 120 s/)
    assert.notMatch(text, /rules hold/)
  })
})
