/**
 * `fed-server jobs | abort | report`: the state file (`--state`, default
 * `./fedguard-state.db`, or `FED_SERVER_STATE`) read and changed without a
 * running server.
 *
 * - `jobs`: one line per job: id, name, state, rounds committed of the
 *   rounds asked for, last change (`--json` for a JSON array);
 * - `abort JOB`: moves a job that is not finished to `aborted`, so that no
 *   server ever resumes it (a server running it stops before its next
 *   round); a finished job is refused;
 * - `report JOB`: the job's report from the store alone, finished or not (a
 *   server killed mid-run no longer loses its report), to stdout or `--out`.
 *
 * A state file that does not exist (or is empty) is an error, never
 * created.
 *
 * @since 0.3.0
 */

import { JobState, type JobStatus, JobStore } from "@fedguard/job-lifecycle"
import { Console, Effect, FileSystem, Option, Schema } from "effect"
import { Argument, Command, Flag } from "effect/cli"
import * as JobRecord from "./JobRecord.ts"

/**
 * A job command failed: the state file is missing or not a state file, the
 * job does not exist, or the move is not allowed (aborting a finished job).
 * Exit code 1.
 *
 * @since 0.3.0
 * @category errors
 */
export class JobCommandFailed extends Schema.TaggedError<JobCommandFailed>()("JobCommandFailed", {
  reason: Schema.String,
}) {
  override get message(): string {
    return this.reason
  }
}

const state = Flag.String("state").pipe(
  Flag.withDescription("The state file (default ./fedguard-state.db) [env FED_SERVER_STATE]"),
  Flag.withDefault(process.env.FED_SERVER_STATE ?? "./fedguard-state.db"),
)

const jobId = Argument.String("job").pipe(Argument.withDescription("The job's id (see fed-server jobs)"))

// Opens the state file for the duration of `use`; a missing file is refused rather than created.
const withStore = <A, E extends { readonly message: string }, R>(path: string, use: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    if (path !== ":memory:") {
      if (!(yield* fs.exists(path).pipe(Effect.orElseSucceed(() => false)))) {
        return yield* new JobCommandFailed({ reason: `no state file at ${path} (pass --state PATH)` })
      }
      // An empty file would become a new state file on open: these commands never create one.
      const info = yield* fs.stat(path).pipe(Effect.option)
      if (Option.isSome(info) && Number(info.value.size) === 0) {
        return yield* new JobCommandFailed({ reason: `${path} is empty: not a fedguard state file` })
      }
    }
    return yield* use.pipe(Effect.provide(JobStore.layerSqlite({ path })))
  }).pipe(
    Effect.mapError((error) =>
      error instanceof JobCommandFailed
        ? error
        : new JobCommandFailed({
            reason: error instanceof JobStore.JobNotFound ? `${error.message} at ${path}` : error.message,
          }),
    ),
  )

// The rounds the job asked for; null when its spec was not written by fed-server.
const roundsAsked = (spec: unknown): number | null =>
  Option.match(Schema.decodeUnknownOption(JobRecord.StoredSpec)(spec), {
    onNone: () => null,
    onSome: (stored) => stored.identity.rounds,
  })

const table = (rows: ReadonlyArray<ReadonlyArray<string>>): string => {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  return rows
    .map((row) =>
      row
        .map((cell, column) => cell.padEnd(widths[column]!))
        .join("  ")
        .trimEnd(),
    )
    .join("\n")
}

/**
 * `fed-server jobs`.
 *
 * @since 0.3.0
 * @category commands
 */
export const jobs = Command.make(
  "jobs",
  {
    state,
    json: Flag.Boolean("json").pipe(Flag.withDescription("Print the jobs as a JSON array"), Flag.withDefault(false)),
  },
  (input) =>
    withStore(
      input.state,
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        const all = yield* store.jobs
        const rows = all.map((job) => ({
          id: job.id,
          name: job.name,
          state: job.state,
          roundsDone: job.roundsDone,
          rounds: roundsAsked(job.spec),
          updatedAt: new Date(job.updatedAt).toISOString(),
        }))
        if (input.json) return yield* Console.log(JSON.stringify(rows))
        if (rows.length === 0) return yield* Console.log(`no jobs in ${input.state}`)
        yield* Console.log(
          table([
            ["JOB", "NAME", "STATE", "ROUNDS", "UPDATED"],
            ...rows.map((row) => [
              row.id,
              row.name,
              row.state,
              `${row.roundsDone}/${row.rounds ?? "?"}`,
              row.updatedAt,
            ]),
          ]),
        )
      }),
    ),
).pipe(Command.withDescription("List the jobs of a state file: state and rounds committed"))

/**
 * `fed-server abort JOB`.
 *
 * @since 0.3.0
 * @category commands
 */
export const abort = Command.make(
  "abort",
  {
    state,
    job: jobId,
    reason: Flag.String("reason").pipe(
      Flag.withDescription("Why, recorded in the job's history"),
      Flag.withDefault("aborted by an operator (fed-server abort)"),
    ),
  },
  (input) =>
    withStore(
      input.state,
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        const job = yield* store.job(input.job)
        if (!JobState.canTransition(job.state as JobStatus.JobStatus, "aborted")) {
          return yield* new JobCommandFailed({
            reason: `job ${job.id} is ${job.state}: only a job that has not finished can be aborted`,
          })
        }
        yield* store
          .recordTransition(job.id, job.state, "aborted", input.reason)
          .pipe(
            Effect.catchTag("TransitionConflict", (error) =>
              Effect.fail(new JobCommandFailed({ reason: `job ${job.id} changed meanwhile: ${error.message}` })),
            ),
          )
        yield* Console.log(`job ${job.id} (${job.name}): ${job.state} → aborted after ${job.roundsDone} round(s)`)
      }),
    ),
).pipe(Command.withDescription("Abort a job that has not finished, so that no server resumes it"))

/**
 * `fed-server report JOB`.
 *
 * @since 0.3.0
 * @category commands
 */
export const report = Command.make(
  "report",
  {
    state,
    job: jobId,
    out: Flag.String("out").pipe(
      Flag.withDescription("Write the report to this file instead of stdout"),
      Flag.optional,
    ),
  },
  (input) =>
    withStore(
      input.state,
      Effect.gen(function* () {
        const { job, report } = yield* JobRecord.reportOf(input.job)
        const text = `${JSON.stringify({ job, ...Option.getOrElse(report, () => ({ rounds: [] })) }, null, 2)}\n`
        if (Option.isNone(input.out)) return yield* Console.log(text.trimEnd())
        const fs = yield* FileSystem.FileSystem
        yield* fs
          .writeFileString(input.out.value, text)
          .pipe(Effect.mapError((error) => new JobCommandFailed({ reason: `--out: ${error.message}` })))
        yield* Console.log(
          `report of job ${job.id} (${job.state}, ${job.roundsDone} round(s)) written to ${input.out.value}`,
        )
      }),
    ),
).pipe(Command.withDescription("Print the report of a job from the state file, finished or not"))
