import { assert, describe, it } from "@effect/vitest"
import { RunView } from "@fedguard/app-kit"
import * as RunRecorder from "../src/RunRecorder.ts"
import * as ServerEvent from "../src/ServerEvent.ts"

const start = RunView.empty("job", 1_000)

const foldAll = (events: ReadonlyArray<readonly [number, ServerEvent.ServerEvent]>, view = start) =>
  events.reduce((acc, [at, event]) => RunRecorder.fold(acc, event, at), view)

const round = (
  n: number,
  participants: ReadonlyArray<string>,
  excluded: ReadonlyArray<{ id: string; reason: string }>,
) =>
  new ServerEvent.RoundCompleted({
    round: n,
    participants,
    excluded,
    rejectedUpdates: 0,
    modelUpdated: true,
    testAccuracy: 0.5 + n / 100,
    testLoss: 1 - n / 100,
    modelSha256: "00",
    durationMs: 10,
    bytesIn: 1,
    bytesOut: 1,
  })

describe("RunRecorder.fold", () => {
  it("opens an online span at a join and closes it when the client goes offline, with the reason as a mark", () => {
    const view = foldAll([
      [1_100, new ServerEvent.ClientJoined({ id: "c1", remote: "127.0.0.1:1" })],
      [1_500, new ServerEvent.ClientWentOffline({ id: "c1", reason: "heartbeat timeout" })],
      [1_900, new ServerEvent.ClientRejoined({ id: "c1", remote: "127.0.0.1:2" })],
    ])
    const [c1] = view.clients
    assert.strictEqual(c1?.state, "online")
    assert.deepStrictEqual(c1?.spans, [
      { from: 1_100, to: 1_500 },
      { from: 1_900, to: null },
    ])
    assert.deepStrictEqual(c1?.marks, [{ at: 1_500, kind: "offline", reason: "heartbeat timeout", round: null }])
    assert.strictEqual(view.now, 1_900)
  })

  it("does not open a second span for a client that is already online (a replaced session)", () => {
    const view = foldAll([
      [1_100, new ServerEvent.ClientJoined({ id: "c1", remote: "a" })],
      [1_200, new ServerEvent.ClientReplaced({ id: "c1", remote: "b" })],
      [1_300, new ServerEvent.ClientRejoined({ id: "c1", remote: "b" })],
    ])
    assert.deepStrictEqual(view.clients[0]?.spans, [{ from: 1_100, to: null }])
  })

  it("moves participants of the current round from pending to accepted or excluded (with the reason), and keeps the completed round's record", () => {
    const during = foldAll([
      [1_100, new ServerEvent.RoundStarted({ round: 1, participants: ["a", "b", "c"] })],
      [1_200, new ServerEvent.UpdateAccepted({ round: 1, id: "a", samples: 10 })],
      [1_300, new ServerEvent.ClientExcluded({ round: 1, id: "b", reason: "stalled" })],
    ])
    assert.deepStrictEqual(during.current, {
      round: 1,
      startedAt: 1_100,
      participants: ["a", "b", "c"],
      pending: ["c"],
      accepted: ["a"],
      excluded: [{ id: "b", reason: "stalled" }],
    })
    assert.strictEqual(during.quorum.state, "reached")
    assert.deepStrictEqual(during.clients.find((c) => c.id === "b")?.marks, [
      { at: 1_300, kind: "excluded", reason: "stalled", round: 1 },
    ])
    const after = foldAll([[1_400, round(1, ["a", "c"], [{ id: "b", reason: "stalled" }])]], during)
    assert.deepStrictEqual(after.current?.pending, [])
    assert.deepStrictEqual(after.current?.accepted, ["a", "c"])
    assert.deepStrictEqual(
      after.rounds.map((r) => [r.round, r.testAccuracy, r.at]),
      [[1, 0.51, 1_400]],
    )
  })

  it("ignores an acceptance or exclusion for a round that is not the current one", () => {
    const view = foldAll([
      [1_100, new ServerEvent.RoundStarted({ round: 2, participants: ["a"] })],
      [1_200, new ServerEvent.UpdateAccepted({ round: 1, id: "a", samples: 10 })],
      [1_300, new ServerEvent.ClientExcluded({ round: 1, id: "a", reason: "straggler" })],
    ])
    assert.deepStrictEqual(view.current?.pending, ["a"])
    assert.deepStrictEqual(view.current?.accepted, [])
    assert.deepStrictEqual(view.current?.excluded, [])
  })

  it("tracks the quorum lost and restored, and a paused round until the next one starts", () => {
    const lost = foldAll([
      [1_100, new ServerEvent.RoundStarted({ round: 1, participants: ["a", "b"] })],
      [1_200, new ServerEvent.QuorumLost({ alive: 1, minClients: 2 })],
      [1_300, new ServerEvent.RoundPaused({ round: 2, online: 1, minClients: 2 })],
    ])
    assert.deepStrictEqual(lost.quorum, { state: "lost", alive: 1, minClients: 2 })
    assert.deepStrictEqual(lost.paused, { round: 2, online: 1, minClients: 2 })
    const back = foldAll(
      [
        [1_400, new ServerEvent.QuorumRestored({ alive: 2, minClients: 2 })],
        [1_500, new ServerEvent.RoundStarted({ round: 2, participants: ["a", "b"] })],
      ],
      lost,
    )
    assert.strictEqual(back.quorum.state, "reached")
    assert.isNull(back.paused)
  })

  it("clears a stall when its connection moves again, but not a closed one", () => {
    const view = foldAll([
      [1_100, new ServerEvent.StallDetected({ id: "a", oldestPendingMs: 45_000, checks: 3, closed: false })],
      [1_200, new ServerEvent.StallDetected({ id: "b", oldestPendingMs: 45_000, checks: 3, closed: true })],
      [1_300, new ServerEvent.StallCleared({ id: "a" })],
      [1_400, new ServerEvent.StallCleared({ id: "b" })],
    ])
    assert.deepStrictEqual(
      view.stalls.map((stall) => [stall.id, stall.clearedAt]),
      [
        ["a", 1_300],
        ["b", null],
      ],
    )
  })

  it("adds no row for a refused handshake of an id it does not know, and marks one it knows", () => {
    const strangers = foldAll([
      [1_100, new ServerEvent.ClientRefused({ id: "mallory", remote: "x", reason: "bad proof" })],
    ])
    assert.deepStrictEqual(strangers.clients, [])
    const known = foldAll([
      [1_100, new ServerEvent.ClientJoined({ id: "c1", remote: "a" })],
      [1_200, new ServerEvent.ClientRefused({ id: "c1", remote: "x", reason: "bad proof" })],
    ])
    assert.deepStrictEqual(known.clients[0]?.marks, [{ at: 1_200, kind: "refused", reason: "bad proof", round: null }])
    assert.strictEqual(known.clients[0]?.state, "online")
  })

  it(`keeps at most ${RunRecorder.maxEntries} marks per client, dropping the oldest`, () => {
    const events = Array.from(
      { length: RunRecorder.maxEntries + 10 },
      (_, i) => [1_000 + i, new ServerEvent.ClientExcluded({ round: i, id: "a", reason: "straggler" })] as const,
    )
    const marks = foldAll(events).clients[0]!.marks
    assert.strictEqual(marks.length, RunRecorder.maxEntries)
    assert.strictEqual(marks[0]?.round, 10)
  })

  it("marks the job finished with the final accuracy only when training completes", () => {
    const running = foldAll([
      [1_100, new ServerEvent.JobStateChanged({ jobId: "j", from: "starting", to: "running", reason: "" })],
    ])
    assert.isFalse(running.finished)
    assert.strictEqual(running.job?.state, "running")
    const done = foldAll([[1_200, new ServerEvent.TrainingCompleted({ finalAccuracy: 0.9, rounds: 1 })]], running)
    assert.isTrue(done.finished)
    assert.strictEqual(done.finalAccuracy, 0.9)
  })
})

