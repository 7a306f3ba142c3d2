/**
 * Opening the supervisor's state file with `node:sqlite` without damaging a
 * file that is not ours, and the transaction helper; the same approach as
 * the job store of `@fedguard/job-lifecycle` (packages stay independent, so
 * it is not imported). Synchronous: `SupervisorStore` wraps every call.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs"
import { DatabaseSync } from "node:sqlite"
import { Result } from "effect"
import { APPLICATION_ID, latestVersion, migrations } from "./storeSchema.ts"

export type Refusal =
  | { readonly _tag: "NotAStateFile"; readonly reason: string }
  | { readonly _tag: "TooNew"; readonly version: number }

const MAGIC = "SQLite format 3\u0000"

const pragmaNumber = (db: DatabaseSync, name: string): number => {
  const row = db.prepare(`PRAGMA ${name}`).get() as Record<string, number> | undefined
  return row?.[name] ?? 0
}

const headerProblem = (path: string): string | undefined => {
  const size = statSync(path).size
  if (size === 0) return undefined
  if (size < 100) return `not a SQLite database (${size} bytes, shorter than a SQLite header)`
  const header = new Uint8Array(MAGIC.length)
  const fd = openSync(path, "r")
  try {
    readSync(fd, header, 0, header.length, 0)
  } finally {
    closeSync(fd)
  }
  return new TextDecoder("latin1").decode(header) === MAGIC ? undefined : "not a SQLite database (no SQLite header)"
}

/** Reads an existing file's identity on a read-only connection, so a refused file is never written. */
const probe = (path: string): Result.Result<void, Refusal> => {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const applicationId = pragmaNumber(db, "application_id")
    const objects = (db.prepare("SELECT count(*) AS n FROM sqlite_schema").get() as { n: number }).n
    if (applicationId !== APPLICATION_ID && (applicationId !== 0 || objects > 0)) {
      return Result.fail({
        _tag: "NotAStateFile",
        reason: `a SQLite database of another application (application_id 0x${(applicationId >>> 0).toString(16)}, ${objects} schema objects)`,
      })
    }
    const version = pragmaNumber(db, "user_version")
    return version > latestVersion ? Result.fail({ _tag: "TooNew", version }) : Result.succeed(undefined)
  } catch (cause) {
    return Result.fail({ _tag: "NotAStateFile", reason: `unreadable SQLite database (${String(cause)})` })
  } finally {
    db.close()
  }
}

/** Runs `body` in a `BEGIN IMMEDIATE` transaction; commits on success, rolls back on a failure or a throw. */
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

/** Opens (creating if absent) and migrates a state file, or refuses it untouched. */
export const open = (path: string, busyTimeoutMs: number): Result.Result<DatabaseSync, Refusal> => {
  if (path !== ":memory:" && existsSync(path)) {
    const problem = headerProblem(path)
    if (problem !== undefined) return Result.fail({ _tag: "NotAStateFile", reason: problem })
    if (statSync(path).size > 0) {
      const probed = probe(path)
      if (Result.isFailure(probed)) return Result.fail(probed.failure)
    }
  }
  const db = new DatabaseSync(path, { timeout: busyTimeoutMs })
  try {
    db.exec("PRAGMA journal_mode = WAL")
    db.exec("PRAGMA synchronous = FULL")
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
