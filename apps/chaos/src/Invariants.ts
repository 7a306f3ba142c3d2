/**
 * The invariants every chaos run must keep, checked from a `RunRecord`: the
 * server's typed events (never its log text), the faults the campaign
 * injected, how each process ended, and its peak RSS.
 *
 * | invariant               | broken when                                                                                                            |
 * | ----------------------- | ---------------------------------------------------------------------------------------------------------------------- |
 * | `server-crashed`        | a server process the campaign did not kill exited with a code other than 0, or by a signal                            |
 * | `early-offline`         | an honest client is marked offline with no fault injected into it, or sooner after a silent fault (SIGSTOP, link down) than its heartbeat timeout minus one interval |
 * | `missed-detection`      | a client stayed dead or silent longer than its timeout + slack and was never marked offline                           |
 * | `round-below-quorum`    | a round started with fewer than `--min-clients` participants, or after `quorum-lost` and before `quorum-restored`     |
 * | `participant-unreported`| a round's participant is neither averaged nor excluded with a reason, or an accepted update is not averaged           |
 * | `bad-update-averaged`   | an update is accepted (`UpdateAccepted`) from a hostile peer, an unknown id, an id that never authenticated to that server process, for a round that is not running (stale), from a non-participant, from a client already excluded from the round, or twice; or a round averages an id it excluded, did not choose, or accepted no update from |
 * | `run-unfinished`        | the run did not end within its bound, or not every round 1..R completed                                               |
 * | `committed-round-lost`  | a round completed twice, or a restarted server resumed before a round its predecessor had completed                   |
 * | `rss-exceeded`          | the server's peak RSS passed the limit                                                                                 |
 * | `impostor-accepted`     | a connection opened by an impostor or a garbage peer was welcomed, or an unknown id joined                            |
 * | `honest-rounds-changed` | a round all honest clients took part in here and in the reference run ended on another model or accuracy              |
 *
 * The server publishes `UpdateAccepted` (round, id, samples) when it admits
 * an update to the running round, so "no update from an excluded, stale or
 * unauthenticated sender is averaged" is checked at the moment of
 * admission, and each `RoundCompleted`'s averaged ids must be exactly the
 * updates it accepted. Where training is seeded, a run must also end each
 * round on the reference run's model (the effect of a wrong update).
 *
 * @since 0.1.0
 */
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import type { Fault, RunRecord, Timed } from "./RunRecord.ts"

/**
 * The name of each invariant (see the module's table).
 *
 * @since 0.1.0
 * @category models
 */
export type Invariant =
  | "server-crashed"
  | "early-offline"
  | "missed-detection"
  | "round-below-quorum"
  | "participant-unreported"
  | "bad-update-averaged"
  | "run-unfinished"
  | "committed-round-lost"
  | "rss-exceeded"
  | "impostor-accepted"
  | "honest-rounds-changed"

/**
 * One broken invariant, with a sentence saying what happened.
 *
 * @since 0.1.0
 * @category models
 */
export interface Violation {
  readonly invariant: Invariant
  readonly detail: string
}

/**
 * How long after a fault the server marked its client offline: `closed` for
 * a SIGKILL (the socket closes, so it may be at once), `silent` for a
 * SIGSTOP or a link taken down (only the heartbeat deadline can tell).
 *
 * @since 0.1.0
 * @category models
 */
export interface Detection {
  readonly id: string
  readonly kind: "closed" | "silent"
  readonly latencyMs: number
}

/**
 * What the checker found: the violations, the detection latencies, and the
 * rounds completed across the run's server processes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Outcome {
  readonly violations: ReadonlyArray<Violation>
  readonly detections: ReadonlyArray<Detection>
  readonly roundsCompleted: number
}

/**
 * The limits a run is held to: `rssLimitBytes` (default 1 GiB);
 * `toleranceMs`, the clock slack allowed below "timeout minus one interval"
 * for a silent fault (default 100 ms: the server's log time against the
 * campaign's); `detectionSlackMs`, how far past its timeout a silent client
 * may still be unmarked (default 2 s: a loaded 2-core machine).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly rssLimitBytes: number
  readonly toleranceMs: number
  readonly detectionSlackMs: number
}

/**
 * @since 0.1.0
 * @category models
 */
