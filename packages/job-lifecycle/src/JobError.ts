/**
 * The typed failures of a job's lifecycle: a refused spec, a phase the quorum
 * policy does not let through, and an illegal state change.
 *
 * All are final: the same spec, the same replies or the same move would fail
 * the same way.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { SiteExcluded } from "./JobEvent.ts"
import { JobStatus, Phase } from "./JobStatus.ts"
import { SiteId } from "./SiteId.ts"

/**
 * One problem of a refused spec: the field (`"minSites"`, an unknown key, or
 * `"spec"` for an input that is not an object) and what is wrong with it.
 *
 * @since 0.1.0
 * @category models
 */
export const SpecProblem = Schema.Struct({ field: Schema.String, message: Schema.String })

/**
 * @since 0.1.0
 * @category models
 */
export type SpecProblem = typeof SpecProblem.Type

/**
 * A job spec was refused: `problems` has one entry per broken field, every
 * one found (not only the first); the message lists them.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidJobSpec extends Schema.TaggedError<InvalidJobSpec>()("InvalidJobSpec", {
  problems: Schema.Array(SpecProblem),
}) {
  override get message(): string {
    return `invalid job spec: ${this.problems.map((p) => `${p.field}: ${p.message}`).join("; ")}`
  }
}

/**
 * Sites the job cannot run without (`requiredSites`) failed `phase`: each
 * with its reason. `excluded` is every site the phase excluded, for the
 * report.
 *
 * @since 0.1.0
 * @category errors
 */
export class RequiredSiteFailed extends Schema.TaggedError<RequiredSiteFailed>()("RequiredSiteFailed", {
  phase: Phase,
  sites: Schema.Array(SiteId),
  excluded: Schema.Array(SiteExcluded),
}) {
  override get message(): string {
    const reasons = this.sites.map(
      (site) => `${site} (${this.excluded.find((e) => e.site === site)?.reason ?? "not a participant"})`,
    )
    return `${this.phase} failed: required site(s) ${reasons.join(", ")}`
  }
}

/**
 * Fewer than `minSites` sites remained after `phase` (`remaining` of
 * them); `excluded` names every other site with its reason.
 *
 * @since 0.1.0
 * @category errors
 */
export class QuorumNotMet extends Schema.TaggedError<QuorumNotMet>()("QuorumNotMet", {
  phase: Phase,
  remaining: Schema.Number,
  minSites: Schema.Number,
  excluded: Schema.Array(SiteExcluded),
}) {
  override get message(): string {
    const reasons = this.excluded.map((e) => `${e.site}: ${e.reason}`).join(", ")
    const detail = reasons === "" ? "no site was excluded: too few sites took part" : reasons
    return `${this.phase} failed: ${this.remaining} site(s) remain, ${this.minSites} required (${detail})`
  }
}

/**
 * A job was asked to move from `from` to `to`, which the lifecycle does not
 * allow (a finished job resuming, a paused job completing…). Nothing
 * changed.
 *
 * @since 0.1.0
 * @category errors
 */
export class IllegalTransition extends Schema.TaggedError<IllegalTransition>()("IllegalTransition", {
  from: JobStatus,
  to: JobStatus,
}) {
  override get message(): string {
    return `a job cannot go from ${this.from} to ${this.to}`
  }
}

/**
 * Any reason a job's phase (deploy, start) stopped the job.
 *
 * @since 0.1.0
 * @category errors
 */
export type PhaseFailed = RequiredSiteFailed | QuorumNotMet

/**
 * A job's launch stopped because the job was failed or aborted from outside
 * (`status`, with the `reason` given) while it was deploying or starting.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobEnded extends Schema.TaggedError<JobEnded>()("JobEnded", {
  status: JobStatus,
  reason: Schema.String,
}) {
  override get message(): string {
    return `the job was ${this.status} during its launch: ${this.reason}`
  }
}
