/**
 * Every update is checked before it can reach FedAvg: untrusted bytes from a
 * client never become part of the global model unless they are an update for
 * this round, the client's first this round, of the model's exact length,
 * finite in every value, and trained on a positive number of samples no larger
 * than the shard the client declared when it joined.
 *
 * Why: one client that uploads NaN (or ±Infinity) weights of a valid length
 * used to be averaged in, which made the global model NaN and every honest
 * client's next update undecodable. FedAvg itself (McMahan et al. 2017) has no
 * defence; robust aggregators (Krum, trimmed mean) go further than this, and
 * this admission is what any of them needs first.
 *
 * The checks run in two places, so that no update is ever held whole in
 * memory: what the bytes say (length, finite values) is checked chunk by chunk
 * while they stream into their spill ({@link scanWeights}), and the verdict
 * travels with the candidate as its {@link Content}; what the round says
 * (round, participant, duplicate, sample count) is checked by {@link check}
 * when the round takes the candidate. `check` keeps the order of the checks
 * (round, participant, duplicate, samples, then the bytes' verdict), so the
 * reason given for an update that fails several is the same as when one
 * function checked the decoded whole.
 *
 * @since 0.2.0
 */
import { Option, Result, Schema } from "effect"
import type { Spill } from "./UpdateSpill.ts"

/**
 * Why an update was refused. `reason` is the text shown in the report and the
 * log after `rejected: ` (`non-finite weights`, `stale round 3`, …).
 *
 * @since 0.2.0
 * @category errors
 */
export class UpdateRefused extends Schema.TaggedError<UpdateRefused>()("UpdateRefused", {
  id: Schema.String,
  kind: Schema.Literals([
    "stale-round",
    "duplicate",
    "not-a-participant",
    "wrong-length",
    "non-finite",
    "bad-samples",
    "undecodable",
    "unstored",
  ]),
  reason: Schema.String,
}) {
  override get message(): string {
    return `update from ${this.id} rejected: ${this.reason}`
  }

  /** The exclusion reason in the report: `rejected: <reason>`. */
  get exclusion(): string {
    return `rejected: ${this.reason}`
  }
}

/**
 * What an upload's bytes came to, decided while they streamed in:
 *
 * - `Spilled`: `bytes` bytes of finite float32 values, the model's exact
 *   length, in `spill` (until the round's spill directory goes);
 * - `Refused`: why they cannot be averaged (wrong length, a non-finite
 *   value, a sample count refused from the metadata, not sent for the running
 *   round, or not stored); nothing of them was kept.
 *
 * @since 0.3.0
 * @category models
 */
export type Content =
  | { readonly _tag: "Spilled"; readonly spill: Spill; readonly bytes: number }
  | { readonly _tag: "Refused"; readonly refusal: UpdateRefused }

/**
 * An update as it arrived: who sent it, the round and sample count its
 * metadata claims, and what its bytes came to.
 *
 * @since 0.2.0
 * @category models
 */
export interface Candidate {
  readonly id: string
  readonly round: number
  readonly samples: number
  readonly content: Content
}

/**
 * An admitted update: its sender, sample count and byte count, and the spill
 * that holds its weights (read back only when the round reduces). No weights
 * in memory: a round holds one of these per client, whatever the model's
 * size.
 *
 * @since 0.2.0
 * @category models
 */
export interface Admitted {
  readonly id: string
  readonly samples: number
  readonly bytes: number
  readonly spill: Spill
}

/**
 * What admission compares a candidate with: the running round, whether this
 * client is a participant that has not submitted yet, and the sample count
 * it declared at join.
 *
 * @since 0.2.0
 * @category models
 */
export interface Context {
  readonly round: number
  readonly isParticipant: boolean
  readonly alreadySubmitted: boolean
  readonly declaredSamples: number
}

/**
 * The refusal of a sample count, if any: it must be a positive integer no
 * larger than the shard the client declared at join. Checked from the
 * metadata before the bytes are kept, and again by {@link check}.
 *
 * @since 0.3.0
 * @category checks
 */
export const refuseSamples = (id: string, samples: number, declaredSamples: number): Option.Option<UpdateRefused> => {
  if (!Number.isInteger(samples) || samples < 1) {
    return Option.some(
      new UpdateRefused({ id, kind: "bad-samples", reason: `sample count ${samples} is not a positive integer` }),
    )
  }
  if (samples > declaredSamples) {
    return Option.some(
      new UpdateRefused({
        id,
        kind: "bad-samples",
        reason: `claims ${samples} samples, more than the ${declaredSamples} declared at join`,
      }),
    )
  }
  return Option.none()
}

/**
 * Checks a candidate update against the round, cheapest checks first; the
 * first failed check is the reason, the bytes' verdict (its `content`) last.
 * Pure: no Effect, no clock, so every rule is a plain unit test.
 *
 * @example
 * ```ts
 * const verdict = UpdateAdmission.check(candidate, { round: 3, isParticipant: true, alreadySubmitted: false, declaredSamples: 2000 })
 * // Result.fail(UpdateRefused { reason: "non-finite weights" }) for a NaN upload
 * ```
 *
 * @since 0.2.0
 * @category checks
 */
