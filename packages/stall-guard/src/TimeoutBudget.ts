/**
 * One consistency check for every timeout of a deployment: heartbeats, the
 * bounded send, the ACK-progress watchdog, the stall monitor, the round and
 * the join window. Each is reasonable alone; together they can contradict
 * each other (a stall monitor that needs 140 s to decide, in a 120 s round,
 * reports a stalled client as a straggler; a send that may block longer than
 * the heartbeat timeout gets its own side declared dead by the heartbeats
 * queued behind it). `check` states each rule once, `derive` builds a
 * consistent budget from a single round timeout, and `explain` prints where
 * every value came from and what bounds it.
 *
 * @since 0.1.0
 */
import { type Duration, Result, Schema } from "effect"
import { millis } from "./internal/clamp.ts"

/**
 * The timeouts of a deployment, in milliseconds (`consecutiveChecks` is a
 * count). `sources` (filled by `derive`) says where each value came from;
 * a missing entry reads as `"given"`.
 *
 * @since 0.1.0
 * @category models
 */
export interface TimeoutBudget {
  readonly heartbeatInterval: number
  readonly heartbeatTimeout: number
  readonly sendTimeout: number
  readonly ackProgressTimeout: number
  readonly checkInterval: number
  readonly stallTimeout: number
  readonly consecutiveChecks: number
  readonly roundTimeout: number
  readonly joinTimeout: number
  readonly sources?: { readonly [K in Key]?: Source } | undefined
}

/**
 * The name of one setting of the budget.
 *
 * @since 0.1.0
 * @category models
 */
export type Key = Exclude<keyof TimeoutBudget, "sources">

/**
 * Where a value came from: the package default, derived from other values
 * (the round timeout or a given value), or given by the caller.
 *
 * @since 0.1.0
 * @category models
 */
export type Source = "default" | "derived" | "given"

/**
 * The budget breaks one or more rules. `violations` has one message per
 * broken rule, naming the values (`"heartbeat timeout 60 s must exceed 2 ×
 * interval 30 s: ..."`); `broken` carries the same as data: the rule's id and
 * the settings it involves, so an application can map them to its own flag
 * names without parsing a message.
 *
 * @since 0.1.0
 * @category errors
 */
export class InconsistentTimeouts extends Schema.TaggedError<InconsistentTimeouts>()("InconsistentTimeouts", {
  violations: Schema.Array(Schema.String),
  broken: Schema.Array(
    Schema.Struct({ rule: Schema.String, keys: Schema.Array(Schema.String), message: Schema.String }),
  ),
}) {}

/**
 * One rule of a consistent budget: its id, the settings it involves, a short
 * statement (for `explain`), and a check that returns the violation message,
 * or `undefined` when the rule holds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Rule {
  readonly id: string
  readonly keys: ReadonlyArray<Key>
  readonly statement: string
  readonly violation: (budget: TimeoutBudget) => string | undefined
}

/**
 * A duration in milliseconds as the messages print it: `45 s`, `1.5 s`,
 * `250 ms`.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatMillis = (ms: number): string =>
  Math.abs(ms) >= 1000 ? `${Number((ms / 1000).toFixed(3))} s` : `${Number(ms.toFixed(3))} ms`

const f = formatMillis

const durationKeys: ReadonlyArray<Key> = [
  "heartbeatInterval",
  "heartbeatTimeout",
  "sendTimeout",
  "ackProgressTimeout",
  "checkInterval",
  "stallTimeout",
  "roundTimeout",
  "joinTimeout",
]

/**
 * The rules `check` applies, each with its reason:
 *
 * 1. `positive`: every duration is positive and `consecutiveChecks` a
 *    positive integer (a zero timeout fires at once, zero checks never).
 * 2. `heartbeat-timeout`: heartbeatTimeout > 2 × heartbeatInterval: one lost
 *    or late beat must not declare a live peer dead.
 * 3. `join-window`: joinTimeout > heartbeatInterval: a client's first beat
 *    may come one interval after it registers.
 * 4. `send-below-heartbeat`: sendTimeout < heartbeatTimeout: a blocked write
 *    holds the heartbeats queued behind it, so it must fail as `SendTimeout`
 *    (and close the connection) before the peer declares this side dead for
 *    a reason that is not death.
 * 5. `stall-above-send`: stallTimeout > sendTimeout: one blocked write fails
 *    by itself (fix A) before the monitor (fix C), the net under it, calls
 *    the connection stalled.
 * 6. `check-within-ack`: checkInterval ≤ ackProgressTimeout, and 7.
 *    `check-within-stall`: checkInterval ≤ stallTimeout: a check interval
 *    longer than the timeout it serves detects up to an interval late (the
 *    watchdog and the monitor clamp it; the budget says so up front).
 * 8. `ack-within-round`: ackProgressTimeout + checkInterval < roundTimeout:
 *    the watchdog decides at most one interval after its timeout, and a
 *    stalled model send must be excluded as `Stalled` while the round still
 *    waits, not reported as a straggler at its end.
 * 9. `stall-within-round`: stallTimeout + consecutiveChecks × checkInterval <
 *    roundTimeout: the stall monitor's close window (the oldest send reaches
 *    the timeout between two checks, then needs `consecutiveChecks` checks)
 *    must end inside the round.
 * 10. `heartbeat-within-round`: heartbeatTimeout < roundTimeout: a client
 *     that died must be detected while the round waits for it.
 *
 * @since 0.1.0
 * @category rules
 */
