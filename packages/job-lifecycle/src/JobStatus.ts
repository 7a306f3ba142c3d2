/**
 * The states a federated job goes through: `submitted → deploying →
 * starting → running ⇄ paused → completed | failed | aborted`. Which moves
 * are legal is `JobState`'s; this module names the states.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A job's state, as a Schema (for events and stored jobs) and as a type.
 *
 * @since 0.1.0
 * @category schemas
 */
export const JobStatus = Schema.Literals([
  "submitted",
  "deploying",
  "starting",
  "running",
  "paused",
  "completed",
  "failed",
  "aborted",
])

/**
 * @since 0.1.0
 * @category models
 */
export type JobStatus = typeof JobStatus.Type

/**
 * Every state, in lifecycle order.
 *
 * @since 0.1.0
 * @category constants
 */
export const all: ReadonlyArray<JobStatus> = JobStatus.literals

/**
 * The states a job never leaves: `completed`, `failed`, `aborted`.
 *
 * @since 0.1.0
 * @category constants
 */
export const terminal: ReadonlySet<JobStatus> = new Set<JobStatus>(["completed", "failed", "aborted"])

/**
 * Whether a job in `status` is over (no transition leaves it).
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTerminal = (status: JobStatus): boolean => terminal.has(status)

/**
 * The phase of a job in which a site was excluded: at deployment, at start,
 * or in a round.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Phase = Schema.Literals(["deploy", "start", "round"])

/**
 * @since 0.1.0
 * @category models
 */
export type Phase = typeof Phase.Type
