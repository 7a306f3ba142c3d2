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
 * @since 0.2.0
 */
import { Result, Schema } from "effect"

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
 * An update as it arrived: who sent it, the round and sample count its
 * metadata claims, and its raw bytes (little-endian float32).
 *
 * @since 0.2.0
 * @category models
 */
export interface Candidate {
  readonly id: string
  readonly round: number
  readonly samples: number
  readonly bytes: Uint8Array
}

/**
 * An admitted update: weights safe to average.
 *
 * @since 0.2.0
 * @category models
 */
export interface Admitted {
  readonly id: string
  readonly weights: Float32Array
  readonly samples: number
  readonly bytes: number
}

/**
 * What admission compares a candidate with: the running round, the model's
 * parameter count, whether this client is a participant that has not
 * submitted yet, and the sample count it declared at join.
 *
 * @since 0.2.0
 * @category models
 */
export interface Context {
  readonly round: number
  readonly paramCount: number
  readonly isParticipant: boolean
  readonly alreadySubmitted: boolean
  readonly declaredSamples: number
}

/**
 * Checks a candidate update, cheapest checks first; the first failed check is
 * the reason. Pure: no Effect, no clock, so every rule is a plain unit test.
 *
 * @example
 * ```ts
 * const verdict = UpdateAdmission.check(candidate, { round: 3, paramCount: 7850, isParticipant: true, alreadySubmitted: false, declaredSamples: 2000 })
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
  if (!Number.isInteger(candidate.samples) || candidate.samples < 1) {
    return refuse("bad-samples", `sample count ${candidate.samples} is not a positive integer`)
  }
  if (candidate.samples > context.declaredSamples) {
    return refuse(
      "bad-samples",
      `claims ${candidate.samples} samples, more than the ${context.declaredSamples} declared at join`,
    )
  }
  const expectedBytes = context.paramCount * 4
  if (candidate.bytes.byteLength !== expectedBytes) {
    return refuse(
      "wrong-length",
      `wrong length: ${candidate.bytes.byteLength} bytes, expected ${expectedBytes} (${context.paramCount} float32)`,
    )
  }
  // One pass reads (little-endian, as `Weights.encode` writes, on any host) into an array
  // the server owns, and checks every value.
  const view = new DataView(candidate.bytes.buffer, candidate.bytes.byteOffset, candidate.bytes.byteLength)
  const weights = new Float32Array(context.paramCount)
  for (let i = 0; i < weights.length; i++) {
    const value = view.getFloat32(i * 4, true)
    if (!Number.isFinite(value)) return refuse("non-finite", "non-finite weights")
    weights[i] = value
  }
  return Result.succeed({ id: candidate.id, weights, samples: candidate.samples, bytes: candidate.bytes.byteLength })
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
