/**
 * Pure parsers for the two Linux procfs files a health check reads:
 * `/proc/<pid>/stat` (state, parent, process group, CPU ticks, start time)
 * and `/proc/<pid>/status` (`VmRSS`). The text is untrusted in the sense that
 * matters here: the process name (`comm`) is chosen by the process, may hold
 * spaces and parentheses, and a truncated or foreign file must come back as a
 * typed `ProcParseError` that names the field, never as a wrong number.
 *
 * Times are in clock ticks (`USER_HZ`, 100 per second on every Linux
 * architecture Node runs on; see proc(5)).
 *
 * @since 0.1.0
 */
import { Result, Schema } from "effect"

/**
 * A procfs file could not be parsed: `file` is `"stat"` or `"status"`,
 * `field` the field that is missing or malformed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcParseError extends Schema.TaggedError<ProcParseError>()("ProcParseError", {
  file: Schema.String,
  field: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `/proc/<pid>/${this.file}: field ${this.field}: ${this.reason}`
  }
}

/**
 * The process states of proc(5): running, sleeping, disk sleep, zombie,
 * stopped, tracing stop, paging, dead, wakekill, waking, parked, idle.
 *
 * @since 0.1.0
 * @category models
 */
export type ProcState = "R" | "S" | "D" | "Z" | "T" | "t" | "W" | "X" | "x" | "K" | "P" | "I"

const STATES: ReadonlySet<string> = new Set(["R", "S", "D", "Z", "T", "t", "W", "X", "x", "K", "P", "I"])

/**
 * What `/proc/<pid>/stat` says about a process. `utimeTicks` and
 * `stimeTicks` are the CPU time spent in user and kernel mode;
 * `startTimeTicks` is when the process started, in ticks since boot: with
 * the pid, it identifies one process across pid reuse.
 *
 * @since 0.1.0
 * @category models
 */
export interface Stat {
  readonly pid: number
  readonly comm: string
  readonly state: ProcState
  readonly ppid: number
  readonly pgrp: number
  readonly utimeTicks: number
  readonly stimeTicks: number
  readonly startTimeTicks: number
}

// Field numbers of proc(5), counted from 1; fields after `comm` start at 3.
const FIELDS = { state: 3, ppid: 4, pgrp: 5, utime: 14, stime: 15, starttime: 22 } as const

const integer = (file: string, field: string, text: string | undefined): Result.Result<number, ProcParseError> => {
  if (text === undefined) return Result.fail(new ProcParseError({ file, field, reason: "missing" }))
  if (!/^\d+$/.test(text)) {
    return Result.fail(
      new ProcParseError({ file, field, reason: `not a non-negative integer: ${JSON.stringify(text)}` }),
    )
  }
  const value = Number(text)
  return Number.isSafeInteger(value)
    ? Result.succeed(value)
    : Result.fail(new ProcParseError({ file, field, reason: `out of range: ${text}` }))
}

/**
 * Parses `/proc/<pid>/stat`. The name sits between the first `(` and the
 * LAST `)` of the line: a process may call itself `a) S 1 (b`, and only the
 * last parenthesis is the kernel's.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseStat = (text: string): Result.Result<Stat, ProcParseError> => {
  const open = text.indexOf("(")
  const close = text.lastIndexOf(")")
  if (open < 0 || close < open) {
    return Result.fail(new ProcParseError({ file: "stat", field: "comm", reason: "no parenthesised process name" }))
  }
  const pid = integer("stat", "pid", text.slice(0, open).trim())
  if (Result.isFailure(pid)) return Result.fail(pid.failure)
  // rest[0] is field 3 (state)
  const rest = text
    .slice(close + 1)
    .trim()
    .split(/\s+/)
  const at = (field: number) => rest[field - 3]
  const state = at(FIELDS.state)
  if (state === undefined || !STATES.has(state)) {
    return Result.fail(
      new ProcParseError({ file: "stat", field: "state", reason: `not a process state: ${JSON.stringify(state)}` }),
    )
  }
  const numbers: Record<string, number> = {}
  for (const [name, field] of [
    ["ppid", FIELDS.ppid],
    ["pgrp", FIELDS.pgrp],
    ["utime", FIELDS.utime],
    ["stime", FIELDS.stime],
    ["starttime", FIELDS.starttime],
  ] as const) {
    const value = integer("stat", name, at(field))
    if (Result.isFailure(value)) return Result.fail(value.failure)
    numbers[name] = value.success
  }
  return Result.succeed({
    pid: pid.success,
    comm: text.slice(open + 1, close),
    state: state as ProcState,
    ppid: numbers.ppid as number,
    pgrp: numbers.pgrp as number,
    utimeTicks: numbers.utime as number,
    stimeTicks: numbers.stime as number,
    startTimeTicks: numbers.starttime as number,
  })
}

/**
 * Parses the resident set size from `/proc/<pid>/status` (`VmRSS:  1234 kB`),
 * in bytes. A zombie, and a kernel thread, have no `VmRSS` line: their
 * resident set is 0.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parseStatusRss = (text: string): Result.Result<number, ProcParseError> => {
  const line = text.split("\n").find((l) => l.startsWith("VmRSS:"))
  if (line === undefined) return Result.succeed(0)
  const match = /^VmRSS:\s+(\d+)\s+kB\s*$/.exec(line)
  if (match === null) {
    return Result.fail(
      new ProcParseError({ file: "status", field: "VmRSS", reason: `not "<n> kB": ${JSON.stringify(line)}` }),
    )
  }
  return Result.map(integer("status", "VmRSS", match[1]), (kib) => kib * 1024)
}
