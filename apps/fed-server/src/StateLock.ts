/**
 * One server per state file. `<state>.lock` is a small SQLite database whose
 * write lock the server holds for as long as it runs (`BEGIN IMMEDIATE`,
 * never committed; a second server waits 2 s for it, then is refused): the
 * lock is the operating system's file lock, so it is
 * released by the kernel when the server exits, however it exits (`kill -9`
 * included), and two servers can never both hold it — no stale pid to take
 * over, no race between two servers starting at once. A second server is
 * refused with `StateInUse`, naming the pid the holder wrote there.
 *
 * The lock file is left in place (deleting it while another server opens it
 * would let two servers lock two different files); it holds one row.
 *
 * Limit: file locks on network file systems are only as reliable as the
 * file system's own locking.
 *
 * @since 0.3.0
 */

import { accessSync, constants, existsSync } from "node:fs"
import { DatabaseSync } from "node:sqlite"
import { Effect, Schema } from "effect"

/**
 * Another running server holds the state file's lock (`pid` 0 when it had
 * not written its pid yet).
 *
 * @since 0.3.0
 * @category errors
 */
export class StateInUse extends Schema.TaggedError<StateInUse>()("StateInUse", {
  path: Schema.String,
  pid: Schema.Number,
}) {
  override get message(): string {
    return `${this.path} is in use by another fed-server${this.pid > 0 ? ` (pid ${this.pid})` : ""}; stop it, or use another --state file`
  }
}

/**
 * The lock file could not be opened or created (its directory is missing
 * or not writable, or it is not a lock file).
 *
 * @since 0.3.0
 * @category errors
 */
export class StateLockFailed extends Schema.TaggedError<StateLockFailed>()("StateLockFailed", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot lock ${this.path}: ${this.reason}`
  }
}

const isBusy = (error: unknown): boolean => /database is locked|SQLITE_BUSY/i.test(String(error))

const holderPid = (db: DatabaseSync): number => {
  try {
    const row = db.prepare("SELECT pid FROM holder WHERE id = 1").get() as { pid: number } | undefined
    return row?.pid ?? 0
  } catch {
    return 0
  }
}

type Locked = { readonly _tag: "Locked"; readonly db: DatabaseSync } | { readonly _tag: "Busy"; readonly pid: number }

// Takes the write lock, writes this pid (committed, so a refused server can name us), and takes the
// lock again at once; a server that slips in between wins, and this one is refused. Each step waits
// up to `busyMs` for the lock (two servers starting at once briefly block each other even when
// neither holds it yet), so a refusal takes that long.
const busyMs = 2_000

const lock = (lockPath: string): Locked => {
  const db = new DatabaseSync(lockPath, { timeout: busyMs })
  try {
    db.exec("CREATE TABLE IF NOT EXISTS holder (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL)")
    db.exec("BEGIN IMMEDIATE")
    db.prepare("INSERT OR REPLACE INTO holder (id, pid) VALUES (1, ?)").run(process.pid)
    db.exec("COMMIT")
    db.exec("BEGIN IMMEDIATE")
    return { _tag: "Locked", db }
  } catch (error) {
    if (db.isTransaction) db.exec("ROLLBACK")
    const pid = holderPid(db)
    db.close()
    if (isBusy(error)) return { _tag: "Busy", pid }
    throw error
  }
}

/**
 * Holds the lock of the state file at `path` for the current Scope (nothing
 * for `:memory:`); fails with `StateInUse` when another server holds it, or
 * `StateLockFailed` when the lock file cannot be opened.
 *
 * @since 0.3.0
 * @category locking
 */
export const acquire = (path: string) =>
  path === ":memory:"
    ? Effect.void
    : Effect.acquireRelease(
        Effect.gen(function* () {
          const lockPath = `${path}.lock`
          const locked = yield* Effect.try({
            try: () => lock(lockPath),
            catch: (error) =>
              new StateLockFailed({ path: lockPath, reason: error instanceof Error ? error.message : String(error) }),
          })
          if (locked._tag === "Busy") return yield* new StateInUse({ path, pid: locked.pid })
          return locked.db
        }),
        (db) =>
          Effect.sync(() => {
            db.exec("ROLLBACK")
            db.close()
          }),
      )

/**
 * Checks that the state file at `path` (when it exists; nothing for
 * `:memory:`) can be written, before anything listens: a read-only state
 * file would otherwise be found out only at the first commit, after a whole
 * round.
 *
 * @since 0.3.0
 * @category locking
 */
export const checkWritable = (path: string) =>
  Effect.try({
    try: () => {
      if (path !== ":memory:" && existsSync(path)) accessSync(path, constants.R_OK | constants.W_OK)
    },
    catch: () => new StateLockFailed({ path, reason: "the state file is not writable by this user" }),
  })
