import { assert, describe, it } from "@effect/vitest"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import * as Invariants from "../src/Invariants.ts"
import type { Fault, RunRecord, Timed } from "../src/RunRecord.ts"

// A fabricated log of one clean run: 4 clients, quorum 2, 2 rounds, c3 SIGSTOPped at t=1000
// and marked offline at t=2300 (1.5 s timeout, 300 ms beats), then back.
const honest = ["c0", "c1", "c2", "c3"]
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
    testAccuracy: 0.8,
    testLoss: 0.5,
    modelSha256: `sha-${n}`,
    durationMs: 100,
    bytesIn: 1,
    bytesOut: 1,
  })

// The server's `update-accepted` line for each of `ids` in `n`, from time `at`.
const accepted = (n: number, ids: ReadonlyArray<string>, at: number): ReadonlyArray<Timed> =>
  ids.map((id, i) => ({ at: at + i, event: new ServerEvent.UpdateAccepted({ round: n, id, samples: 100 }) }))

const cleanEvents: ReadonlyArray<Timed> = [
  { at: 0, event: new ServerEvent.Listening({ host: "127.0.0.1", port: 7070 }) },
  ...honest.map((id, i) => ({
    at: 10 + i,
    event: new ServerEvent.ClientJoined({ id, remote: `127.0.0.1:${5000 + i}` }),
  })),
  { at: 100, event: new ServerEvent.RoundStarted({ round: 1, participants: honest }) },
  ...accepted(1, honest, 150),
  { at: 200, event: round(1, honest, []) },
  { at: 900, event: new ServerEvent.RoundStarted({ round: 2, participants: honest }) },
  ...accepted(2, ["c0", "c1", "c2"], 950),
  { at: 2300, event: new ServerEvent.ClientWentOffline({ id: "c3", reason: "no heartbeat for 1500 ms" }) },
  { at: 2300, event: new ServerEvent.ClientExcluded({ round: 2, id: "c3", reason: "offline" }) },
  { at: 2400, event: round(2, ["c0", "c1", "c2"], [{ id: "c3", reason: "offline" }]) },
  { at: 2500, event: new ServerEvent.TrainingCompleted({ finalAccuracy: 0.8, rounds: 2 }) },
]

const cleanFaults: ReadonlyArray<Fault> = [
  { kind: "stop", target: "c3", at: 1000 },
  { kind: "cont", target: "c3", at: 2600 },
]

const record = (overrides: Partial<RunRecord> = {}): RunRecord => ({
  scenario: "fabricated",
  seed: 1,
  settings: {
    rounds: 2,
    minClients: 2,
    heartbeatIntervalMs: 300,
    heartbeatTimeoutMs: 1500,
    honest,
    hostileIds: ["g0"],
  },
  servers: [{ events: cleanEvents, exit: { code: 0, signal: null }, killed: false, stderrTail: [] }],
  faults: cleanFaults,
  impostorRemotes: ["127.0.0.2:6000"],
  peakRssBytes: 300 * 1024 * 1024,
  finished: true,
  durationMs: 2600,
  ...overrides,
})

const withEvents = (events: ReadonlyArray<Timed>, overrides: Partial<RunRecord> = {}) =>
  record({ servers: [{ events, exit: { code: 0, signal: null }, killed: false, stderrTail: [] }], ...overrides })

// What a restarted server logs first: the job resumed after `afterRound`, its clients joined again.
const resumedAfter = (afterRound: number): ReadonlyArray<Timed> => [
  { at: 3000, event: new ServerEvent.JobResumed({ jobId: "j", name: "n", afterRound, rounds: 2, modelSha256: "x" }) },
  ...honest.map((id, i) => ({
    at: 3010 + i,
    event: new ServerEvent.ClientJoined({ id, remote: `127.0.0.1:${7000 + i}` }),
  })),
]

const invariantsOf = (r: RunRecord) => Invariants.check(r).violations.map((v) => v.invariant)

