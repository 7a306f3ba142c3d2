/**
 * Opening a state file with `node:sqlite` without ever damaging a file that
 * is not ours, and the transaction helper. Everything here is synchronous
 * (`DatabaseSync`); `JobStore` wraps each call in `Effect.try`, so an
 * unexpected SQLite error (I/O, disk full, locked) surfaces there as a typed
 * `StoreFailure`, and expected refusals come back as values.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs"
import { DatabaseSync } from "node:sqlite"
import { Result } from "effect"
import { APPLICATION_ID, latestVersion, migrations } from "./sqliteSchema.ts"

export type Refusal =
  | { readonly _tag: "NotAStateFile"; readonly reason: string }
  | { readonly _tag: "TooNew"; readonly version: number }

export interface OpenOptions {
  readonly synchronous: "full" | "normal"
  readonly busyTimeoutMs: number
}

const MAGIC = "SQLite format 3\u0000"
const HEADER_BYTES = 100

const isMemory = (path: string) => path === ":memory:"

/** Why the file's first bytes are not a SQLite header, if they are not. */
const headerProblem = (path: string): string | undefined => {
  const size = statSync(path).size
  if (size === 0) return undefined
  if (size < HEADER_BYTES) return `not a SQLite database (${size} bytes, shorter than a SQLite header)`
  const header = new Uint8Array(MAGIC.length)
  const fd = openSync(path, "r")
  try {
    readSync(fd, header, 0, header.length, 0)
  } finally {
    closeSync(fd)
  }
  return new TextDecoder("latin1").decode(header) === MAGIC ? undefined : "not a SQLite database (no SQLite header)"
}

const pragmaNumber = (db: DatabaseSync, name: string): number => {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number> | undefined
  return row?.[name] ?? 0
}

/**
 * Reads the identity of an existing SQLite file on a read-only connection, so
 * that nothing (not even a WAL checkpoint on close) can write to a file we
 * end up refusing.
 */
const probe = (path: string): Result.Result<void, Refusal> => {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const applicationId = pragmaNumber(db, "application_id")
    const version = pragmaNumber(db, "user_version")
    const objects = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n
    if (applicationId !== APPLICATION_ID && (applicationId !== 0 || objects > 0)) {
      return Result.fail({
        _tag: "NotAStateFile",
        reason:
          applicationId === 0
            ? `a SQLite database of another application (${objects} schema objects, no fedguard application_id)`
            : `a SQLite database of another application (application_id 0x${(applicationId >>> 0).toString(16)})`,
      })
    }
    if (version > latestVersion) return Result.fail({ _tag: "TooNew", version })
    return Result.succeed(undefined)
  } catch (cause) {
    return Result.fail({ _tag: "NotAStateFile", reason: `unreadable SQLite database (${String(cause)})` })
  } finally {
    db.close()
  }
}

/**
 * Runs `body` in a write transaction (`BEGIN IMMEDIATE`: the write lock is
 * taken up front, so two processes on one file queue on `busy_timeout`
 * instead of failing at their first write). Commits on success, rolls back
 * when `body` returns a failure or throws.
 */
export const transaction = <A, E>(db: DatabaseSync, body: () => Result.Result<A, E>): Result.Result<A, E> => {
  db.exec("BEGIN IMMEDIATE")
  try {
    const result = body()
    db.exec(Result.isFailure(result) ? "ROLLBACK" : "COMMIT")
    return result
  } catch (cause) {
    if (db.isTransaction) db.exec("ROLLBACK")
    throw cause
  }
}

const migrate = (db: DatabaseSync): Result.Result<void, Refusal> =>
  transaction(db, () => {
    const version = pragmaNumber(db, "user_version")
    if (version > latestVersion) return Result.fail<Refusal>({ _tag: "TooNew", version })
    for (const migration of migrations) {
      if (migration.version > version) db.exec(migration.sql)
    }
    if (version < latestVersion) db.exec(`PRAGMA user_version = ${latestVersion}`)
    if (pragmaNumber(db, "application_id") !== APPLICATION_ID) db.exec(`PRAGMA application_id = ${APPLICATION_ID}`)
    return Result.succeed(undefined)
  })

/**
 * Opens (creating if absent) and migrates a state file. Refuses, without
 * writing a byte, a file that is not SQLite, another application's SQLite
 * database, or one of a newer schema than this build knows.
 */
export const open = (path: string, options: OpenOptions): Result.Result<DatabaseSync, Refusal> => {
  if (!isMemory(path) && existsSync(path)) {
    const problem = headerProblem(path)
    if (problem !== undefined) return Result.fail({ _tag: "NotAStateFile", reason: problem })
    if (statSync(path).size > 0) {
      const probed = probe(path)
      if (Result.isFailure(probed)) return Result.fail(probed.failure)
    }
  }
  const db = new DatabaseSync(path, { timeout: options.busyTimeoutMs, enableForeignKeyConstraints: true })
  try {
    db.exec("PRAGMA journal_mode = WAL")
    db.exec(`PRAGMA synchronous = ${options.synchronous.toUpperCase()}`)
    db.exec("PRAGMA foreign_keys = ON")
    const migrated = migrate(db)
    if (Result.isFailure(migrated)) {
      db.close()
      return Result.fail(migrated.failure)
    }
    return Result.succeed(db)
  } catch (cause) {
    db.close()
    throw cause
  }
}