export const defaultLimits: Limits = { rssLimitBytes: 1024 * 1024 * 1024, toleranceMs: 100, detectionSlackMs: 2000 }

type Tag = ServerEvent.ServerEvent["_tag"]
type Of<T extends Tag> = Extract<ServerEvent.ServerEvent, { _tag: T }>

const ofTag = <T extends Tag>(events: ReadonlyArray<Timed>, tag: T): ReadonlyArray<{ at: number; event: Of<T> }> =>
  events.filter((timed): timed is { at: number; event: Of<T> } => timed.event._tag === tag)

const downKinds: ReadonlySet<Fault["kind"]> = new Set(["kill", "stop", "link-down"])
const upKinds: ReadonlySet<Fault["kind"]> = new Set(["restart", "cont", "link-up"])

const crashes = (record: RunRecord): Array<Violation> =>
  record.servers.flatMap((life, index) => {
    if (life.killed || life.exit === "running") return []
    if (life.exit.code === 0) return []
    const how = life.exit.code === null ? `signal ${life.exit.signal}` : `code ${life.exit.code}`
    const tail = life.stderrTail.length === 0 ? "" : `; stderr: ${life.stderrTail.join(" | ")}`
    return [{ invariant: "server-crashed" as const, detail: `server process ${index + 1} exited with ${how}${tail}` }]
  })

// Every round completed across the processes (a killed server's completed rounds count: they are
// committed before they are announced), and whether each of 1..R completed exactly once.
const completion = (record: RunRecord): { violations: Array<Violation>; completed: number } => {
  const violations: Array<Violation> = []
  const counts = new Map<number, number>()
  // A server killed after a round's commit and before its RoundCompleted line never announces
  // it; the next server's JobResumed says it was committed.
  const committed = new Set<number>()
  let lastCompleted = 0
  record.servers.forEach((life, index) => {
    if (index > 0) {
      for (const { event } of ofTag(life.events, "JobResumed")) {
        for (let r = 1; r <= event.afterRound; r++) committed.add(r)
        if (event.afterRound < lastCompleted) {
          violations.push({
            invariant: "committed-round-lost",
            detail: `server process ${index + 1} resumed after round ${event.afterRound}, but round ${lastCompleted} had completed`,
          })
        }
      }
    }
    for (const { event } of ofTag(life.events, "RoundCompleted")) {
      counts.set(event.round, (counts.get(event.round) ?? 0) + 1)
      lastCompleted = Math.max(lastCompleted, event.round)
    }
  })
  for (const [round, count] of counts) {
    if (count > 1)
      violations.push({ invariant: "committed-round-lost", detail: `round ${round} completed ${count} times` })
  }
  const missing = Array.from({ length: record.settings.rounds }, (_, i) => i + 1).filter(
    (r) => !counts.has(r) && !committed.has(r),
  )
  const last = record.servers.at(-1)
  const trained = last !== undefined && ofTag(last.events, "TrainingCompleted").length > 0
  if (!record.finished || !trained || missing.length > 0) {
    const why = !record.finished
      ? `did not end within its bound (${(record.durationMs / 1000).toFixed(1)} s)`
      : !trained
        ? "the last server process never reported training-completed"
        : `rounds ${missing.join(", ")} never completed`
    violations.push({ invariant: "run-unfinished", detail: `the run ${why}` })
  }
  return { violations, completed: new Set([...counts.keys(), ...committed]).size }
}

// The faults that took `id` down (or brought it back), in time order.
const faultsOf = (record: RunRecord, id: string) => record.faults.filter((f) => f.target === id)