// Replaces the event at `index` of the clean log.
const replaced = (index: number, event: Timed) => cleanEvents.map((e, i) => (i === index ? event : e))
const offlineIndex = cleanEvents.findIndex((e) => e.event._tag === "ClientWentOffline")
const round2Index = cleanEvents.findIndex((e) => e.event._tag === "RoundCompleted" && e.event.round === 2)
// Where round 2 starts: what a server killed after round 1 logged is the log before it.
const round2Start = cleanEvents.findIndex((e) => e.event._tag === "RoundStarted" && e.event.round === 2)

describe("Invariants.check", () => {
  it("finds nothing wrong in a clean run, and measures the silent client's detection latency", () => {
    const outcome = Invariants.check(record())
    assert.deepStrictEqual(outcome.violations, [])
    assert.deepStrictEqual(outcome.detections, [{ id: "c3", kind: "silent", latencyMs: 1300 }])
    assert.strictEqual(outcome.roundsCompleted, 2)
  })

  it("reports a client marked offline before its heartbeat timeout after a SIGSTOP (1000 ms < 1500 − 300 ms)", () => {
    const early = replaced(offlineIndex, {
      at: 2000,
      event: new ServerEvent.ClientWentOffline({ id: "c3", reason: "no heartbeat" }),
    })
    assert.deepStrictEqual(invariantsOf(withEvents(early)), ["early-offline"])
  })

  it("reports an offline mark of a client nothing was done to, but not of a SIGKILLed one marked at once", () => {
    const unprovoked = replaced(offlineIndex, {
      at: 2300,
      event: new ServerEvent.ClientWentOffline({ id: "c2", reason: "no heartbeat" }),
    })
    assert.include(invariantsOf(withEvents(unprovoked, { faults: [] })), "early-offline")
    const killed = record({ faults: [{ kind: "kill", target: "c3", at: 2290 }] })
    assert.deepStrictEqual(invariantsOf(killed), [])
    assert.deepStrictEqual(Invariants.check(killed).detections, [{ id: "c3", kind: "closed", latencyMs: 10 }])
  })

  it("reports a silent client never marked offline although it stayed silent past its timeout", () => {
    const events = cleanEvents.filter((_, i) => i !== offlineIndex)
    const faults: ReadonlyArray<Fault> = [{ kind: "stop", target: "c1", at: 200 }, ...cleanFaults]
    // Silent from 200 ms to the end at 2500 ms: past 1500 ms + 500 ms of slack.
    const limits = { ...Invariants.defaultLimits, detectionSlackMs: 500 }
    const found = Invariants.check(withEvents(events, { faults }), limits).violations.map((v) => v.invariant)
    assert.deepStrictEqual(found, ["missed-detection"])
    // Within the slack (2000 ms by default) it is not yet a miss.
    assert.deepStrictEqual(invariantsOf(withEvents(events, { faults })), [])
  })

  it("reports an averaged update from an impostor id, from an excluded client and from a hostile peer", () => {
    const impostor = replaced(round2Index, {
      at: 2400,
      event: round(2, ["c0", "c1", "c2", "mallory"], [{ id: "c3", reason: "offline" }]),
    })
    const violations = Invariants.check(withEvents(impostor)).violations
    assert.isTrue(violations.some((v) => v.invariant === "bad-update-averaged" && v.detail.includes("mallory")))
    const excluded = replaced(round2Index, { at: 2400, event: round(2, honest, [{ id: "c3", reason: "offline" }]) })
    assert.include(invariantsOf(withEvents(excluded)), "bad-update-averaged")
    const hostile = replaced(round2Index, {
      at: 2400,
      event: round(2, ["c0", "c1", "c2", "g0"], [{ id: "c3", reason: "offline" }]),
    })
    assert.include(invariantsOf(withEvents(hostile)), "bad-update-averaged")
  })

  it("reports an update accepted from an excluded, stale, hostile or unauthenticated sender, and averaged ids without one", () => {
    const details = (events: ReadonlyArray<Timed>) =>
      Invariants.check(withEvents(events)).violations.map((v) => `${v.invariant}: ${v.detail}`)
    const acceptedAt = (at: number, n: number, id: string): Timed => ({
      at,
      event: new ServerEvent.UpdateAccepted({ round: n, id, samples: 100 }),
    })
    const inserted = (after: number, event: Timed) => [
      ...cleanEvents.slice(0, after + 1),
      event,
      ...cleanEvents.slice(after + 1),
    ]
    const excludedIndex = cleanEvents.findIndex((e) => e.event._tag === "ClientExcluded")
    // c3's late update, accepted after round 2 excluded it as offline.
    assert.include(
      details(inserted(excludedIndex, acceptedAt(2350, 2, "c3"))),
      "bad-update-averaged: round 2 accepted an update from c3, which it had excluded",
    )
    // An update for round 3 while round 2 runs, and one for round 1 after it completed: stale.
    assert.deepStrictEqual(details(inserted(round2Start, acceptedAt(960, 3, "c0"))), [
      "bad-update-averaged: round 3 accepted an update from c0, a stale update: round 2 was running",
    ])
    assert.include(
      details(inserted(round2Start - 1, acceptedAt(300, 1, "c2"))),
      "bad-update-averaged: round 1 accepted an update from c2, a stale update: no round was running",
    )
    // The hostile peer g0 (authenticated, never a participant), and an id that never authenticated.
    const hostile = details(inserted(round2Start, acceptedAt(960, 2, "g0")))
    assert.include(hostile, "bad-update-averaged: round 2 accepted an update from g0, a hostile peer sending garbage")
    assert.include(hostile, "bad-update-averaged: round 2 accepted an update from g0, not one of its participants")
    const c2Joined = cleanEvents.findIndex((e) => e.event._tag === "ClientJoined" && e.event.id === "c2")
    assert.include(
      details(cleanEvents.filter((_, i) => i !== c2Joined)),
      "bad-update-averaged: round 1 accepted an update from c2, which never authenticated to this server process",
    )
    // c1 averaged in round 2 with no update-accepted; c3 accepted in round 2 but not averaged.
    const c1Accepted = cleanEvents.findIndex(
      (e) => e.event._tag === "UpdateAccepted" && e.event.id === "c1" && e.event.round === 2,
    )
    assert.deepStrictEqual(details(cleanEvents.filter((_, i) => i !== c1Accepted)), [
      "bad-update-averaged: round 2 averaged c1 without an update-accepted for it",
    ])
    assert.deepStrictEqual(details(inserted(round2Start, acceptedAt(960, 2, "c3"))), [
      "participant-unreported: round 2 accepted c3's update but did not average it",
    ])
  })

  it("reports a participant whose fate the round does not report", () => {
    const silent = replaced(round2Index, { at: 2400, event: round(2, ["c0", "c1", "c2"], []) })
    const events = silent.filter((e) => e.event._tag !== "ClientExcluded")
    assert.deepStrictEqual(invariantsOf(withEvents(events)), ["participant-unreported"])
  })

  it("reports a round started below --min-clients, or after quorum-lost without quorum-restored", () => {
    const small = replaced(
      cleanEvents.findIndex((e) => e.event._tag === "RoundStarted" && e.event.round === 2),
      { at: 900, event: new ServerEvent.RoundStarted({ round: 2, participants: ["c0"] }) },
    )
    assert.include(invariantsOf(withEvents(small)), "round-below-quorum")
    const lost: ReadonlyArray<Timed> = [
      ...cleanEvents.slice(0, round2Start),
      { at: 800, event: new ServerEvent.QuorumLost({ alive: 1, minClients: 2 }) },
      ...cleanEvents.slice(round2Start),
    ]
    assert.deepStrictEqual(invariantsOf(withEvents(lost)), ["round-below-quorum"])
  })

  it("reports an impostor's connection welcomed, and an unknown id joining", () => {
    const welcomed: ReadonlyArray<Timed> = [
      ...cleanEvents,
      { at: 2450, event: new ServerEvent.ClientRejoined({ id: "c1", remote: "127.0.0.2:6000" }) },
      { at: 2460, event: new ServerEvent.ClientJoined({ id: "eve", remote: "127.0.0.1:6001" }) },
    ]
    const violations = Invariants.check(withEvents(welcomed)).violations
    assert.deepStrictEqual(
      violations.map((v) => v.invariant),
      ["impostor-accepted", "impostor-accepted"],
    )
    // The impostor's port on 127.0.0.1 (another address: an honest client's connection) is not it.
    const samePort: ReadonlyArray<Timed> = [
      ...cleanEvents,
      { at: 2450, event: new ServerEvent.ClientRejoined({ id: "c1", remote: "127.0.0.1:6000" }) },
    ]
    assert.deepStrictEqual(invariantsOf(withEvents(samePort)), [])
  })

  it("reports a server that crashed, but not one the campaign killed", () => {
    const crashed = record({
      servers: [{ events: cleanEvents, exit: { code: 1, signal: null }, killed: false, stderrTail: ["boom"] }],
    })
    assert.deepStrictEqual(invariantsOf(crashed), ["server-crashed"])
    const killedThenResumed = record({
      servers: [
        {
          events: cleanEvents.slice(0, round2Start),
          exit: { code: null, signal: "SIGKILL" },
          killed: true,
          stderrTail: [],
        },
        {
          events: [...resumedAfter(1), ...cleanEvents.slice(round2Start)],
          exit: { code: 0, signal: null },
          killed: false,
          stderrTail: [],
        },
      ],
    })
    assert.deepStrictEqual(invariantsOf(killedThenResumed), [])
  })

  it("reports a restarted server that resumed before a round its predecessor completed, and a round run twice", () => {
    const lost = record({
      servers: [
        {
          events: cleanEvents.slice(0, round2Start),
          exit: { code: null, signal: "SIGKILL" },
          killed: true,
          stderrTail: [],
        },
        {
          events: [
            ...resumedAfter(0),
            { at: 3100, event: new ServerEvent.RoundStarted({ round: 1, participants: honest }) },
            ...accepted(1, honest, 3150),
            { at: 3200, event: round(1, honest, []) },
            ...cleanEvents.slice(round2Start),
          ],
          exit: { code: 0, signal: null },
          killed: false,
          stderrTail: [],
        },
      ],
    })
    const found = invariantsOf(lost)
    assert.strictEqual(found.filter((v) => v === "committed-round-lost").length, 2)
  })

  it("reports an unfinished run and missing rounds, and an RSS above the limit", () => {
    assert.include(invariantsOf(record({ finished: false })), "run-unfinished")
    const short = cleanEvents.filter((e) => !(e.event._tag === "RoundCompleted" && e.event.round === 2))
    assert.include(invariantsOf(withEvents(short)), "run-unfinished")
    assert.deepStrictEqual(invariantsOf(record({ peakRssBytes: 2 * 1024 * 1024 * 1024 })), ["rss-exceeded"])
  })

  it("reports a round that ends on another model than the reference run, or without an honest client the reference had", () => {
    const reference = [
      { round: 1, participants: honest, modelSha256: "sha-1", testAccuracy: 0.8 },
      // The reference's round 2 lacked c3 too: not a round every honest client took part in.
      { round: 2, participants: ["c0", "c1", "c2"], modelSha256: "other", testAccuracy: 0.8 },
    ]
    assert.deepStrictEqual(invariantsOf(record({ reference })), [])
    const changed = [{ round: 1, participants: honest, modelSha256: "changed", testAccuracy: 0.8 }]
    assert.deepStrictEqual(invariantsOf(record({ reference: changed })), ["honest-rounds-changed"])
    const lessAccurate = [{ round: 1, participants: honest, modelSha256: "sha-1", testAccuracy: 0.7 }]
    assert.deepStrictEqual(invariantsOf(record({ reference: lessAccurate })), ["honest-rounds-changed"])
    const everyone = [{ round: 2, participants: honest, modelSha256: "sha-2", testAccuracy: 0.8 }]
    assert.deepStrictEqual(invariantsOf(record({ reference: everyone })), ["honest-rounds-changed"])
  })
})
