import { assert, describe, it } from "@effect/vitest"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Option } from "effect"
import * as RoundTable from "../src/RoundTable.ts"

const completed = (excluded: ReadonlyArray<{ id: string; reason: string }>) =>
  new ServerEvent.RoundCompleted({
    round: 12,
    participants: ["client-0", "client-1"],
    excluded,
    rejectedUpdates: 0,
    modelUpdated: true,
    testAccuracy: 0.91234,
    testLoss: 0.3456,
    modelSha256: "0".repeat(64),
    durationMs: 1234,
    bytesIn: 10,
    bytesOut: 20,
  })

/** Where each header column starts in a row. */
const starts = (line: string, names: ReadonlyArray<string>) => names.map((name) => line.indexOf(name))

describe("RoundTable", () => {
  it("keeps round, participants, accuracy, loss and time aligned whatever the excluded list, and not only for short ones", () => {
    const columns = ["accuracy", "loss", "time"]
    const [accuracy, loss, time] = starts(RoundTable.header, columns)
    assert.match(RoundTable.header, /^round\s+participants\s+accuracy\s+loss\s+time\s+excluded$/)
    const many = Array.from({ length: 9 }, (_, i) => ({ id: `client-${i}`, reason: "send-failed: connection reset" }))
    for (const excluded of [[], [{ id: "client-2", reason: "offline" }], many]) {
      const row = RoundTable.row(completed(excluded))
      assert.strictEqual(row.indexOf("0.9123"), accuracy)
      assert.strictEqual(row.indexOf("0.346"), loss)
      assert.strictEqual(row.indexOf("1.2 s"), time)
      assert.isTrue(row.startsWith("12 "))
    }
    assert.isTrue(RoundTable.row(completed(many)).endsWith("client-8:send-failed: connection reset"))
    assert.isTrue(RoundTable.row(completed([])).endsWith(" -"))
  })

  it("shows a pause and a restored quorum as rows, client and update events as notes, and nothing for the rest", () => {
    const paused = RoundTable.render(new ServerEvent.RoundPaused({ round: 3, online: 1, minClients: 2 }))
    assert.deepStrictEqual(paused, Option.some("3      paused: 1 of 2 needed clients online"))
    assert.match(
      Option.getOrThrow(RoundTable.render(new ServerEvent.QuorumRestored({ alive: 2, minClients: 2 }))),
      /^\s+resumed: quorum restored/,
    )
    const notes = [
      new ServerEvent.ClientWentOffline({ id: "client-1", reason: "heartbeat timeout" }),
      new ServerEvent.ClientRejoined({ id: "client-1", remote: "127.0.0.1:5" }),
      new ServerEvent.UpdateRejected({ round: 3, id: "client-1", reason: "non-finite weights" }),
      new ServerEvent.ClientExcluded({ round: 3, id: "client-1", reason: "straggler" }),
      new ServerEvent.JoinTimedOut({ online: 2, expected: 3 }),
    ].map((event) => Option.getOrThrow(RoundTable.render(event)))
    assert.deepStrictEqual(notes, [
      "  · client-offline client-1 heartbeat timeout",
      "  · client-online client-1",
      "  · update-rejected client-1 round 3: non-finite weights",
      "  · client-excluded client-1 round 3: straggler",
      "  · join-timeout 2 of 3 expected clients online",
    ])
    assert.isTrue(Option.isNone(RoundTable.render(new ServerEvent.Listening({ host: "127.0.0.1", port: 1 }))))
    assert.isTrue(Option.isNone(RoundTable.render(new ServerEvent.RoundStarted({ round: 1, participants: [] }))))
  })

  it("shows a resumed job as a row and its pauses and resumptions as notes, but not the job's launch or end", () => {
    const resumed = new ServerEvent.JobResumed({
      jobId: "job-1",
      name: "mnist-fedavg",
      afterRound: 3,
      rounds: 6,
      modelSha256: "ab".repeat(32),
    })
    assert.deepStrictEqual(
      RoundTable.render(resumed),
      Option.some("       resumed: job job-1 after round 3 of 6, from the state file (model abababababab…)"),
    )
    const moved = (from: string, to: string) =>
      RoundTable.render(new ServerEvent.JobStateChanged({ jobId: "job-1", from, to, reason: "why" }))
    assert.deepStrictEqual(moved("running", "paused"), Option.some("  · job-state running → paused: why"))
    assert.deepStrictEqual(moved("paused", "running"), Option.some("  · job-state paused → running: why"))
    for (const [from, to] of [
      ["submitted", "deploying"],
      ["starting", "running"],
      ["running", "completed"],
      ["paused", "aborted"],
    ] as const) {
      assert.isTrue(Option.isNone(moved(from, to)), `${from} → ${to}`)
    }
    assert.isTrue(
      Option.isNone(
        RoundTable.render(new ServerEvent.JobCreated({ jobId: "job-1", name: "n", rounds: 6, state: "s.db" })),
      ),
    )
  })
})