const offlineChecks = (
  record: RunRecord,
  limits: Limits,
): { violations: Array<Violation>; detections: Detection[] } => {
  const { heartbeatTimeoutMs: timeout, heartbeatIntervalMs: interval } = record.settings
  const honest = new Set(record.settings.honest)
  const events = record.servers.flatMap((life) => life.events)
  const violations: Array<Violation> = []
  const detections: Array<Detection> = []
  const explained = new Set<Fault>()
  for (const { at, event } of ofTag(events, "ClientWentOffline")) {
    if (!honest.has(event.id)) continue
    const cause = faultsOf(record, event.id)
      .filter((f) => downKinds.has(f.kind) && f.at <= at)
      .at(-1)
    if (cause === undefined || explained.has(cause)) {
      violations.push({
        invariant: "early-offline",
        detail: `${event.id} was marked offline (${event.reason}) though no fault was injected into it since it was last marked offline`,
      })
      continue
    }
    explained.add(cause)
    const latencyMs = at - cause.at
    const silent = cause.kind !== "kill"
    detections.push({ id: event.id, kind: silent ? "silent" : "closed", latencyMs })
    if (silent && latencyMs < timeout - interval - limits.toleranceMs) {
      violations.push({
        invariant: "early-offline",
        detail: `${event.id} was marked offline ${latencyMs} ms after its ${cause.kind}, before its ${timeout} ms heartbeat timeout less one ${interval} ms interval`,
      })
    }
  }
  // A fault that lasted past the timeout must have been noticed.
  const end = Math.max(0, ...events.map((e) => e.at))
  for (const fault of record.faults) {
    if (!downKinds.has(fault.kind) || explained.has(fault) || !honest.has(fault.target)) continue
    const recovered = faultsOf(record, fault.target).find((f) => upKinds.has(f.kind) && f.at > fault.at)?.at ?? end
    const completedAt = ofTag(events, "TrainingCompleted").find((e) => e.at > fault.at)?.at ?? end
    const lasted = Math.min(recovered, completedAt) - fault.at
    if (lasted > timeout + limits.detectionSlackMs) {
      violations.push({
        invariant: "missed-detection",
        detail: `${fault.target} was down (${fault.kind}) for ${lasted} ms, past its ${timeout} ms timeout, and never marked offline`,
      })
    }
  }
  return { violations, detections }
}

const quorumChecks = (record: RunRecord): Array<Violation> =>
  record.servers.flatMap((life) => {
    const violations: Array<Violation> = []
    let lost = false
    for (const { event } of life.events) {
      if (event._tag === "QuorumLost") lost = true
      else if (event._tag === "QuorumRestored") lost = false
      else if (event._tag === "RoundStarted") {
        if (event.participants.length < record.settings.minClients) {
          violations.push({
            invariant: "round-below-quorum",
            detail: `round ${event.round} started with ${event.participants.length} participant(s), fewer than --min-clients ${record.settings.minClients}`,
          })
        } else if (lost) {
          violations.push({
            invariant: "round-below-quorum",
            detail: `round ${event.round} started after quorum-lost and before quorum-restored`,
          })
        }
      }
    }
    return violations
  })