export const rules: ReadonlyArray<Rule> = [
  {
    id: "positive",
    keys: [...durationKeys, "consecutiveChecks"],
    statement: "every duration > 0, consecutiveChecks a positive integer",
    violation: (b) => {
      const bad = durationKeys.filter((key) => !(b[key] > 0)).map((key) => `${key} (${f(b[key])})`)
      if (!(Number.isInteger(b.consecutiveChecks) && b.consecutiveChecks >= 1))
        bad.push(`consecutiveChecks (${b.consecutiveChecks})`)
      return bad.length === 0 ? undefined : `must be positive: ${bad.join(", ")}`
    },
  },
  {
    id: "heartbeat-timeout",
    keys: ["heartbeatTimeout", "heartbeatInterval"],
    statement: "heartbeatTimeout > 2 × heartbeatInterval",
    violation: (b) =>
      b.heartbeatTimeout > 2 * b.heartbeatInterval
        ? undefined
        : `heartbeat timeout ${f(b.heartbeatTimeout)} must exceed 2 × interval ${f(b.heartbeatInterval)}: one lost or late beat would declare a live peer dead`,
  },
  {
    id: "join-window",
    keys: ["joinTimeout", "heartbeatInterval"],
    statement: "joinTimeout > heartbeatInterval",
    violation: (b) =>
      b.joinTimeout > b.heartbeatInterval
        ? undefined
        : `join timeout ${f(b.joinTimeout)} must exceed heartbeat interval ${f(b.heartbeatInterval)}: a client's first beat may come one interval after it registers`,
  },
  {
    id: "send-below-heartbeat",
    keys: ["sendTimeout", "heartbeatTimeout"],
    statement: "sendTimeout < heartbeatTimeout",
    violation: (b) =>
      b.sendTimeout < b.heartbeatTimeout
        ? undefined
        : `send timeout ${f(b.sendTimeout)} must be below heartbeat timeout ${f(b.heartbeatTimeout)}: a blocked write holds the heartbeats behind it and must fail before the peer declares this side dead`,
  },
  {
    id: "stall-above-send",
    keys: ["stallTimeout", "sendTimeout"],
    statement: "stallTimeout > sendTimeout",
    violation: (b) =>
      b.stallTimeout > b.sendTimeout
        ? undefined
        : `stall timeout ${f(b.stallTimeout)} must exceed send timeout ${f(b.sendTimeout)}: a blocked write must fail by itself before the monitor calls the connection stalled`,
  },
  {
    id: "check-within-ack",
    keys: ["checkInterval", "ackProgressTimeout"],
    statement: "checkInterval ≤ ackProgressTimeout",
    violation: (b) =>
      b.checkInterval <= b.ackProgressTimeout
        ? undefined
        : `check interval ${f(b.checkInterval)} must not exceed ack-progress timeout ${f(b.ackProgressTimeout)}: the watchdog would detect up to an interval late`,
  },
  {
    id: "check-within-stall",
    keys: ["checkInterval", "stallTimeout"],
    statement: "checkInterval ≤ stallTimeout",
    violation: (b) =>
      b.checkInterval <= b.stallTimeout
        ? undefined
        : `check interval ${f(b.checkInterval)} must not exceed stall timeout ${f(b.stallTimeout)}: the monitor would detect up to an interval late`,
  },
  {
    id: "ack-within-round",
    keys: ["ackProgressTimeout", "checkInterval", "roundTimeout"],
    statement: "ackProgressTimeout + checkInterval < roundTimeout",
    violation: (b) => {
      const window = b.ackProgressTimeout + b.checkInterval
      return window < b.roundTimeout
        ? undefined
        : `ack-progress window ${f(b.ackProgressTimeout)} + ${f(b.checkInterval)} = ${f(window)} must be below round timeout ${f(b.roundTimeout)}: a stalled send would be reported as a straggler, not as stalled`
    },
  },
  {
    id: "stall-within-round",
    keys: ["stallTimeout", "consecutiveChecks", "checkInterval", "roundTimeout"],
    statement: "stallTimeout + consecutiveChecks × checkInterval < roundTimeout",
    violation: (b) => {
      const window = b.stallTimeout + b.consecutiveChecks * b.checkInterval
      return window < b.roundTimeout
        ? undefined
        : `stall close window ${f(b.stallTimeout)} + ${b.consecutiveChecks} × ${f(b.checkInterval)} = ${f(window)} exceeds round timeout ${f(b.roundTimeout)}: the monitor would decide after the round ended`
    },
  },
  {
    id: "heartbeat-within-round",
    keys: ["heartbeatTimeout", "roundTimeout"],
    statement: "heartbeatTimeout < roundTimeout",
    violation: (b) =>
      b.heartbeatTimeout < b.roundTimeout
        ? undefined
        : `heartbeat timeout ${f(b.heartbeatTimeout)} must be below round timeout ${f(b.roundTimeout)}: a dead client would be found only after the round gave up on it`,
  },
]

