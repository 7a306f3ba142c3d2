/**
 * What a job reports happened: its state changes (`JobTransitioned`), the
 * sites it went on without (`SiteExcluded`), and, while it runs, sites that
 * stopped running it (`SiteDied`) or never started it (`SiteNeverStarted`).
 *
 * Events are facts published once. Times are epoch milliseconds from the
 * Effect `Clock`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { JobStatus, Phase } from "./JobStatus.ts"
import { SiteId } from "./SiteId.ts"

/**
 * The job moved from `from` to `to`, for `reason` (`"submitted"`,
 * `"deployed to 140 of 144 sites"`, the reason given to `abort`…).
 *
 * @since 0.1.0
 * @category events
 */
export class JobTransitioned extends Schema.TaggedClass<JobTransitioned>()("JobTransitioned", {
  from: JobStatus,
  to: JobStatus,
  reason: Schema.String,
}) {}

/**
 * The job goes on without `site` from `phase` on: it did not deploy
 * (`"deployment timeout"` or the site's own reason), did not start in time
 * (`"start timeout"`), or failed to start.
 *
 * @since 0.1.0
 * @category events
 */
export class SiteExcluded extends Schema.TaggedClass<SiteExcluded>()("SiteExcluded", {
  site: SiteId,
  phase: Phase,
  reason: Schema.String,
}) {}

/**
 * A site that was seen running the job (at `lastSeenAt`) reported it no
 * longer is, or was declared gone, for `reason`. Never published for a site
 * that was never seen running: that is `SiteNeverStarted`.
 *
 * @since 0.1.0
 * @category events
 */
export class SiteDied extends Schema.TaggedClass<SiteDied>()("SiteDied", {
  site: SiteId,
  at: Schema.Number,
  lastSeenAt: Schema.Number,
  reason: Schema.String,
}) {}

/**
 * A site was not once seen running the job within the start timeout
 * (`waitedMs` after the watch began). A late start after it is still
 * accepted.
 *
 * @since 0.1.0
 * @category events
 */
export class SiteNeverStarted extends Schema.TaggedClass<SiteNeverStarted>()("SiteNeverStarted", {
  site: SiteId,
  at: Schema.Number,
  waitedMs: Schema.Number,
}) {}

/**
 * Any job event, as a Schema (to encode events for logs or a store) and as a
 * type.
 *
 * @since 0.1.0
 * @category events
 */
export const JobEvent = Schema.Union([JobTransitioned, SiteExcluded, SiteDied, SiteNeverStarted])

/**
 * @since 0.1.0
 * @category events
 */
export type JobEvent = typeof JobEvent.Type