// One completed round against its start, its exclusions and who had authenticated by then.
const roundChecks = (record: RunRecord): Array<Violation> =>
  record.servers.flatMap((life) => {
    const violations: Array<Violation> = []
    const honest = new Set(record.settings.honest)
    const hostile = new Set(record.settings.hostileIds)
    const authenticated = new Set<string>()
    const started = new Map<number, ReadonlySet<string>>()
    const excludedBy = new Map<number, Set<string>>()
    for (const { event } of life.events) {
      if (event._tag === "ClientJoined" || event._tag === "ClientRejoined") authenticated.add(event.id)
      else if (event._tag === "RoundStarted") {
        started.set(event.round, new Set(event.participants))
        excludedBy.set(event.round, new Set())
        for (const id of event.participants) {
          if (!authenticated.has(id)) {
            violations.push({
              invariant: "bad-update-averaged",
              detail: `round ${event.round} chose ${id} as a participant, which never authenticated to this server`,
            })
          }
        }
      } else if (event._tag === "ClientExcluded") excludedBy.get(event.round)?.add(event.id)
      else if (event._tag === "RoundCompleted") {
        const bad = (why: string) => violations.push({ invariant: "bad-update-averaged", detail: why })
        const start = started.get(event.round) ?? new Set<string>()
        const excluded = new Set([...(excludedBy.get(event.round) ?? []), ...event.excluded.map((x) => x.id)])
        for (const id of event.participants) {
          if (!start.has(id)) bad(`round ${event.round} averaged ${id}, not one of its participants`)
          if (excluded.has(id)) bad(`round ${event.round} averaged ${id}, which it had excluded`)
          if (hostile.has(id)) bad(`round ${event.round} averaged ${id}, a hostile peer sending garbage`)
          else if (!honest.has(id)) bad(`round ${event.round} averaged ${id}, an id no honest client has`)
        }
        const fates = new Set([...event.participants, ...excluded])
        for (const id of start) {
          if (!fates.has(id)) {
            violations.push({
              invariant: "participant-unreported",
              detail: `round ${event.round}: participant ${id} was neither averaged nor excluded with a reason`,
            })
          }
        }
      }
    }
    return violations
  })

const impostorChecks = (record: RunRecord): Array<Violation> => {
  const remotes = new Set(record.impostorRemotes)
  const allowed = new Set([...record.settings.honest, ...record.settings.hostileIds])
  return record.servers.flatMap((life) =>
    life.events.flatMap(({ event }): Array<Violation> => {
      if (event._tag !== "ClientJoined" && event._tag !== "ClientRejoined" && event._tag !== "ClientReplaced") return []
      if (remotes.has(event.remote)) {
        return [
          {
            invariant: "impostor-accepted",
            detail: `the impostor connection ${event.remote} was welcomed as ${event.id} (${event._tag})`,
          },
        ]
      }
      return allowed.has(event.id)
        ? []
        : [{ invariant: "impostor-accepted", detail: `unknown id ${event.id} joined from ${event.remote}` }]
    }),
  )
}

// What a server process has seen so far, for judging each `UpdateAccepted` as it comes.
interface Acceptance {
  readonly authenticated: Set<string>
  running: { readonly round: number; readonly participants: ReadonlySet<string> } | undefined
  readonly excluded: Map<number, Set<string>>
  readonly accepted: Map<number, Set<string>>
}

// Why accepting `id`'s update for `round` now is wrong, if it is.
const wrongAcceptance = (record: RunRecord, seen: Acceptance, round: number, id: string): Array<string> => {
  const why: Array<string> = []
  const what = `round ${round} accepted an update from ${id}`
  if (record.settings.hostileIds.includes(id)) why.push(`${what}, a hostile peer sending garbage`)
  else if (!record.settings.honest.includes(id)) why.push(`${what}, an id no honest client has`)
  if (!seen.authenticated.has(id)) why.push(`${what}, which never authenticated to this server process`)
  if (seen.running?.round !== round) {
    const now = seen.running === undefined ? "no round was running" : `round ${seen.running.round} was running`
    why.push(`${what}, a stale update: ${now}`)
  } else if (!seen.running.participants.has(id)) why.push(`${what}, not one of its participants`)
  if (seen.excluded.get(round)?.has(id) === true) why.push(`${what}, which it had excluded`)
  if (seen.accepted.get(round)?.has(id) === true) why.push(`${what} twice`)
  return why
}

