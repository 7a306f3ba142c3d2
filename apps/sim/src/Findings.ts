/**
 * What a simulation found, read from its event log and the sim's own
 * records: the figures a chaos campaign reports (detection latency against
 * the configured timeout, exclusions by reason, rounds completed and
 * paused) and the invariants checked on every run:
 *
 * 1. **no early offline**: a client the server marks offline for silence
 *    (`reason: "timeout"`) had sent the server nothing for at least the
 *    heartbeat timeout (measured at the server's side of the in-memory
 *    transport, in virtual time);
 * 2. **quorum**: every committed round averaged at least `minClients`
 *    updates, or a `quorum-lost` / `round-paused` was reported while it ran;
 * 3. **only admitted updates averaged**: no participant of a committed
 *    round is among its excluded clients, each one trained that round, and
 *    the round's model is, bit for bit, the FedAvg of exactly those
 *    participants' updates (recomputed here from the updates the sim's
 *    clients produced, in client-id order).
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { FedAvg, Weights } from "@fedguard/federation"
import { Effect } from "effect"
import type { Entry } from "./EventRecorder.ts"

/**
 * The simulated clients' updates, by `round` then client id: what each
 * trained and how many samples it declared.
 *
 * @since 0.1.0
 * @category models
 */
export type Updates = Map<number, Map<string, { readonly weights: Float32Array; readonly samples: number }>>

/**
 * A broken invariant: which (`early-offline`, `quorum`, `unadmitted-update`)
 * and what happened.
 *
 * @since 0.1.0
 * @category models
 */
export interface Violation {
  readonly invariant: "early-offline" | "quorum" | "unadmitted-update"
  readonly detail: string
}

/**
 * A p50 / p99 / max summary (ms) of `count` samples; all 0 without samples.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly count: number
  readonly p50: number
  readonly p99: number
  readonly max: number
  readonly min: number
}

/**
 * Summarises `samples` (nearest-rank percentiles).
 *
 * @since 0.1.0
 * @category figures
 */
export const summary = (samples: ReadonlyArray<number>): Summary => {
  if (samples.length === 0) return { count: 0, p50: 0, p99: 0, max: 0, min: 0 }
  const sorted = [...samples].sort((a, b) => a - b)
  const rank = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!
  return { count: sorted.length, p50: rank(0.5), p99: rank(0.99), max: sorted.at(-1)!, min: sorted[0]! }
}

/**
 * Checks invariant 1 as each `client-offline` line is logged: `silence` is
 * how long the server had heard nothing from the client. Returns the
 * violation, if any.
 *
 * @since 0.1.0
 * @category invariants
 */
export const checkOffline = (
  entry: Entry,
  silence: number | undefined,
  heartbeatTimeoutMs: number,
): Violation | undefined => {
  if (entry.fields.reason !== "timeout" || silence === undefined || silence >= heartbeatTimeoutMs) return undefined
  return {
    invariant: "early-offline",
    detail: `${String(entry.fields.id)} marked offline at ${entry.t} ms after ${silence} ms of silence (timeout ${heartbeatTimeoutMs} ms)`,
  }
}

interface Round {
  readonly round: number
  readonly participants: ReadonlyArray<string>
  readonly excluded: ReadonlyArray<{ readonly id: string; readonly reason: string }>
  readonly modelUpdated: boolean
  readonly modelSha256: string
}

const sha256 = (model: Float32Array) => createHash("sha256").update(Weights.encode(model)).digest("hex")

// Invariant 3 for one committed round.
const checkAveraged = (round: Round, updates: Updates): Effect.Effect<ReadonlyArray<Violation>> =>
  Effect.gen(function* () {
    const violations: Array<Violation> = []
    const fail = (detail: string) => violations.push({ invariant: "unadmitted-update", detail })
    const excluded = new Set(round.excluded.map((e) => e.id))
    for (const id of round.participants) if (excluded.has(id)) fail(`round ${round.round}: ${id} averaged and excluded`)
    const trained = updates.get(round.round) ?? new Map()
    const used = [...round.participants].sort().map((id) => ({ id, update: trained.get(id) }))
    for (const { id, update } of used) if (update === undefined) fail(`round ${round.round}: ${id} never trained it`)
    if (!round.modelUpdated || violations.length > 0) return violations
    const expected = yield* FedAvg.aggregate(used.map(({ update }) => update!)).pipe(Effect.orDie)
    if (sha256(expected) !== round.modelSha256) {
      fail(`round ${round.round}: the model is not the FedAvg of its ${used.length} participants' updates`)
    }
    return violations
  })

/**
 * The rounds' figures and invariants 2 and 3, from the whole log.
 *
 * @since 0.1.0
 * @category invariants
 */
export const checkRounds = (entries: ReadonlyArray<Entry>, updates: Updates, minClients: number) =>
  Effect.gen(function* () {
    const violations: Array<Violation> = []
    const exclusions: Record<string, number> = {}
    const paused = new Set<number>()
    let completed = 0
    let belowQuorum = false
    for (const entry of entries) {
      const f = entry.fields
      if (entry.event === "round-started") belowQuorum = false
      if (entry.event === "quorum-lost") belowQuorum = true
      if (entry.event === "round-paused") {
        belowQuorum = true
        paused.add(Number(f.round))
      }
      if (entry.event === "client-excluded") {
        const reason = String(f.reason)
          .replace(/ \(.*$/, "")
          .replace(/: .*$/, "")
        exclusions[reason] = (exclusions[reason] ?? 0) + 1
      }
      if (entry.event !== "round-completed") continue
      completed++
      const round = f as unknown as Round
      if (round.participants.length < minClients && !belowQuorum) {
        violations.push({
          invariant: "quorum",
          detail: `round ${round.round} averaged ${round.participants.length} updates (min ${minClients}) and no pause or quorum loss was reported`,
        })
      }
      violations.push(...(yield* checkAveraged(round, updates)))
    }
    return { completed, paused: [...paused].sort((a, b) => a - b), exclusions, violations }
  })
