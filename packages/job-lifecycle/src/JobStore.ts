/**
 * Where a federated job survives its server: the job, its state history, one
 * record per committed round with the global model of the last rounds, and
 * per-client records. A restarted server reads `latest` and resumes from the
 * last committed round instead of round 0.
 *
 * The service interface names no SQL, so a server-grade database (PostgreSQL)
 * can implement it; this module ships the SQLite implementation on
 * `node:sqlite` (`layerSqlite`: one file, WAL, versioned migrations, refusing
 * any file that is not a fedguard state file) and its in-memory variant
 * (`layerMemory`).
 *
 * The one guarantee a resume depends on: `commitRound` writes the round
 * record and its model checkpoint in ONE transaction, exactly once. After a
 * crash at any instant the file holds either both or neither.
 *
 * @since 0.1.0
 */
import { createHash } from "node:crypto"
import { Clock, Context, Duration, Effect, Layer, Option, Random, Result, Schema, type Scope } from "effect"
import * as Sqlite from "./internal/sqlite.ts"
import { latestVersion } from "./internal/sqliteSchema.ts"
import { type CheckpointRow, type JobRow, prepareStatements } from "./internal/sqliteStatements.ts"
import { isTerminal, type JobStatus } from "./JobStatus.ts"

// ---------------------------------------------------------------------------
// errors
// ---------------------------------------------------------------------------

/**
 * The file at `path` is not a fedguard state file: not SQLite at all (a text
 * file, random bytes), unreadable SQLite, or another application's SQLite
 * database. The store refuses to open it and leaves it byte-identical; point
 * `path` at another file or move this one away.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotAStateFile extends Schema.TaggedError<NotAStateFile>()("NotAStateFile", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.path} is not a fedguard state file: ${this.reason}; it was left untouched`
  }
}

/**
 * The state file was written by a newer fedguard (schema `version`, this
 * build knows up to `supported`). Refused rather than read with a schema
 * this build does not know; the file is left untouched.
 *
 * @since 0.1.0
 * @category errors
 */
export class StateFileTooNew extends Schema.TaggedError<StateFileTooNew>()("StateFileTooNew", {
  path: Schema.String,
  version: Schema.Number,
  supported: Schema.Number,
}) {
  override get message(): string {
    return `${this.path} has schema version ${this.version}; this build supports up to ${this.supported}`
  }
}

/**
 * The database failed an operation (I/O error, disk full, lock not obtained
 * within the busy timeout, a value that is not JSON). Nothing of the failed
 * operation is visible afterwards: every write is one transaction.
 *
 * @since 0.1.0
 * @category errors
 */
export class StoreFailure extends Schema.TaggedError<StoreFailure>()("StoreFailure", {
  path: Schema.String,
  operation: Schema.String,
  cause: Schema.Defect(),
}) {
  override get message(): string {
    return `job store ${this.path}: ${this.operation} failed: ${String(this.cause)}`
  }
}

/**
 * No job with this id in the store.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", {
  jobId: Schema.String,
}) {
  override get message(): string {
    return `no job ${this.jobId} in the job store`
  }
}

/**
 * `createJob` with an id that is already taken.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobAlreadyExists extends Schema.TaggedError<JobAlreadyExists>()("JobAlreadyExists", {
  jobId: Schema.String,
}) {
  override get message(): string {
    return `job ${this.jobId} already exists`
  }
}

/**
 * `commitRound` for a job that has already finished (`completed`, `failed`
 * or `aborted`, e.g. aborted by an operator while its round ran): the
 * round is not committed, and the store is unchanged. Checked in the
 * commit's transaction, so an abort and a commit never both win.
 *
 * @since 0.1.0
 * @category errors
 */
export class JobFinished extends Schema.TaggedError<JobFinished>()("JobFinished", {
  jobId: Schema.String,
  state: Schema.String,
}) {
  override get message(): string {
    return `job ${this.jobId} is ${this.state}: no round can be committed to it`
  }
}

/**
 * `commitRound` for a round at or below the job's last committed round
 * (`latestRound`): rounds commit once, in increasing order. The store is
 * unchanged; a caller retrying after an ambiguous failure treats this as
 * "already done".
 *
 * @since 0.1.0
 * @category errors
 */
