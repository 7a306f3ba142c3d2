/**
 * One rule for whether a job may go on, shared by deployment, start and
 * every round: at least `minSites` sites take part, and every site in
 * `requiredSites` is among them.
 *
 * FLARE's PR #4209 traced a 144-client job aborting in round 0 to three
 * phases each counting sites their own way (deploy timeouts counted as
 * successes, start timeouts ignored). Here the phases only collect who
 * replied; this policy alone decides.
 *
 * @since 0.1.0
 */

import { Result } from "effect"
import { dual } from "effect/Function"
import { type PhaseFailed, QuorumNotMet, RequiredSiteFailed } from "./JobError.ts"
import type { SiteExcluded } from "./JobEvent.ts"
import type { JobSpec } from "./JobSpec.ts"
import type { Phase } from "./JobStatus.ts"
import type { SiteId } from "./SiteId.ts"

/**
 * A quorum policy. `strictStart` (default `true`) excludes sites that do not
 * confirm their start within the start timeout; `false` keeps them (FLARE's
 * old behaviour, for sites known to start slowly): the job then counts them
 * as participants without a confirmation.
 *
 * @since 0.1.0
 * @category models
 */
export interface QuorumPolicy {
  readonly minSites: number
  readonly requiredSites: ReadonlyArray<SiteId>
  readonly strictStart: boolean
}

/**
 * Builds a policy; `requiredSites` defaults to none and `strictStart` to
 * `true`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly minSites: number
  readonly requiredSites?: ReadonlyArray<SiteId> | undefined
  readonly strictStart?: boolean | undefined
}): QuorumPolicy => ({
  minSites: options.minSites,
  requiredSites: options.requiredSites ?? [],
  strictStart: options.strictStart ?? true,
})

/**
 * The policy of a job spec (its `minSites` and `requiredSites`), strict at
 * start unless `strictStart: false`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromSpec = (spec: JobSpec, options: { readonly strictStart?: boolean | undefined } = {}): QuorumPolicy =>
  make({ minSites: spec.minSites, requiredSites: spec.requiredSites, strictStart: options.strictStart })

/**
 * The required sites missing from `participants` (empty when all are
 * present).
 *
 * @since 0.1.0
 * @category accessors
 */
export const missingRequired = (policy: QuorumPolicy, participants: Iterable<SiteId>): ReadonlyArray<SiteId> => {
  const present = new Set(participants)
  return policy.requiredSites.filter((site) => !present.has(site))
}

/**
 * Whether a round with these participants may proceed: at least `minSites`
 * distinct sites, every required site among them.
 *
 * @example
 * ```ts
 * import { QuorumPolicy } from "@fedguard/job-lifecycle"
 * const policy = QuorumPolicy.make({ minSites: 2, requiredSites: ["hospital-a"] })
 * QuorumPolicy.roundHolds(policy, ["hospital-b", "hospital-c"]) // false: hospital-a is missing
 * ```
 *
 * @since 0.1.0
 * @category predicates
 */
export const roundHolds: {
  (participants: Iterable<SiteId>): (policy: QuorumPolicy) => boolean
  (policy: QuorumPolicy, participants: Iterable<SiteId>): boolean
} = dual(2, (policy: QuorumPolicy, participants: Iterable<SiteId>): boolean =>
  judge(policy, "round", participants, []).pipe(Result.isSuccess),
)

/**
 * The verdict on a phase whose remaining sites are `participants`, having
 * excluded `excluded`: a required site missing fails with
 * `RequiredSiteFailed` naming it (first: the more specific fact), fewer than
 * `minSites` participants with `QuorumNotMet` and each excluded site's
 * reason. The same rule for every phase.
 *
 * @since 0.1.0
 * @category verdicts
 */
export const judge = (
  policy: QuorumPolicy,
  phase: Phase,
  participants: Iterable<SiteId>,
  excluded: ReadonlyArray<SiteExcluded>,
): Result.Result<void, PhaseFailed> => {
  const present = new Set(participants)
  const missing = missingRequired(policy, present)
  if (missing.length > 0) return Result.fail(new RequiredSiteFailed({ phase, sites: missing, excluded }))
  if (present.size < policy.minSites) {
    return Result.fail(new QuorumNotMet({ phase, remaining: present.size, minSites: policy.minSites, excluded }))
  }
  return Result.void
}
