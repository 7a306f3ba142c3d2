/**
 * One server per state file: `<state>.lock` holds the pid of the server
 * using it (as PostgreSQL's `postmaster.pid` does). A second server started
 * on the same file while the first runs is refused instead of resuming the
 * same job twice; a lock left by a server that was killed (its pid no longer
 * runs) is taken over, so a restart after `kill -9` needs nothing manual.
 * The lock is removed when the server's Scope closes.
 *
 * Limits: the pid check is local, so two machines sharing a state file over
 * a network file system are not detected; and a recycled pid of an unrelated
 * process makes a stale lock look held (delete the `.lock` file then).
 *
 * @since 0.3.0
 */

import { readFileSync, rmSync, writeFileSync } from "node:fs"
import { Effect, Schema } from "effect"

/**
 * Another live process holds the state file's lock.
 *
 * @since 0.3.0
 * @category errors
 */
export class StateInUse extends Schema.TaggedError<StateInUse>()("StateInUse", {
  path: Schema.String,
  pid: Schema.Number,
}) {
  override get message(): string {
    return `${this.path} is in use by another fed-server (pid ${this.pid}); stop it, or use another --state file (remove ${this.path}.lock if no such server runs)`
  }
}

/**
 * The lock file could not be written (its directory is missing or not
 * writable).
 *
 * @since 0.3.0
 * @category errors
 */
export class StateLockFailed extends Schema.TaggedError<StateLockFailed>()("StateLockFailed", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot write ${this.path}: ${this.reason}`
  }
}

// Alive: signal 0 reaches it, and on Linux it is not a zombie (killed, not yet reaped by its parent).
const running = (pid: number): boolean => {
  try {
    process.kill(pid, 0)
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8")
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z"
    } catch {
      return true
    }
  } catch (error) {
    // EPERM: the process exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

const holder = (lockPath: string): number | undefined => {
  try {
    const pid = Number.parseInt(readFileSync(lockPath, "utf8").trim(), 10)
    return Number.isInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

// Creates the lock file only if it does not exist (so two servers starting at once cannot both
// take it): `true` when created, `false` when it exists; other failures (a missing directory,
// no permission) are thrown.
const create = (lockPath: string): boolean => {
  try {
    writeFileSync(lockPath, `${process.pid}\n`, { flag: "wx" })
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") return false
    throw error
  }
}

/**
 * Takes the lock of the state file at `path` for the current Scope (nothing
 * for `:memory:`); fails with `StateInUse` when a running process holds it,
 * or `StateLockFailed` when the lock file cannot be written.
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
          const attempt = Effect.try({
            try: () => create(lockPath),
            catch: (error) => new StateLockFailed({ path: lockPath, reason: String(error) }),
          })
          if (yield* attempt) return lockPath
          const pid = holder(lockPath)
          if (pid !== undefined && pid !== process.pid && running(pid)) return yield* new StateInUse({ path, pid })
          // A stale lock (its server was killed): take it over, unless another server just did.
          yield* Effect.sync(() => rmSync(lockPath, { force: true }))
          if (yield* attempt) return lockPath
          return yield* new StateInUse({ path, pid: holder(lockPath) ?? 0 })
        }),
        (lockPath) =>
          Effect.sync(() => {
            if (holder(lockPath) === process.pid) rmSync(lockPath, { force: true })
          }),
      )
