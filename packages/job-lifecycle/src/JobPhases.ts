/**
 * Deploy and start: run one action per site, all at once, under the phase
 * timeout on the `Clock`, then let the `QuorumPolicy` decide.
 *
 * The lessons of FLARE's PR #4209 are the defaults: a deploy reply that does
 * not arrive in time is a failure (`"deployment timeout"`), never a success;
 * a site that does not confirm its start in time is excluded (`"start
 * timeout"`), never silently kept; and the job goes on with the sites that
 * made it while the policy holds, instead of all-or-nothing. Every exclusion
 * is a `SiteExcluded` in the phase's report (and in the error when the phase
 * fails), with its phase, so the final report says who left when and why.
 *
 * @since 0.1.0
 */
import { type Duration, Effect, Option, Predicate } from "effect"
import type { PhaseFailed } from "./JobError.ts"
import { SiteExcluded } from "./JobEvent.ts"
import * as QuorumPolicy from "./QuorumPolicy.ts"
import type { SiteId } from "./SiteId.ts"

/**
 * What a phase does at one site: deploy the job there, or start it. Success
 * (any value) is the site's confirmation; a failure is the site's refusal,
 * its reason taken from the error (a string, else its `message`, else its
 * `_tag`); an action that never answers is cut off at the phase timeout and
 * interrupted. A defect is not a refusal: it fails the phase.
 *
 * @since 0.1.0
 * @category models
 */
export type SiteAction<E = unknown, R = never> = (site: SiteId) => Effect.Effect<unknown, E, R>

/**
 * The outcome of a phase that let the job go on: the `participants` that go
 * on (in the order the sites were given), the `excluded` sites with their
 * reasons, and, for a non-strict start, the `unconfirmed` sites kept among
 * the participants although they did not confirm in time.
 *
 * @since 0.1.0
 * @category models
 */
export interface PhaseReport {
  readonly phase: "deploy" | "start"
  readonly participants: ReadonlyArray<SiteId>
  readonly excluded: ReadonlyArray<SiteExcluded>
  readonly unconfirmed: ReadonlyArray<SiteId>
}

/**
 * Options of a phase: its `timeout` (a `Duration.Input`: `"60 seconds"`, or
 * milliseconds), counted from the phase's start for every site at once.
 *
 * @since 0.1.0
 * @category models
 */
export interface PhaseOptions {
  readonly timeout: Duration.Input
}

/**
 * The reason of a site's refusal, from its error: a string as is, an
 * object's non-empty `message`, else its `_tag`, else `String(error)`.
 *
 * @since 0.1.0
 * @category utils
 */
export const reasonOf = (error: unknown): string => {
  if (typeof error === "string") return error
  if (Predicate.hasProperty(error, "message") && typeof error.message === "string" && error.message !== "") {
    return error.message
  }
  if (Predicate.hasProperty(error, "_tag") && typeof error._tag === "string") return error._tag
  return String(error)
}

type Reply =
  | { readonly _tag: "Confirmed" }
  | { readonly _tag: "Refused"; readonly reason: string }
  | { readonly _tag: "Silent" }

const confirmed: Reply = { _tag: "Confirmed" }
const silent: Reply = { _tag: "Silent" }

// Each site's reply within the timeout. Every site starts at once, so one deadline cuts them all.
const replies = <E, R>(
  sites: ReadonlyArray<SiteId>,
  action: SiteAction<E, R>,
  timeout: Duration.Input,
): Effect.Effect<ReadonlyArray<Reply>, never, R> =>
  Effect.forEach(
    sites,
    (site) =>
      action(site).pipe(
        Effect.timeoutOption(timeout),
        Effect.map((answer): Reply => (Option.isSome(answer) ? confirmed : silent)),
        Effect.catch((error) => Effect.succeed<Reply>({ _tag: "Refused", reason: reasonOf(error) })),
      ),
    { concurrency: "unbounded" },
  )

// One phase: collect the replies, sort the sites, let the policy decide. A silent site is excluded
// with `silentReason`, or kept unconfirmed when there is none (a non-strict start).
const runPhase = <E, R>(
  policy: QuorumPolicy.QuorumPolicy,
  phase: PhaseReport["phase"],
  sites: ReadonlyArray<SiteId>,
  action: SiteAction<E, R>,
  timeout: Duration.Input,
  silentReason: string | undefined,
): Effect.Effect<PhaseReport, PhaseFailed, R> =>
  Effect.flatMap(replies(sites, action, timeout), (answers) => {
    const participants: Array<SiteId> = []
    const excluded: Array<SiteExcluded> = []
    const unconfirmed: Array<SiteId> = []
    sites.forEach((site, i) => {
      const reply = answers[i]!
      const reason = reply._tag === "Refused" ? reply.reason : reply._tag === "Silent" ? silentReason : undefined
      if (reason !== undefined) excluded.push(new SiteExcluded({ site, phase, reason }))
      else {
        participants.push(site)
        if (reply._tag === "Silent") unconfirmed.push(site)
      }
    })
    const report: PhaseReport = { phase, participants, excluded, unconfirmed }
    return Effect.as(Effect.fromResult(QuorumPolicy.judge(policy, phase, participants, excluded)), report)
  })

/**
 * Deploys to `sites` through `deploy`, all at once. A site that refuses, or
 * does not reply within `timeout` (reason `"deployment timeout"`), is
 * excluded. Then the policy decides: a required site excluded (or not among
 * `sites`) fails with `RequiredSiteFailed` naming it; fewer than `minSites`
 * deployed fails with `QuorumNotMet`, each excluded site with its reason.
 * Either error carries the exclusions.
 *
 * @since 0.1.0
 * @category phases
 */
export const deploy = <E, R>(
  policy: QuorumPolicy.QuorumPolicy,
  sites: ReadonlyArray<SiteId>,
  deploy: SiteAction<E, R>,
  options: PhaseOptions,
): Effect.Effect<PhaseReport, PhaseFailed, R> =>
  runPhase(policy, "deploy", sites, deploy, options.timeout, "deployment timeout")

/**
 * Starts the job at `sites` (the deployed ones) through `start`, all at
 * once. A site that refuses is excluded with its reason. A site that does not
 * confirm within `timeout` is excluded with `"start timeout"` when the policy
 * is strict (the default), or kept as `unconfirmed` when `strictStart` is
 * `false`. Then the policy decides, as for `deploy`.
 *
 * @since 0.1.0
 * @category phases
 */
export const start = <E, R>(
  policy: QuorumPolicy.QuorumPolicy,
  sites: ReadonlyArray<SiteId>,
  start: SiteAction<E, R>,
  options: PhaseOptions,
): Effect.Effect<PhaseReport, PhaseFailed, R> =>
  runPhase(policy, "start", sites, start, options.timeout, policy.strictStart ? "start timeout" : undefined)