// Every `UpdateAccepted` against the round running, its exclusions and who had authenticated,
// and every `RoundCompleted`'s averaged ids against the updates it accepted: the direct check that
// nothing from an excluded, stale, hostile or unauthenticated sender is averaged.
const acceptanceChecks = (record: RunRecord): Array<Violation> =>
  record.servers.flatMap((life) => {
    const violations: Array<Violation> = []
    const seen: Acceptance = { authenticated: new Set(), running: undefined, excluded: new Map(), accepted: new Map() }
    const setOf = (map: Map<number, Set<string>>, round: number) =>
      map.get(round) ?? map.set(round, new Set()).get(round)!
    for (const { event } of life.events) {
      if (event._tag === "ClientJoined" || event._tag === "ClientRejoined") seen.authenticated.add(event.id)
      else if (event._tag === "RoundStarted") {
        seen.running = { round: event.round, participants: new Set(event.participants) }
        seen.accepted.set(event.round, new Set())
      } else if (event._tag === "ClientExcluded") setOf(seen.excluded, event.round).add(event.id)
      else if (event._tag === "UpdateAccepted") {
        for (const detail of wrongAcceptance(record, seen, event.round, event.id))
          violations.push({ invariant: "bad-update-averaged", detail })
        setOf(seen.accepted, event.round).add(event.id)
      } else if (event._tag === "RoundCompleted") {
        const accepted = seen.accepted.get(event.round) ?? new Set<string>()
        for (const id of event.participants) {
          if (!accepted.has(id)) {
            violations.push({
              invariant: "bad-update-averaged",
              detail: `round ${event.round} averaged ${id} without an update-accepted for it`,
            })
          }
        }
        for (const id of accepted) {
          if (!event.participants.includes(id)) {
            violations.push({
              invariant: "participant-unreported",
              detail: `round ${event.round} accepted ${id}'s update but did not average it`,
            })
          }
        }
        if (seen.running?.round === event.round) seen.running = undefined
      }
    }
    return violations
  })

const referenceChecks = (record: RunRecord): Array<Violation> => {
  if (record.reference === undefined) return []
  const everyone = [...record.settings.honest].sort().join(",")
  const reference = new Map(record.reference.map((round) => [round.round, round]))
  const violations: Array<Violation> = []
  for (const { event } of record.servers.flatMap((life) => ofTag(life.events, "RoundCompleted"))) {
    const expected = reference.get(event.round)
    if (expected === undefined) continue
    const full = (ids: ReadonlyArray<string>) => [...ids].sort().join(",") === everyone
    if (!full(expected.participants)) continue
    if (!full(event.participants)) {
      violations.push({
        invariant: "honest-rounds-changed",
        detail: `round ${event.round} averaged ${event.participants.join(",") || "nobody"}, not every honest client as in the reference run (excluded: ${event.excluded.map((x) => `${x.id}: ${x.reason}`).join("; ")})`,
      })
    } else if (event.modelSha256 !== expected.modelSha256 || event.testAccuracy !== expected.testAccuracy) {
      violations.push({
        invariant: "honest-rounds-changed",
        detail: `round ${event.round} ended on model ${event.modelSha256.slice(0, 12)} (accuracy ${event.testAccuracy}), the reference on ${expected.modelSha256.slice(0, 12)} (accuracy ${expected.testAccuracy})`,
      })
    }
  }
  return violations
}

/**
 * Checks every invariant of one run. Pure: the same record gives the same
 * outcome.
 *
 * @since 0.1.0
 * @category checking
 */
export const check = (record: RunRecord, limits: Limits = defaultLimits): Outcome => {
  const { violations: completionViolations, completed } = completion(record)
  const offline = offlineChecks(record, limits)
  const rss =
    record.peakRssBytes > limits.rssLimitBytes
      ? [
          {
            invariant: "rss-exceeded" as const,
            detail: `the server's RSS peaked at ${mib(record.peakRssBytes)}, above the ${mib(limits.rssLimitBytes)} limit`,
          },
        ]
      : []
  return {
    violations: [
      ...crashes(record),
      ...completionViolations,
      ...offline.violations,
      ...quorumChecks(record),
      ...roundChecks(record),
      ...acceptanceChecks(record),
      ...impostorChecks(record),
      ...referenceChecks(record),
      ...rss,
    ],
    detections: offline.detections,
    roundsCompleted: completed,
  }
}

/**
 * Bytes as MiB with one decimal (`"312.4 MiB"`).
 *
 * @since 0.1.0
 * @category rendering
 */
export const mib = (bytes: number): string => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
