/**
 * The supervisor's events (`@fedguard/supervisor`'s `SupervisorEvent`) as
 * the apps' JSON lines (`@fedguard/app-kit`'s `EventLog`):
 * `{"event":"worker-restarted","workerId":"client-1","pid":4242,…,"level":"WARN","time":"…"}`.
 * What fed-supervisor prints when its stdout is not a terminal; `fromLine`
 * reads a line back into the typed event (the tests and a demo use it
 * instead of parsing text).
 *
 * @since 0.1.0
 */
import { EventLog } from "@fedguard/app-kit"
import { SupervisorEvent } from "@fedguard/supervisor"
import { Schema } from "effect"

/**
 * Every supervisor event, as one Schema.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Event = Schema.Union([
  SupervisorEvent.WorkerStarted,
  SupervisorEvent.WorkerAdopted,
  SupervisorEvent.WorkerExited,
  SupervisorEvent.WorkerHealthChanged,
  SupervisorEvent.WorkerRestarted,
  SupervisorEvent.TaskAssigned,
  SupervisorEvent.TasksReassigned,
  SupervisorEvent.TaskCompleted,
  SupervisorEvent.SupervisorEscalated,
  SupervisorEvent.SupervisorStopped,
])

/**
 * The line name and level of each event; `log`, `fromLine` and `nameOf`.
 *
 * @since 0.1.0
 * @category codecs
 */
export const lines = EventLog.codec(Event, {
  WorkerStarted: { name: "worker-started", level: "Info" },
  WorkerAdopted: { name: "worker-adopted", level: "Info" },
  WorkerExited: { name: "worker-exited", level: "Info" },
  WorkerHealthChanged: { name: "worker-health-changed", level: "Info" },
  WorkerRestarted: { name: "worker-restarted", level: "Warning" },
  TaskAssigned: { name: "task-assigned", level: "Debug" },
  TasksReassigned: { name: "tasks-reassigned", level: "Info" },
  TaskCompleted: { name: "task-completed", level: "Debug" },
  SupervisorEscalated: { name: "supervisor-escalated", level: "Error" },
  SupervisorStopped: { name: "supervisor-stopped", level: "Info" },
})
