/**
 * What a `WorkerSupervisor` reports happened, as past-tense facts: workers
 * started, adopted, exited, changing health, restarted; tasks assigned,
 * moved and completed; the supervisor escalating or stopping. Times are
 * `Clock` milliseconds.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"
import { RestartRecord } from "./SupervisorError.ts"
import { Breach } from "./WorkerHealth.ts"

/**
 * A worker process was spawned (`incarnation` counts this supervisor's
 * starts of that worker, from 1).
 *
 * @since 0.1.0
 * @category events
 */
export class WorkerStarted extends Schema.TaggedClass<WorkerStarted>()("WorkerStarted", {
  workerId: Schema.String,
  pid: Schema.Number,
  incarnation: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * A restarted supervisor found the worker's recorded process still running
 * (same pid, same start time) and supervises it again without restarting it.
 *
 * @since 0.1.0
 * @category events
 */
export class WorkerAdopted extends Schema.TaggedClass<WorkerAdopted>()("WorkerAdopted", {
  workerId: Schema.String,
  pid: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * A worker process ended: `code` when it exited, `signal` when a signal
 * killed it (both absent for an adopted process, whose status went to its
 * new parent). `expected` is true when the supervisor stopped it.
 *
 * @since 0.1.0
 * @category events
 */
export class WorkerExited extends Schema.TaggedClass<WorkerExited>()("WorkerExited", {
  workerId: Schema.String,
  pid: Schema.Number,
  code: Schema.optional(Schema.Number),
  signal: Schema.optional(Schema.String),
  expected: Schema.Boolean,
  at: Schema.Number,
}) {}

/**
 * A worker's health changed: `starting` → `healthy` on its first good check;
 * `degraded` while a breach holds for fewer than `unhealthyChecks` checks;
 * `unhealthy` once it has held that long (the supervisor then applies its
 * strategy); back to `healthy` when a check passes.
 *
 * @since 0.1.0
 * @category events
 */
export class WorkerHealthChanged extends Schema.TaggedClass<WorkerHealthChanged>()("WorkerHealthChanged", {
  workerId: Schema.String,
  pid: Schema.Number,
  from: Schema.String,
  to: Schema.Literals(["healthy", "degraded", "unhealthy"]),
  breaches: Schema.Array(Breach),
  at: Schema.Number,
}) {}

/**
 * A failed worker's replacement was spawned after `delayMillis` of backoff;
 * `restarts` is the worker's restart count (kept across supervisor restarts).
 *
 * @since 0.1.0
 * @category events
 */
export class WorkerRestarted extends Schema.TaggedClass<WorkerRestarted>()("WorkerRestarted", {
  workerId: Schema.String,
  pid: Schema.Number,
  restarts: Schema.Number,
  delayMillis: Schema.Number,
  reason: Schema.String,
  at: Schema.Number,
}) {}

/**
 * A task was assigned to a worker.
 *
 * @since 0.1.0
 * @category events
 */
export class TaskAssigned extends Schema.TaggedClass<TaskAssigned>()("TaskAssigned", {
  taskId: Schema.String,
  workerId: Schema.String,
  at: Schema.Number,
}) {}

/**
 * The `reassign` strategy moved a failed worker's open tasks: to `to`, or
 * back to the queue (`to` absent) when no other worker was healthy.
 *
 * @since 0.1.0
 * @category events
 */
export class TasksReassigned extends Schema.TaggedClass<TasksReassigned>()("TasksReassigned", {
  from: Schema.String,
  to: Schema.optional(Schema.String),
  taskIds: Schema.Array(Schema.String),
  at: Schema.Number,
}) {}

/**
 * A task was completed by the worker it was assigned to.
 *
 * @since 0.1.0
 * @category events
 */
export class TaskCompleted extends Schema.TaggedClass<TaskCompleted>()("TaskCompleted", {
  taskId: Schema.String,
  workerId: Schema.String,
  at: Schema.Number,
}) {}

/**
 * The restart intensity was exceeded: every worker is being stopped and the
 * supervisor ends with `SupervisorEscalated` (same history).
 *
 * @since 0.1.0
 * @category events
 */
export class SupervisorEscalated extends Schema.TaggedClass<SupervisorEscalated>()("SupervisorEscalated", {
  history: Schema.Array(RestartRecord),
  at: Schema.Number,
}) {}

/**
 * Every worker was stopped and the supervisor ended: `reason` is
 * `"shutdown"`, `"stop-all"` or `"escalated"`.
 *
 * @since 0.1.0
 * @category events
 */
export class SupervisorStopped extends Schema.TaggedClass<SupervisorStopped>()("SupervisorStopped", {
  reason: Schema.Literals(["shutdown", "stop-all", "escalated"]),
  at: Schema.Number,
}) {}

/**
 * Any supervisor event.
 *
 * @since 0.1.0
 * @category events
 */
export type SupervisorEvent =
  | WorkerStarted
  | WorkerAdopted
  | WorkerExited
  | WorkerHealthChanged
  | WorkerRestarted
  | TaskAssigned
  | TasksReassigned
  | TaskCompleted
  | SupervisorEscalated
  | SupervisorStopped
