/**
 * The job's lifecycle as a typed state machine:
 *
 * ```text
 * submitted → deploying → starting → running ⇄ paused
 *                                       ↓        ↓
 *                                   completed | failed | aborted
 * ```
 *
 * Every non-terminal state may fail or be aborted (a submitted job cannot
 * fail: nothing ran yet, so it is aborted); only a running job completes.
 * `completed`, `failed` and `aborted` never leave: FLARE once resumed an
 * aborted job, and here that move is an `IllegalTransition`.
 *
 * @since 0.1.0
 */
import { Result } from "effect"
import { IllegalTransition } from "./JobError.ts"
import { JobTransitioned } from "./JobEvent.ts"
import type { JobStatus } from "./JobStatus.ts"

const legal: Readonly<Record<JobStatus, ReadonlyArray<JobStatus>>> = {
  submitted: ["deploying", "aborted"],
  deploying: ["starting", "failed", "aborted"],
  starting: ["running", "failed", "aborted"],
  running: ["paused", "completed", "failed", "aborted"],
  paused: ["running", "failed", "aborted"],
  completed: [],
  failed: [],
  aborted: [],
}

/**
 * The states a job in `from` may move to (none for a terminal state).
 *
 * @since 0.1.0
 * @category accessors
 */
export const next = (from: JobStatus): ReadonlyArray<JobStatus> => legal[from]

/**
 * Whether `from → to` is a legal move.
 *
 * @since 0.1.0
 * @category predicates
 */
export const canTransition = (from: JobStatus, to: JobStatus): boolean => legal[from].includes(to)

/**
 * Moves a job from `from` to `to` for `reason`: the `JobTransitioned` event
 * to publish, or `IllegalTransition { from, to }` (staying in a state is not
 * a move either).
 *
 * @example
 * ```ts
 * import { JobState } from "@fedguard/job-lifecycle"
 * JobState.transition("aborted", "running", "resume") // Failure(IllegalTransition)
 * JobState.transition("running", "paused", "operator") // Success(JobTransitioned)
 * ```
 *
 * @since 0.1.0
 * @category transitions
 */
export const transition = (
  from: JobStatus,
  to: JobStatus,
  reason: string,
): Result.Result<JobTransitioned, IllegalTransition> =>
  canTransition(from, to)
    ? Result.succeed(new JobTransitioned({ from, to, reason }))
    : Result.fail(new IllegalTransition({ from, to }))