/**
 * Checks every rule (see `rules`) and returns the budget, or
 * `InconsistentTimeouts` with one message per broken rule. Apps run it at
 * start-up and exit with status 2 on failure, before any connection opens.
 *
 * @example
 * ```ts
 * import { Result } from "effect"
 * import { TimeoutBudget } from "@fedguard/stall-guard"
 * const checked = TimeoutBudget.check(TimeoutBudget.derive("60 seconds"))
 * if (Result.isFailure(checked)) for (const line of checked.failure.violations) process.stderr.write(`${line}\n`)
 * ```
 *
 * @since 0.1.0
 * @category checks
 */
export const check = (budget: TimeoutBudget): Result.Result<TimeoutBudget, InconsistentTimeouts> => {
  const broken: Array<{ rule: string; keys: Array<string>; message: string }> = []
  for (const rule of rules) {
    const message = rule.violation(budget)
    if (message !== undefined) broken.push({ rule: rule.id, keys: [...rule.keys], message })
  }
  return broken.length === 0
    ? Result.succeed(budget)
    : Result.fail(new InconsistentTimeouts({ violations: broken.map((b) => b.message), broken }))
}

/**
 * The defaults of a deployment with a round timeout of 120 s or more: the
 * heartbeat package's (30 s beats, 90 s timeout, 120 s join window) and this
 * package's (30 s send, 60 s ACK progress, 5 s checks, 45 s stall on 3
 * checks).
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: Omit<TimeoutBudget, "roundTimeout" | "sources"> = {
  heartbeatInterval: 30_000,
  heartbeatTimeout: 90_000,
  joinTimeout: 120_000,
  sendTimeout: 30_000,
  ackProgressTimeout: 60_000,
  checkInterval: 5_000,
  stallTimeout: 45_000,
  consecutiveChecks: 3,
}

// The round timeout the defaults are made for; shorter rounds scale them down.
const referenceRoundMs = 120_000

/**
 * Values given to `derive`: durations (`"20 seconds"` or milliseconds) and
 * the check count.
 *
 * @since 0.1.0
 * @category models
 */
export type Overrides = {
  readonly [K in Exclude<Key, "roundTimeout" | "consecutiveChecks">]?: Duration.Input | undefined
} & { readonly consecutiveChecks?: number | undefined }