export const check = (candidate: Candidate, context: Context): Result.Result<Admitted, UpdateRefused> => {
  const refuse = (kind: UpdateRefused["kind"], reason: string) =>
    Result.fail(new UpdateRefused({ id: candidate.id, kind, reason }))
  if (candidate.round !== context.round) {
    return refuse("stale-round", `stale round ${candidate.round} (round ${context.round} is running)`)
  }
  if (!context.isParticipant) return refuse("not-a-participant", `not a participant of round ${context.round}`)
  if (context.alreadySubmitted) return refuse("duplicate", `duplicate update for round ${context.round}`)
  const samples = refuseSamples(candidate.id, candidate.samples, context.declaredSamples)
  if (Option.isSome(samples)) return Result.fail(samples.value)
  const { content } = candidate
  if (content._tag === "Refused") return Result.fail(content.refusal)
  return Result.succeed({ id: candidate.id, samples: candidate.samples, bytes: content.bytes, spill: content.spill })
}

/**
 * The streaming half of admission, for one upload: `feed` each chunk as it
 * arrives (any sizes, any alignment: a value split across two chunks is
 * read whole); it returns `false` from the chunk that holds a NaN or
 * ±Infinity on, when nothing more of the update needs keeping. At the end,
 * `verdict()` is the refusal, if any: a length other than the model's first
 * (`wrong length: …`), then `non-finite weights`, the reasons and order of
 * the whole-update check this replaces. Holds 4 bytes, whatever the update's
 * size.
 *
 * @example
 * ```ts
 * const scan = UpdateAdmission.scanWeights("c1", paramCount)
 * for (const chunk of chunks) if (!scan.feed(chunk)) break // stop keeping its bytes
 * const refusal = scan.verdict() // Option<UpdateRefused>
 * ```
 *
 * @since 0.3.0
 * @category checks
 */
export interface WeightScan {
  readonly feed: (chunk: Uint8Array) => boolean
  readonly verdict: () => Option.Option<UpdateRefused>
}

/**
 * A {@link WeightScan} for `id`'s update of a model of `paramCount`
 * parameters.
 *
 * @since 0.3.0
 * @category checks
 */
export const scanWeights = (id: string, paramCount: number): WeightScan => {
  const expected = paramCount * 4
  // The bytes of a value that straddles two chunks.
  const straddling = new DataView(new ArrayBuffer(4))
  let carried = 0
  let received = 0
  let finite = true

  const feed = (chunk: Uint8Array): boolean => {
    const offset = received
    received += chunk.byteLength
    if (!finite) return false
    // Only values inside the model's length are read; a longer update is refused by its length.
    const end = Math.min(chunk.byteLength, Math.max(0, expected - offset))
    const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength)
    let i = 0
    if (carried > 0) {
      while (carried < 4 && i < end) straddling.setUint8(carried++, view.getUint8(i++))
      if (carried < 4) return true
      carried = 0
      finite = Number.isFinite(straddling.getFloat32(0, true))
    }
    for (; finite && i + 4 <= end; i += 4) finite = Number.isFinite(view.getFloat32(i, true))
    if (!finite) return false
    while (i < end) straddling.setUint8(carried++, view.getUint8(i++))
    return true
  }

  const verdict = (): Option.Option<UpdateRefused> => {
    if (received !== expected) {
      return Option.some(
        new UpdateRefused({
          id,
          kind: "wrong-length",
          reason: `wrong length: ${received} bytes, expected ${expected} (${paramCount} float32)`,
        }),
      )
    }
    if (!finite) return Option.some(new UpdateRefused({ id, kind: "non-finite", reason: "non-finite weights" }))
    return Option.none()
  }

  return { feed, verdict }
}

/**
 * A refusal for an update whose metadata or bytes could not even be read
 * (`reason` says what).
 *
 * @since 0.2.0
 * @category constructors
 */
export const undecodable = (id: string, reason: string): UpdateRefused =>
  new UpdateRefused({ id, kind: "undecodable", reason: `undecodable: ${reason}` })

/**
 * A refusal for an update sent for a round that was not running when it
 * arrived. Its bytes are not kept; an update for an earlier round is refused
 * by {@link check} as stale before this is looked at, so this is the reason
 * only for an update sent before its round started.
 *
 * @since 0.3.0
 * @category constructors
 */
export const notRunning = (id: string, round: number): UpdateRefused =>
  new UpdateRefused({ id, kind: "stale-round", reason: `round ${round} was not running when the update arrived` })

/**
 * A refusal for an update the server could not store (its spill failed:
 * `reason` is the system's, e.g. a full disk). The sender is not at fault,
 * but the round cannot average what it could not keep.
 *
 * @since 0.3.0
 * @category constructors
 */
export const unstored = (id: string, reason: string): UpdateRefused =>
  new UpdateRefused({ id, kind: "unstored", reason: `not stored by the server: ${reason}` })
