import { assert, describe, it } from "@effect/vitest"
import type { WorkerSupervisor } from "@fedguard/supervisor"
import * as LiveTable from "../src/LiveTable.ts"
import * as WorkerTable from "../src/WorkerTable.ts"

const view = (change: Partial<WorkerSupervisor.WorkerView>): WorkerSupervisor.WorkerView => ({
  id: "client-1",
  status: "running",
  pid: 4242,
  health: "healthy",
  cpuPercent: 12.4,
  rssBytes: 150 * 1024 * 1024,
  restarts: 2,
  startedAt: 1_000,
  ...change,
})

describe("WorkerTable", () => {
  it("renders a running worker's pid, health, CPU, RSS, restarts, uptime and last exit, in aligned columns", () => {
    const [header, row] = WorkerTable.render([view({})], 1_000 + 185_000, new Map([["client-1", "killed by SIGKILL"]]))
    assert.strictEqual(header, "worker    status    pid      health     cpu     rss       restarts  uptime   last exit")
    assert.strictEqual(
      row,
      "client-1  running   4242     healthy    12%     150.0 MiB 2         3m05s    killed by SIGKILL",
    )
    assert.strictEqual(header!.indexOf("restarts"), row!.indexOf("2         3m05s"))
  })

  it("shows no health, CPU, RSS or uptime for a worker that is not running: they are the last check's", () => {
    const [, row] = WorkerTable.render([view({ status: "backoff", pid: undefined })], 5_000, new Map())
    assert.strictEqual(row, "client-1  backoff   -        -          -       -         2         -        -")
  })

  it("widens the first column to the longest worker id", () => {
    const lines = WorkerTable.render([view({ id: "a-rather-long-worker-id" }), view({ id: "w" })], 1_000, new Map())
    const at = lines[0]!.indexOf("status")
    assert.strictEqual(at, "a-rather-long-worker-id".length + 2)
    for (const line of lines.slice(1)) assert.strictEqual(line.indexOf("running"), at)
  })

  it("formats sizes and uptimes", () => {
    assert.deepStrictEqual([512, 2048, 3.5 * 1024 ** 3].map(WorkerTable.formatBytes), ["512 B", "2.0 KiB", "3.5 GiB"])
    assert.deepStrictEqual([999, 42_000, 61_000, 7_260_000].map(WorkerTable.formatUptime), [
      "0s",
      "42s",
      "1m01s",
      "2h01m",
    ])
  })
})

describe("LiveTable", () => {
  it("keeps the rows above the table as the scroll region and draws the table below it", () => {
    // 24 rows, a table of 3 lines: output scrolls in rows 1-21, the table is in rows 22-24
    assert.strictEqual(LiveTable.open(3, 24), "\n\n\n\u001b[1;21r\u001b[21;1H")
    const drawn = LiveTable.draw(["h", "a", "b"], 24, 80)
    assert.isTrue(drawn.startsWith("\u001b7") && drawn.endsWith("\u001b8"), "the cursor is saved and restored")
    assert.include(drawn, "\u001b[22;1H\u001b[2Kh\u001b[23;1H\u001b[2Ka\u001b[24;1H\u001b[2Kb")
    assert.strictEqual(LiveTable.close(24), "\u001b[r\u001b[24;1H\n")
  })

  it("cuts lines to the terminal's width so that none wraps into the output region", () => {
    const drawn = LiveTable.draw(["x".repeat(100)], 10, 40)
    assert.include(drawn, `\u001b[2K${"x".repeat(40)}\u001b8`)
    assert.notInclude(drawn, "x".repeat(41))
  })
})
