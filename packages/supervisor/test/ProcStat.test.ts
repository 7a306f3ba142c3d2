import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import { parseStat, parseStatusRss } from "../src/ProcStat.ts"
import * as WorkerHealth from "../src/WorkerHealth.ts"

// A real line (pid 16059, `cat`), with fields 14/15 (utime/stime) and 22 (starttime) set.
const line = (comm: string, state = "S") =>
  `16059 (${comm}) ${state} 16020 16020 11097 0 -1 4194304 98 0 0 0 731 42 0 0 20 0 1 0 1786895 3133440 382 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n`

const failure = <A, E>(result: Result.Result<A, E>): E => {
  if (Result.isSuccess(result)) return assert.fail("expected a failure")
  return result.failure
}

describe("ProcStat.parseStat", () => {
  it("reads state, parent, group, CPU ticks and start time", () => {
    const stat = Result.getOrThrow(parseStat(line("cat")))
    assert.deepStrictEqual(stat, {
      pid: 16059,
      comm: "cat",
      state: "S",
      ppid: 16020,
      pgrp: 16020,
      utimeTicks: 731,
      stimeTicks: 42,
      startTimeTicks: 1786895,
    })
  })

  it("takes the name up to the LAST parenthesis: names with spaces and parentheses do not shift fields", () => {
    const stat = Result.getOrThrow(parseStat(line("evil) R 1 (x y", "Z")))
    assert.strictEqual(stat.comm, "evil) R 1 (x y")
    assert.strictEqual(stat.state, "Z")
    assert.strictEqual(stat.startTimeTicks, 1786895)
  })

  it("fails naming the field for truncated, foreign or malformed text", () => {
    assert.strictEqual(failure(parseStat("16059 cat S 1")).field, "comm")
    assert.strictEqual(failure(parseStat(line("cat").slice(0, 45))).field, "utime")
    assert.strictEqual(failure(parseStat(line("cat", "Q"))).field, "state")
    assert.strictEqual(failure(parseStat(line("cat").replace(" 731 ", " -5 "))).field, "utime")
    assert.strictEqual(failure(parseStat(`x${line("cat")}`)).field, "pid")
    assert.strictEqual(failure(parseStat("")).field, "comm")
  })
})

describe("ProcStat.parseStatusRss", () => {
  it("reads VmRSS in bytes; a zombie without the line has 0", () => {
    assert.strictEqual(
      Result.getOrThrow(parseStatusRss("Name:\tnode\nVmRSS:\t   51200 kB\nThreads:\t7\n")),
      51200 * 1024,
    )
    assert.strictEqual(Result.getOrThrow(parseStatusRss("Name:\tsleep\nState:\tZ (zombie)\n")), 0)
  })

  it("fails naming VmRSS when the line is not '<n> kB'", () => {
    assert.strictEqual(failure(parseStatusRss("VmRSS:\t12 MB\n")).field, "VmRSS")
    assert.strictEqual(failure(parseStatusRss("VmRSS:\t-1 kB\n")).field, "VmRSS")
  })
})

describe("WorkerHealth", () => {
  const sample = (at: number, cpuTicks: number, extra: Partial<WorkerHealth.ProcessSample> = {}) => ({
    pid: 7,
    state: "S" as const,
    ppid: 1,
    pgrp: 7,
    cpuTicks,
    startTimeTicks: 100,
    rssBytes: 1000,
    at,
    ...extra,
  })
  const limits = { maxCpuPercent: 150, maxRssBytes: 2000, zombie: true }

  it("measures CPU % between two checks from the ticks (100 per second); none for the first or another process", () => {
    assert.strictEqual(WorkerHealth.cpuPercent(sample(0, 0), sample(2000, 300)), 150)
    assert.isUndefined(WorkerHealth.cpuPercent(undefined, sample(0, 0)))
    assert.isUndefined(WorkerHealth.cpuPercent(sample(0, 0), sample(1000, 50, { startTimeTicks: 101 })))
  })

  it("breaches on zombie, CPU over and RSS over; at the limit is not over", () => {
    assert.deepStrictEqual(
      WorkerHealth.assess(sample(0, 0), sample(2000, 300, { rssBytes: 2000 }), limits).breaches,
      [],
    )
    const all = WorkerHealth.assess(sample(0, 0), sample(1000, 200, { rssBytes: 2001, state: "Z" }), limits)
    assert.deepStrictEqual(
      all.breaches.map((b) => b._tag),
      ["Zombie", "CpuOver", "RssOver"],
    )
  })

  it("reads this process from /proc on Linux, and says so with a typed error elsewhere", () => {
    const self = Result.getOrThrow(WorkerHealth.readSampleSync(process.pid, 0))
    assert.strictEqual(self.pid, process.pid)
    assert.isAbove(self.rssBytes, 0)
    assert.strictEqual(failure(WorkerHealth.readSampleSync(-1, 0))._tag, "ProcessGone")
  })

  it.effect("fails with HealthUnsupported on a platform without procfs", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(WorkerHealth.make("darwin").sample(process.pid))
      assert.strictEqual(error._tag, "HealthUnsupported")
    }),
  )
})
