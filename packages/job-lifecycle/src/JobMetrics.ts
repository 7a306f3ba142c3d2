/**
 * The Effect `Metric`s job-lifecycle updates. Export them with any Effect
 * metrics exporter; read them in tests with `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Job state changes, by `to` attribute (the state entered).
 *
 * @since 0.1.0
 * @category metrics
 */
export const transitions = Metric.counter("fedguard_job_lifecycle_transitions_total", {
  description: "job state changes, by the state entered",
  incremental: true,
})

/**
 * Sites a job went on without, by `phase` attribute (`deploy`, `start`).
 *
 * @since 0.1.0
 * @category metrics
 */
export const sitesExcluded = Metric.counter("fedguard_job_lifecycle_sites_excluded_total", {
  description: "sites excluded from a job",
  incremental: true,
})

/**
 * `SiteDied` events: sites that stopped running a job they had been seen
 * running.
 *
 * @since 0.1.0
 * @category metrics
 */
export const sitesDied = Metric.counter("fedguard_job_lifecycle_sites_died_total", {
  description: "sites that stopped running a job after it was seen running there",
  incremental: true,
})

/**
 * `SiteNeverStarted` events: sites not seen running a job within its start
 * timeout.
 *
 * @since 0.1.0
 * @category metrics
 */
export const sitesNeverStarted = Metric.counter("fedguard_job_lifecycle_sites_never_started_total", {
  description: "sites not seen running a job within its start timeout",
  incremental: true,
})