export class RoundAlreadyCommitted extends Schema.TaggedError<RoundAlreadyCommitted>()("RoundAlreadyCommitted", {
  jobId: Schema.String,
  round: Schema.Number,
  latestRound: Schema.Number,
}) {
  override get message(): string {
    return `round ${this.round} of job ${this.jobId} is already committed (latest committed round: ${this.latestRound})`
  }
}

/**
 * `recordTransition(jobId, from, to)` while the job is not in `from` but in
 * `actual`: another writer moved it first. Nothing is recorded.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransitionConflict extends Schema.TaggedError<TransitionConflict>()("TransitionConflict", {
  jobId: Schema.String,
  expected: Schema.String,
  actual: Schema.String,
}) {
  override get message(): string {
    return `job ${this.jobId} is ${this.actual}, not ${this.expected}: transition not recorded`
  }
}

/**
 * A stored model does not hash to its stored sha256: the bytes were damaged
 * at rest. Resume from an older retained checkpoint (`checkpoint`) instead.
 *
 * @since 0.1.0
 * @category errors
 */
export class CheckpointCorrupt extends Schema.TaggedError<CheckpointCorrupt>()("CheckpointCorrupt", {
  jobId: Schema.String,
  round: Schema.Number,
  expectedSha256: Schema.String,
  actualSha256: Schema.String,
}) {
  override get message(): string {
    return `checkpoint of job ${this.jobId} round ${this.round} is corrupt (sha256 ${this.actualSha256}, stored ${this.expectedSha256})`
  }
}

// ---------------------------------------------------------------------------
// models
// ---------------------------------------------------------------------------

/**
 * What `createJob` needs of a job spec: a name. The whole spec is stored as
 * JSON and read back as `unknown` (decode it with the spec's Schema).
 *
 * @since 0.1.0
 * @category models
 */
export interface SpecLike {
  readonly name: string
}

/**
 * A stored job. Times are epoch milliseconds of the store's `Clock`;
 * `roundsDone` counts committed rounds, `latestRound` is the last one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job {
  readonly id: string
  readonly name: string
  readonly spec: unknown
  readonly state: string
  readonly createdAt: number
  readonly updatedAt: number
  readonly roundsDone: number
  readonly latestRound: number | undefined
}

/**
 * One entry of a job's state history; `from` is `undefined` for the entry
 * `createJob` writes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transition {
  readonly from: string | undefined
  readonly to: string
  readonly reason: string
  readonly at: number
}

/**
 * A committed round's record (JSON, read back as `unknown`).
 *
 * @since 0.1.0
 * @category models
 */
export interface RoundRecord {
  readonly round: number
  readonly record: unknown
  readonly committedAt: number
}

/**
 * A committed round with its global model: the float32 bytes and their
 * sha256 (hex), verified on read.
 *
 * @since 0.1.0
 * @category models
 */
export interface Checkpoint extends RoundRecord {
  readonly model: Uint8Array
  readonly sha256: string
}

/**
 * What `commitRound` writes.
 *
 * @since 0.1.0
 * @category models
 */
export interface RoundCommit {
  readonly round: number
  readonly record: unknown
  readonly model: Uint8Array
}

/**
 * A client's record within a job (JSON, read back as `unknown`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientRecord {
  readonly clientId: string
  readonly record: unknown
  readonly updatedAt: number
}

/**
 * Options of `createJob`: the job's id (default: a random `job-…` id) and
 * its initial state (default `"submitted"`).
 *
 * @since 0.1.0
 * @category models
 */
export interface CreateOptions {
  readonly jobId?: string | undefined
  readonly state?: string | undefined
}

// ---------------------------------------------------------------------------
// service
// ---------------------------------------------------------------------------