describe("RunRecorder.withLiveness and withReport", () => {
  it("takes last-seen times from the liveness tracker, and lists a registered client that never joined as waiting", () => {
    const view = RunRecorder.withLiveness(foldAll([[1_100, new ServerEvent.ClientJoined({ id: "a", remote: "x" })]]), [
      { id: "a" as never, state: "online", registeredAt: 1_000, joinedAt: 1_100, lastSeenAt: 1_150 },
      { id: "b" as never, state: "offline", registeredAt: 1_000 },
    ])
    assert.deepStrictEqual(
      view.clients.map((c) => [c.id, c.state, c.lastSeenAt]),
      [
        ["a", "online", 1_150],
        ["b", "waiting", null],
      ],
    )
  })

  it("takes every round of the report (earlier processes' rounds without a time) and its settings", () => {
    const seen = foldAll([[1_500, round(2, ["a"], [])]])
    const final = RunRecorder.withReport(seen, {
      config: { rounds: 2 },
      rounds: [round(1, ["a"], []), round(2, ["a"], [])].map(({ _tag, ...r }) => r),
      clients: [],
      finalAccuracy: 0.52,
      finalModelSha256: "00",
    })
    assert.deepStrictEqual(
      final.rounds.map((r) => [r.round, r.at]),
      [
        [1, null],
        [2, 1_500],
      ],
    )
    assert.deepStrictEqual(final.settings, { rounds: 2 })
    assert.isTrue(final.finished)
  })
})
