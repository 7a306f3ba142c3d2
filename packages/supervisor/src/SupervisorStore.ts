/**
 * Where a supervisor's state survives the supervisor: each worker's spec,
 * current process (pid and procfs start time), start time and restart count;
 * each task's holder and completion. A supervisor that was itself killed
 * reads it back to adopt the workers still running and to resume the task
 * queue.
 *
 * The service names no SQL, so another database can implement it; this
 * module ships the `node:sqlite` implementation (`layerSqlite`: one file,
 * WAL, synchronous FULL, versioned migrations, refusing a file that is not a
 * supervisor state file) and `layerMemory`. Every write is one transaction.
 *
 * The invariants the resume depends on, enforced inside the transactions:
 * a task has one holder column (never two workers), and a completed task is
 * never assigned or completed again.
 *
 * @since 0.1.0
 */
import type { DatabaseSync, StatementSync } from "node:sqlite"
import { Clock, Context, Duration, Effect, Layer, Result, Schema, type Scope } from "effect"
import { open, transaction } from "./internal/sqlite.ts"
import { latestVersion } from "./internal/storeSchema.ts"
import { TaskAlreadyCompleted, TaskNotAssigned, UnknownTask } from "./SupervisorError.ts"

/**
 * The file at `path` is not a supervisor state file (not SQLite, or another
 * application's database); it was left untouched.
 *
 * @since 0.1.0
 * @category errors
 */