/**
 * The job store:
 *
 * - `createJob(spec, options?)`: stores a new job in its initial state and
 *   the first history entry; returns its id.
 * - `job(jobId)` / `jobs`: a job / all jobs, with state and rounds done.
 * - `recordTransition(jobId, from, to, reason)`: moves the job from `from` to
 *   `to` and appends the history entry, atomically; fails with
 *   `TransitionConflict` if the job is not in `from`.
 * - `history(jobId)`: the state history, oldest first.
 * - `commitRound(jobId, { round, record, model })`: the round record and the
 *   model checkpoint in one transaction, exactly once (`JobFinished` for a
 *   job that is `completed`, `failed` or `aborted`); checkpoints older
 *   than the last `keepCheckpoints` rounds are pruned in the same
 *   transaction (round records are kept).
 * - `latest(jobId)`: the last committed round with its model, to resume
 *   from (`None` before the first commit); `checkpoint(jobId, round)`: a
 *   retained older one; `rounds(jobId)`: every round record.
 * - `upsertClient(jobId, clientId, record)` / `clients(jobId)`.
 * - `close`: closes the database (also done when the layer's Scope closes).
 *
 * @since 0.1.0
 * @category services
 */
export class JobStore extends Context.Service<
  JobStore,
  {
    readonly createJob: (
      spec: SpecLike,
      options?: CreateOptions,
    ) => Effect.Effect<string, JobAlreadyExists | StoreFailure>
    readonly job: (jobId: string) => Effect.Effect<Job, JobNotFound | StoreFailure>
    readonly jobs: Effect.Effect<ReadonlyArray<Job>, StoreFailure>
    readonly recordTransition: (
      jobId: string,
      from: string,
      to: string,
      reason: string,
    ) => Effect.Effect<void, JobNotFound | TransitionConflict | StoreFailure>
    readonly history: (jobId: string) => Effect.Effect<ReadonlyArray<Transition>, JobNotFound | StoreFailure>
    readonly commitRound: (
      jobId: string,
      commit: RoundCommit,
    ) => Effect.Effect<void, JobNotFound | JobFinished | RoundAlreadyCommitted | StoreFailure>
    readonly latest: (
      jobId: string,
    ) => Effect.Effect<Option.Option<Checkpoint>, JobNotFound | CheckpointCorrupt | StoreFailure>
    readonly checkpoint: (
      jobId: string,
      round: number,
    ) => Effect.Effect<Option.Option<Checkpoint>, JobNotFound | CheckpointCorrupt | StoreFailure>
    readonly rounds: (jobId: string) => Effect.Effect<ReadonlyArray<RoundRecord>, JobNotFound | StoreFailure>
    readonly upsertClient: (
      jobId: string,
      clientId: string,
      record: unknown,
    ) => Effect.Effect<void, JobNotFound | StoreFailure>
    readonly clients: (jobId: string) => Effect.Effect<ReadonlyArray<ClientRecord>, JobNotFound | StoreFailure>
    readonly close: Effect.Effect<void>
  }
>()("@fedguard/job-lifecycle/JobStore") {}

/**
 * Settings of the SQLite store:
 *
 * - `path`: the state file (default `./fedguard-state.db`); `":memory:"`
 *   keeps nothing after the process.
 * - `keepCheckpoints`: model checkpoints kept per job, the last K committed
 *   rounds (default 2, at least 1): the latest to resume from and one
 *   fallback.
 * - `synchronous`: `"full"` (default) syncs the WAL at every commit, so a
 *   committed round survives a power loss; `"normal"` survives a process
 *   crash but may lose the last commits on power loss, for faster commits.
 * - `busyTimeout`: how long a write waits for another process's lock
 *   (default 5 s).
 * - `checkpointPartBytes`: a model checkpoint is stored in parts of at most
 *   this many bytes (default 8 MiB, at most 512 MiB), because SQLite refuses
 *   a single blob of 1,000,000,000 bytes or more; it is read back whole and
 *   checked against its SHA-256. The parts also bound what a commit costs in
 *   memory: SQLite copies a bound blob and then builds its row from it, so a
 *   64 MiB model written as one blob added 128 MiB to the process for the
 *   length of the write, and in 8 MiB parts adds 16 MiB.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions {
  readonly path?: string | undefined
  readonly keepCheckpoints?: number | undefined
  readonly synchronous?: "full" | "normal" | undefined
  readonly busyTimeout?: Duration.Input | undefined
  readonly checkpointPartBytes?: number | undefined
}

/**
 * The defaults of `SqliteOptions`.
 *
 * @since 0.1.0
 * @category models
 */
