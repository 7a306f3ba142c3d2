/**
 * The Effect `Metric`s a `WorkerSupervisor` updates, one per kind of event.
 * Export them with any Effect metrics exporter; read them in tests with
 * `Metric.value`.
 *
 * @since 0.1.0
 */
import { Metric } from "effect"

/**
 * Worker processes spawned (first starts and restarts).
 *
 * @since 0.1.0
 * @category metrics
 */
export const workersStarted = Metric.counter("fedguard_supervisor_workers_started_total", {
  description: "worker processes spawned",
  incremental: true,
})

/**
 * Worker processes adopted by a restarted supervisor.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workersAdopted = Metric.counter("fedguard_supervisor_workers_adopted_total", {
  description: "running worker processes adopted by a restarted supervisor",
  incremental: true,
})

/**
 * Worker processes that ended, expected or not.
 *
 * @since 0.1.0
 * @category metrics
 */
export const workerExits = Metric.counter("fedguard_supervisor_worker_exits_total", {
  description: "worker processes that ended",
  incremental: true,
})

/**
 * Health changes of workers (to healthy, degraded or unhealthy).
 *
 * @since 0.1.0
 * @category metrics
 */
export const healthChanges = Metric.counter("fedguard_supervisor_health_changes_total", {
  description: "worker health changes",
  incremental: true,
})

/**
 * Restarts of failed workers.
 *
 * @since 0.1.0
 * @category metrics
 */
export const restarts = Metric.counter("fedguard_supervisor_restarts_total", {
  description: "restarts of failed workers",
  incremental: true,
})

/**
 * Tasks moved from a failed worker by the `reassign` strategy.
 *
 * @since 0.1.0
 * @category metrics
 */
export const tasksReassigned = Metric.counter("fedguard_supervisor_tasks_reassigned_total", {
  description: "tasks moved from a failed worker",
  incremental: true,
})

/**
 * Escalations (restart intensity exceeded).
 *
 * @since 0.1.0
 * @category metrics
 */
export const escalations = Metric.counter("fedguard_supervisor_escalations_total", {
  description: "supervisors that escalated after too many restarts",
  incremental: true,
})

/**
 * Worker processes currently running (spawned or adopted, not yet exited).
 *
 * @since 0.1.0
 * @category metrics
 */
export const workersRunning = Metric.gauge("fedguard_supervisor_workers_running", {
  description: "worker processes currently running",
})