export class NotAStateFile extends Schema.TaggedError<NotAStateFile>()("NotAStateFile", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.path} is not a supervisor state file: ${this.reason}; it was left untouched`
  }
}

/**
 * The state file has a newer schema than this build knows; left untouched.
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
 * The database failed an operation (I/O, disk full, lock timeout); nothing of
 * it is visible afterwards.
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
    return `supervisor store ${this.path}: ${this.operation} failed: ${String(this.cause)}`
  }
}

/**
 * A worker as stored: its spec (JSON, read back as `unknown`), its current
 * process (`pid` and `startTimeTicks` from procfs, absent when not running),
 * when that started (`Clock` ms), and its restart count.
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredWorker {
  readonly id: string
  readonly spec: unknown
  readonly pid: number | undefined
  readonly startTimeTicks: number | undefined
  readonly startedAt: number | undefined
  readonly restarts: number
}

/**
 * A task as stored: `pending` (queued, no holder), `assigned` (to
 * `workerId`) or `completed` (by `completedBy`).
 *
 * @since 0.1.0
 * @category models
 */
export interface StoredTask {
  readonly id: string
  readonly state: "pending" | "assigned" | "completed"
  readonly workerId: string | undefined
  readonly completedBy: string | undefined
  readonly addedAt: number
}

/**
 * The store:
 *
 * - `workers` / `tasks`: everything stored, tasks in the order they were added.
 * - `recordStart(workerId, spec, process, restarts)`: the worker's current
 *   process; `recordExit(workerId, pid)` clears it (only if it is still that pid).
 * - `addTask(taskId)`: queues a task (pending); adding an existing id
 *   returns it unchanged, so a retried add is harmless.
 * - `assignTask(taskId, workerId)`: gives a pending or assigned task to a
 *   worker (the single holder column moves); fails `TaskAlreadyCompleted`.
 * - `moveTasks(from, to)`: every open task of `from` to `to` (or back to
 *   pending), in one transaction; returns their ids.
 * - `completeTask(taskId, workerId)`: only by the holder, only once.
 *
 * @since 0.1.0
 * @category services
 */
export class SupervisorStore extends Context.Service<
  SupervisorStore,
  {
    readonly workers: Effect.Effect<ReadonlyArray<StoredWorker>, StoreFailure>
    readonly recordStart: (
      workerId: string,
      spec: unknown,
      process: { readonly pid: number; readonly startTimeTicks: number | undefined; readonly startedAt: number },
      restarts: number,
    ) => Effect.Effect<void, StoreFailure>
    readonly recordExit: (workerId: string, pid: number) => Effect.Effect<void, StoreFailure>
    readonly tasks: Effect.Effect<ReadonlyArray<StoredTask>, StoreFailure>
    readonly addTask: (taskId: string) => Effect.Effect<StoredTask, StoreFailure>
    readonly assignTask: (
      taskId: string,
      workerId: string,
    ) => Effect.Effect<void, UnknownTask | TaskAlreadyCompleted | StoreFailure>
    readonly moveTasks: (from: string, to: string | undefined) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
    readonly completeTask: (
      taskId: string,
      workerId: string,
    ) => Effect.Effect<void, UnknownTask | TaskAlreadyCompleted | TaskNotAssigned | StoreFailure>
  }
>()("@fedguard/supervisor/SupervisorStore") {}

/**
 * Settings of the SQLite store: `path` (default
 * `./fedguard-supervisor.db`; `":memory:"` keeps nothing) and `busyTimeout`
 * (default 5 s), how long a write waits for another process's lock.
 *
 * @since 0.1.0
 * @category models
 */
export interface SqliteOptions {
  readonly path?: string | undefined
  readonly busyTimeout?: Duration.Input | undefined
}

interface WorkerRow {
  readonly id: string
  readonly spec: string
  readonly pid: number | null
  readonly start_ticks: number | null
  readonly started_at: number | null
  readonly restarts: number
}

interface TaskRow {
  readonly id: string
  readonly worker_id: string | null
  readonly completed_by: string | null
  readonly added_at: number
}

const toTask = (row: TaskRow): StoredTask => ({
  id: row.id,
  state: row.completed_by !== null ? "completed" : row.worker_id !== null ? "assigned" : "pending",
  workerId: row.worker_id ?? undefined,
  completedBy: row.completed_by ?? undefined,
  addedAt: row.added_at,
})

const prepare = (db: DatabaseSync) => ({
  workers: db.prepare("SELECT id, spec, pid, start_ticks, started_at, restarts FROM workers ORDER BY id"),
  upsertWorker: db.prepare(
    `INSERT INTO workers (id, spec, pid, start_ticks, started_at, restarts, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5)
     ON CONFLICT (id) DO UPDATE SET spec = excluded.spec, pid = excluded.pid, start_ticks = excluded.start_ticks,
       started_at = excluded.started_at, restarts = excluded.restarts, updated_at = excluded.updated_at`,
  ),
  clearPid: db.prepare("UPDATE workers SET pid = NULL, start_ticks = NULL, updated_at = ?3 WHERE id = ?1 AND pid = ?2"),
  tasks: db.prepare("SELECT id, worker_id, completed_by, added_at FROM tasks ORDER BY seq"),
  task: db.prepare("SELECT id, worker_id, completed_by, added_at FROM tasks WHERE id = ?"),
  insertTask: db.prepare(
    "INSERT INTO tasks (id, seq, added_at, updated_at) VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM tasks), ?2, ?2)",
  ),
  setHolder: db.prepare("UPDATE tasks SET worker_id = ?2, updated_at = ?3 WHERE id = ?1"),
  openOf: db.prepare("SELECT id FROM tasks WHERE worker_id = ? AND completed_by IS NULL ORDER BY seq"),
  moveOpen: db.prepare(
    "UPDATE tasks SET worker_id = ?2, updated_at = ?3 WHERE worker_id = ?1 AND completed_by IS NULL",
  ),
  complete: db.prepare("UPDATE tasks SET worker_id = NULL, completed_by = ?2, updated_at = ?3 WHERE id = ?1"),
})

/**
 * Opens (creating and migrating if needed) the state file and builds the
 * store on it; the database closes with the current Scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeSqlite: (
  options?: SqliteOptions,
) => Effect.Effect<SupervisorStore["Service"], NotAStateFile | StateFileTooNew | StoreFailure, Scope.Scope> =
  Effect.fnUntraced(function* (options: SqliteOptions = {}) {
    const path = options.path ?? "./fedguard-supervisor.db"
    const busyMs = Duration.toMillis(Duration.fromInputUnsafe(options.busyTimeout ?? "5 seconds"))
    const opened = yield* Effect.try({
      try: () => open(path, busyMs),
      catch: (cause) => new StoreFailure({ path, operation: "open", cause }),
    })
    if (Result.isFailure(opened)) {
      const refusal = opened.failure
      return yield* refusal._tag === "TooNew"
        ? new StateFileTooNew({ path, version: refusal.version, supported: latestVersion })
        : new NotAStateFile({ path, reason: refusal.reason })
    }
    const db = opened.success
    yield* Effect.addFinalizer(() =>
      Effect.sync(() => {
        if (db.isOpen) db.close()
      }),
    )
    const sql = yield* Effect.try({
      try: () => prepare(db),
      catch: (cause) => new StoreFailure({ path, operation: "prepare", cause }),
    })

    /** One read, or one write transaction, with SQLite's exceptions typed. */
    const run = <A, E>(operation: string, body: (now: number) => Result.Result<A, E>, write = true) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        Effect.flatMap(
          Effect.try({
            try: () => (write ? transaction(db, () => body(now)) : body(now)),
            catch: (cause) => new StoreFailure({ path, operation, cause }),
          }),
          Effect.fromResult,
        ),
      )

    const taskRow = (taskId: string) => sql.task.get(taskId) as TaskRow | undefined
    const all = <R>(statement: StatementSync, ...params: Array<string>) =>
      statement.all(...params) as unknown as Array<R>

    return SupervisorStore.of({
      workers: run(
        "workers",
        () =>
          Result.succeed(
            all<WorkerRow>(sql.workers).map(
              (row): StoredWorker => ({
                id: row.id,
                spec: JSON.parse(row.spec),
                pid: row.pid ?? undefined,
                startTimeTicks: row.start_ticks ?? undefined,
                startedAt: row.started_at ?? undefined,
                restarts: row.restarts,
              }),
            ),
          ),
        false,
      ),
      recordStart: (workerId, spec, proc, restarts) =>
        run("recordStart", () => {
          sql.upsertWorker.run(
            workerId,
            JSON.stringify(spec),
            proc.pid,
            proc.startTimeTicks ?? null,
            proc.startedAt,
            restarts,
          )
          return Result.succeed(undefined)
        }),
      recordExit: (workerId, pid) =>
        run("recordExit", (now) => {
          sql.clearPid.run(workerId, pid, now)
          return Result.succeed(undefined)
        }),
      tasks: run("tasks", () => Result.succeed(all<TaskRow>(sql.tasks).map(toTask)), false),
      addTask: (taskId) =>
        run("addTask", (now) => {
          if (taskRow(taskId) === undefined) sql.insertTask.run(taskId, now)
          return Result.succeed(toTask(taskRow(taskId) as TaskRow))
        }),
      assignTask: (taskId, workerId) =>
        run("assignTask", (now): Result.Result<void, UnknownTask | TaskAlreadyCompleted> => {
          const row = taskRow(taskId)
          if (row === undefined) return Result.fail(new UnknownTask({ taskId }))
          if (row.completed_by !== null) {
            return Result.fail(new TaskAlreadyCompleted({ taskId, completedBy: row.completed_by }))
          }
          sql.setHolder.run(taskId, workerId, now)
          return Result.succeed(undefined)
        }),
      moveTasks: (from, to) =>
        run("moveTasks", (now) => {
          const ids = all<{ id: string }>(sql.openOf, from).map((row) => row.id)
          sql.moveOpen.run(from, to ?? null, now)
          return Result.succeed(ids)
        }),
      completeTask: (taskId, workerId) =>
        run("completeTask", (now): Result.Result<void, UnknownTask | TaskAlreadyCompleted | TaskNotAssigned> => {
          const row = taskRow(taskId)
          if (row === undefined) return Result.fail(new UnknownTask({ taskId }))
          if (row.completed_by !== null) {
            return Result.fail(new TaskAlreadyCompleted({ taskId, completedBy: row.completed_by }))
          }
          if (row.worker_id !== workerId) {
            return Result.fail(new TaskNotAssigned({ taskId, workerId, assignedTo: row.worker_id ?? undefined }))
          }
          sql.complete.run(taskId, workerId, now)
          return Result.succeed(undefined)
        }),
    })
  })

/**
 * The store on a SQLite state file.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerSqlite = (
  options: SqliteOptions = {},
): Layer.Layer<SupervisorStore, NotAStateFile | StateFileTooNew | StoreFailure> =>
  Layer.effect(SupervisorStore, makeSqlite(options))

/**
 * The store in memory (SQLite `":memory:"`): same behaviour, nothing kept
 * after the Scope closes. For supervisors that opt out of resume, and tests.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory: Layer.Layer<SupervisorStore, NotAStateFile | StateFileTooNew | StoreFailure> = layerSqlite({
  path: ":memory:",
})