/**
 * A consistent budget from a single round timeout, keeping the values given
 * in `overrides`. With a round of 120 s or more, every value not given is its
 * default (`defaults`); a shorter round scales them by `round / 120 s`. The
 * values form a chain, so a given value moves those derived from it:
 *
 * - heartbeatInterval = 30 s × scale;
 * - heartbeatTimeout = 3 × heartbeatInterval, joinTimeout = 4 ×
 *   heartbeatInterval;
 * - sendTimeout = heartbeatTimeout / 3;
 * - ackProgressTimeout = 2 × sendTimeout, stallTimeout = 1.5 × sendTimeout,
 *   checkInterval = sendTimeout / 6 (at least 10 ms); consecutiveChecks = 3.
 *
 * With nothing given every rule holds for any round timeout down to about
 * 100 ms (below that, the check interval's 10 ms floor no longer fits the
 * stall window); given values are kept as they are, and `check` reports the
 * rules they break. A given heartbeat timeout moves the stall guard's values
 * with it, up as well as down.
 *
 * @example
 * ```ts
 * import { TimeoutBudget } from "@fedguard/stall-guard"
 * const budget = TimeoutBudget.derive("30 seconds", { heartbeatInterval: "5 seconds" })
 * // heartbeatTimeout 15 s, sendTimeout 5 s, ackProgressTimeout 10 s, stallTimeout 7.5 s, ...
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const derive = (roundTimeout: Duration.Input, overrides: Overrides = {}): TimeoutBudget => {
  const roundMs = millis(roundTimeout)
  const scale = Math.min(1, roundMs / referenceRoundMs)
  const sources: { [K in Key]?: Source } = { roundTimeout: "given" }
  const pick = (key: Exclude<Key, "roundTimeout" | "consecutiveChecks">, derived: number): number => {
    const given = overrides[key]
    if (given !== undefined) {
      sources[key] = "given"
      return millis(given)
    }
    const value = Math.round(derived)
    sources[key] = value === defaults[key] ? "default" : "derived"
    return value
  }
  const heartbeatInterval = pick("heartbeatInterval", defaults.heartbeatInterval * scale)
  const heartbeatTimeout = pick("heartbeatTimeout", 3 * heartbeatInterval)
  const joinTimeout = pick("joinTimeout", 4 * heartbeatInterval)
  const sendTimeout = pick("sendTimeout", heartbeatTimeout / 3)
  const ackProgressTimeout = pick("ackProgressTimeout", 2 * sendTimeout)
  const stallTimeout = pick("stallTimeout", 1.5 * sendTimeout)
  const checkInterval = pick("checkInterval", Math.max(10, sendTimeout / 6))
  const consecutiveChecks = overrides.consecutiveChecks ?? defaults.consecutiveChecks
  sources.consecutiveChecks = overrides.consecutiveChecks === undefined ? "default" : "given"
  return {
    heartbeatInterval,
    heartbeatTimeout,
    sendTimeout,
    ackProgressTimeout,
    checkInterval,
    stallTimeout,
    consecutiveChecks,
    roundTimeout: roundMs,
    joinTimeout,
    sources,
  }
}

const order: ReadonlyArray<Key> = [
  "roundTimeout",
  "heartbeatInterval",
  "heartbeatTimeout",
  "joinTimeout",
  "sendTimeout",
  "ackProgressTimeout",
  "stallTimeout",
  "checkInterval",
  "consecutiveChecks",
]

/**
 * The budget as a table for `--explain-timeouts`: one row per setting with
 * its value, its source (`default`, `derived`, `given`) and the rules that
 * bound it, then either `all N rules hold` or one line per violation.
 *
 * @example
 * ```ts
 * import { TimeoutBudget } from "@fedguard/stall-guard"
 * process.stdout.write(`${TimeoutBudget.explain(TimeoutBudget.derive("120 seconds"))}\n`)
 * ```
 *
 * @since 0.1.0
 * @category formatting
 */
export const explain = (budget: TimeoutBudget): string => {
  const rows = order.map((key) => [
    key,
    key === "consecutiveChecks" ? String(budget[key]) : f(budget[key]),
    budget.sources?.[key] ?? "given",
    rules
      .filter((rule) => rule.id !== "positive" && rule.keys.includes(key))
      .map((rule) => rule.statement)
      .join("; "),
  ])
  const header = ["setting", "value", "source", "bounded by"]
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]!.length)))
  const line = (cells: ReadonlyArray<string>) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd()
  const checked = check(budget)
  const verdict = Result.isSuccess(checked)
    ? [`all ${rules.length} rules hold`]
    : checked.failure.violations.map((violation) => `violated: ${violation}`)
  return [line(header), ...rows.map(line), "", ...verdict].join("\n")
}
