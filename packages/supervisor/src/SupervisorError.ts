/**
 * The supervisor's typed failures: how a supervisor ends (escalation, a
 * stop-all), and the refusals of its task API. Policies decide on the tag.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * One restart the supervisor performed: which worker, when (`Clock`
 * milliseconds), and why (`"exited with code 1"`, `"killed by SIGKILL"`,
 * `"unhealthy: RSS … over …"`).
 *
 * @since 0.1.0
 * @category models
 */
export const RestartRecord = Schema.Struct({
  workerId: Schema.String,
  at: Schema.Number,
  reason: Schema.String,
})

/**
 * @since 0.1.0
 * @category models
 */
export type RestartRecord = typeof RestartRecord.Type

/**
 * More than `maxRestarts` restarts fell within `restartPeriod` (OTP's
 * restart intensity): the supervisor stopped every worker and ended.
 * `history` is every restart in the window, oldest first, the one that broke
 * the limit last. Final: restarting the supervisor itself will not help
 * until the cause is fixed.
 *
 * @since 0.1.0
 * @category errors
 */
export class SupervisorEscalated extends Schema.TaggedError<SupervisorEscalated>()("SupervisorEscalated", {
  maxRestarts: Schema.Number,
  periodMillis: Schema.Number,
  history: Schema.Array(RestartRecord),
}) {
  override get message(): string {
    const last = this.history[this.history.length - 1]
    return `${this.history.length} restarts within ${this.periodMillis} ms (at most ${this.maxRestarts} allowed); last: ${last?.workerId} ${last?.reason}`
  }
}

/**
 * The `stop-all` strategy ended the supervisor: `workerId` failed for
 * `reason`, and every worker was stopped.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoppedOnFailure extends Schema.TaggedError<StoppedOnFailure>()("StoppedOnFailure", {
  workerId: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `worker ${this.workerId} failed (${this.reason}); every worker was stopped`
  }
}

/**
 * No worker with this id under this supervisor.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownWorker extends Schema.TaggedError<UnknownWorker>()("UnknownWorker", {
  workerId: Schema.String,
}) {
  override get message(): string {
    return `no worker ${this.workerId}`
  }
}

/**
 * The task was completed already: it is never assigned or completed again.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskAlreadyCompleted extends Schema.TaggedError<TaskAlreadyCompleted>()("TaskAlreadyCompleted", {
  taskId: Schema.String,
  completedBy: Schema.String,
}) {
  override get message(): string {
    return `task ${this.taskId} was already completed by ${this.completedBy}`
  }
}

/**
 * `complete(taskId, workerId)` from a worker the task is not assigned to
 * (it was moved to another worker, or never assigned): refused, so a task
 * moved away from a slow worker is not completed twice. `assignedTo` is the
 * current holder, if any.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskNotAssigned extends Schema.TaggedError<TaskNotAssigned>()("TaskNotAssigned", {
  taskId: Schema.String,
  workerId: Schema.String,
  assignedTo: Schema.optional(Schema.String),
}) {
  override get message(): string {
    return `task ${this.taskId} is not assigned to ${this.workerId}${this.assignedTo === undefined ? "" : ` (it is assigned to ${this.assignedTo})`}`
  }
}

/**
 * No task with this id.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownTask extends Schema.TaggedError<UnknownTask>()("UnknownTask", {
  taskId: Schema.String,
}) {
  override get message(): string {
    return `no task ${this.taskId}`
  }
}