export const defaults = {
  path: "./fedguard-state.db",
  keepCheckpoints: 2,
  synchronous: "full",
  busyTimeout: "5 seconds",
  checkpointPartBytes: 8 * 1024 * 1024,
} as const

// SQLite's default SQLITE_MAX_LENGTH is 1e9 bytes; half a GiB stays well below it.
const maxCheckpointPartBytes = 512 * 1024 * 1024

const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

const toJson = (value: unknown): string => {
  const json = JSON.stringify(value)
  if (json === undefined) throw new TypeError(`not representable as JSON: ${typeof value}`)
  return json
}

const toJob = (row: JobRow): Job => ({
  id: row.id,
  name: row.name,
  spec: JSON.parse(row.spec),
  state: row.state,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
  roundsDone: row.rounds_done,
  latestRound: row.latest_round ?? undefined,
})

const randomJobId = Effect.map(
  Effect.all([Random.nextIntBetween(0, 0xffffffff), Random.nextIntBetween(0, 0xffffffff)]),
  ([high, low]) => `job-${high.toString(16).padStart(8, "0")}${low.toString(16).padStart(8, "0")}`,
)

/**
 * Opens (creating and migrating if needed) the SQLite state file and builds
 * the store on it; the database closes with the current Scope. Fails with
 * `NotAStateFile` or `StateFileTooNew` for a file it must not touch.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSqlite: (
  options?: SqliteOptions,
) => Effect.Effect<JobStore["Service"], NotAStateFile | StateFileTooNew | StoreFailure, Scope.Scope> =
  Effect.fnUntraced(function* (options: SqliteOptions = {}) {
    const path = options.path ?? defaults.path
    const keep = Math.max(1, Math.floor(options.keepCheckpoints ?? defaults.keepCheckpoints))
    const partBytes = Math.min(
      maxCheckpointPartBytes,
      Math.max(1, Math.floor(options.checkpointPartBytes ?? defaults.checkpointPartBytes)),
    )
    const opened = yield* Effect.try({
      try: () =>
        Sqlite.open(path, {
          synchronous: options.synchronous ?? defaults.synchronous,
          busyTimeoutMs: Duration.toMillis(Duration.fromInputUnsafe(options.busyTimeout ?? defaults.busyTimeout)),
        }),
      catch: (cause) => new StoreFailure({ path, operation: "open", cause }),
    })
    if (Result.isFailure(opened)) {
      const refusal = opened.failure
      return yield* refusal._tag === "TooNew"
        ? new StateFileTooNew({ path, version: refusal.version, supported: latestVersion })
        : new NotAStateFile({ path, reason: refusal.reason })
    }
    const db = opened.success
    const close = Effect.sync(() => {
      if (db.isOpen) db.close()
    })
    yield* Effect.addFinalizer(() => close)
    const statements = yield* Effect.try({
      try: () => prepareStatements(db),
      catch: (cause) => new StoreFailure({ path, operation: "prepare", cause }),
    })

    /** A read or a write transaction, with SQLite's exceptions typed. */
    const run = <A, E>(operation: string, body: () => Result.Result<A, E>, write = true) =>
      Effect.try({
        try: () => (write ? Sqlite.transaction(db, body) : body()),
        catch: (cause) => new StoreFailure({ path, operation, cause }),
      }).pipe(Effect.flatMap(Effect.fromResult))

    const exists = (jobId: string) => statements.jobExists.get(jobId) !== undefined

    // The first part is the checkpoint row's own blob; any further parts follow in order.
    const wholeModel = (jobId: string, row: CheckpointRow): Uint8Array => {
      const rest = statements.checkpointParts.all(jobId, row.round) as Array<{ bytes: Uint8Array }>
      if (rest.length === 0) return row.model
      let length = row.model.byteLength
      for (const part of rest) length += part.bytes.byteLength
      const model = new Uint8Array(length)
      model.set(row.model, 0)
      let offset = row.model.byteLength
      for (const part of rest) {
        model.set(part.bytes, offset)
        offset += part.bytes.byteLength
      }
      return model
    }

    const rowToCheckpoint = (jobId: string, row: CheckpointRow): Result.Result<Checkpoint, CheckpointCorrupt> => {
      const model = wholeModel(jobId, row)
      const actual = sha256Hex(model)
      return actual === row.sha256
        ? Result.succeed({
            round: row.round,
            record: JSON.parse(row.record),
            committedAt: row.committed_at,
            model,
            sha256: row.sha256,
          })
        : Result.fail(
            new CheckpointCorrupt({ jobId, round: row.round, expectedSha256: row.sha256, actualSha256: actual }),
          )
    }

    const readCheckpoint = (
      jobId: string,
      row: CheckpointRow | undefined,
    ): Result.Result<Option.Option<Checkpoint>, JobNotFound | CheckpointCorrupt> =>
      !exists(jobId)
        ? Result.fail(new JobNotFound({ jobId }))
        : row === undefined
          ? Result.succeed(Option.none<Checkpoint>())
          : Result.map(rowToCheckpoint(jobId, row), Option.some)

    const createJob = Effect.fn("JobStore.createJob")(function* (spec: SpecLike, createOptions: CreateOptions = {}) {
      const jobId = createOptions.jobId ?? (yield* randomJobId)
      const state = createOptions.state ?? "submitted"
      const now = yield* Clock.currentTimeMillis
      return yield* run("createJob", () => {
        if (exists(jobId)) return Result.fail(new JobAlreadyExists({ jobId }))
        statements.insertJob.run(jobId, spec.name, toJson(spec), state, now, now)
        statements.insertTransition.run(jobId, null, state, "created", now)
        return Result.succeed(jobId)
      })
    })

    const job = Effect.fn("JobStore.job")(function* (jobId: string) {
      return yield* run(
        "job",
        () => {
          const row = statements.job.get(jobId) as JobRow | undefined
          return row === undefined ? Result.fail(new JobNotFound({ jobId })) : Result.succeed(toJob(row))
        },
        false,
      )
    })

    const jobs = run(
      "jobs",
      () => Result.succeed((statements.jobs.all() as unknown as Array<JobRow>).map(toJob)),
      false,
    ).pipe(Effect.withSpan("JobStore.jobs"))

    const recordTransition = Effect.fn("JobStore.recordTransition")(function* (
      jobId: string,
      from: string,
      to: string,
      reason: string,
    ) {
      const now = yield* Clock.currentTimeMillis
      return yield* run("recordTransition", (): Result.Result<void, JobNotFound | TransitionConflict> => {
        const row = statements.jobState.get(jobId) as { state: string } | undefined
        if (row === undefined) return Result.fail(new JobNotFound({ jobId }))
        if (row.state !== from) return Result.fail(new TransitionConflict({ jobId, expected: from, actual: row.state }))
        statements.setState.run(to, now, jobId)
        statements.insertTransition.run(jobId, from, to, reason, now)
        return Result.succeed(undefined)
      })
    })

    const history = Effect.fn("JobStore.history")(function* (jobId: string) {
      return yield* run(
        "history",
        () =>
          !exists(jobId)
            ? Result.fail(new JobNotFound({ jobId }))
            : Result.succeed(
                (
                  statements.history.all(jobId) as Array<{
                    from_state: string | null
                    to_state: string
                    reason: string
                    at: number
                  }>
                ).map(
                  (row): Transition => ({
                    from: row.from_state ?? undefined,
                    to: row.to_state,
                    reason: row.reason,
                    at: row.at,
                  }),
                ),
              ),
        false,
      )
    })

    const commitRound = Effect.fn("JobStore.commitRound")(function* (jobId: string, commit: RoundCommit) {
      const now = yield* Clock.currentTimeMillis
      // Hashed and serialized before the transaction: the write lock is held
      // only for the writes themselves.
      const sha256 = sha256Hex(commit.model)
      const record = yield* Effect.try({
        try: () => toJson(commit.record),
        catch: (cause) => new StoreFailure({ path, operation: "commitRound", cause }),
      })
      return yield* run("commitRound", (): Result.Result<void, JobNotFound | JobFinished | RoundAlreadyCommitted> => {
        const job = statements.jobState.get(jobId) as { state: string } | undefined
        if (job === undefined) return Result.fail(new JobNotFound({ jobId }))
        if (isTerminal(job.state as JobStatus)) return Result.fail(new JobFinished({ jobId, state: job.state }))
        const latest = (statements.latestRound.get(jobId) as { round: number | null }).round
        if (latest !== null && commit.round <= latest) {
          return Result.fail(new RoundAlreadyCommitted({ jobId, round: commit.round, latestRound: latest }))
        }
        statements.insertRound.run(jobId, commit.round, record, now)
        const model = commit.model
        statements.insertCheckpoint.run(jobId, commit.round, model.subarray(0, partBytes), sha256)
        for (let part = 1; part * partBytes < model.byteLength; part++) {
          statements.insertCheckpointPart.run(
            jobId,
            commit.round,
            part,
            model.subarray(part * partBytes, (part + 1) * partBytes),
          )
        }
        statements.pruneCheckpoints.run(jobId, keep)
        statements.touchJob.run(now, jobId)
        return Result.succeed(undefined)
      })
    })

    const latest = Effect.fn("JobStore.latest")(function* (jobId: string) {
      return yield* run(
        "latest",
        () => readCheckpoint(jobId, statements.latestCheckpoint.get(jobId) as CheckpointRow | undefined),
        false,
      )
    })

    const checkpoint = Effect.fn("JobStore.checkpoint")(function* (jobId: string, round: number) {
      return yield* run(
        "checkpoint",
        () => readCheckpoint(jobId, statements.checkpoint.get(jobId, round) as CheckpointRow | undefined),
        false,
      )
    })

    const rounds = Effect.fn("JobStore.rounds")(function* (jobId: string) {
      return yield* run(
        "rounds",
        () =>
          !exists(jobId)
            ? Result.fail(new JobNotFound({ jobId }))
            : Result.succeed(
                (statements.rounds.all(jobId) as Array<{ round: number; record: string; committed_at: number }>).map(
                  (row): RoundRecord => ({
                    round: row.round,
                    record: JSON.parse(row.record),
                    committedAt: row.committed_at,
                  }),
                ),
              ),
        false,
      )
    })

    const upsertClient = Effect.fn("JobStore.upsertClient")(function* (
      jobId: string,
      clientId: string,
      record: unknown,
    ) {
      const now = yield* Clock.currentTimeMillis
      return yield* run("upsertClient", (): Result.Result<void, JobNotFound> => {
        if (!exists(jobId)) return Result.fail(new JobNotFound({ jobId }))
        statements.upsertClient.run(jobId, clientId, toJson(record), now)
        return Result.succeed(undefined)
      })
    })

    const clients = Effect.fn("JobStore.clients")(function* (jobId: string) {
      return yield* run(
        "clients",
        () =>
          !exists(jobId)
            ? Result.fail(new JobNotFound({ jobId }))
            : Result.succeed(
                (statements.clients.all(jobId) as Array<{ client_id: string; record: string; updated_at: number }>).map(
                  (row): ClientRecord => ({
                    clientId: row.client_id,
                    record: JSON.parse(row.record),
                    updatedAt: row.updated_at,
                  }),
                ),
              ),
        false,
      )
    })

    return JobStore.of({
      createJob,
      job,
      jobs,
      recordTransition,
      history,
      commitRound,
      latest,
      checkpoint,
      rounds,
      upsertClient,
      clients,
      close,
    })
  })

/**
 * The store on a SQLite state file (see `SqliteOptions` for the defaults).
 *
 * @example
 * ```ts
 * import { JobStore } from "@fedguard/job-lifecycle"
 * const StoreLive = JobStore.layerSqlite({ path: "/var/lib/fedguard/state.db" })
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (
  options: SqliteOptions = {},
): Layer.Layer<JobStore, NotAStateFile | StateFileTooNew | StoreFailure> => Layer.effect(JobStore, makeSqlite(options))

/**
 * The store in memory (SQLite `":memory:"`): the same behaviour, nothing
 * kept after the Scope closes. For tests and for runs that opt out of
 * resume.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (
  options: Omit<SqliteOptions, "path"> = {},
): Layer.Layer<JobStore, NotAStateFile | StateFileTooNew | StoreFailure> =>
  layerSqlite({ ...options, path: ":memory:" })
