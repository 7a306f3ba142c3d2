/**
 * Where an update waits for the end of its round: a file, not memory. Each
 * round gets its own temporary directory (`fedguard-round-<n>-p<pid>-…`
 * under `os.tmpdir()` by default), tied to the round's Scope: when the round
 * ends, fails or is interrupted, the directory and every spill in it are
 * removed. A server killed with SIGKILL cannot remove its own, so before its
 * first round a store removes the round directories of server processes that
 * no longer exist (the pid in the name; a live pid, even one reused by
 * another program, is left alone).
 * An upload is appended to its spill chunk by chunk as it arrives, and the
 * round's reduction reads the spills back chunk by chunk, so the server's
 * memory holds one model and a few chunk buffers whatever the number of
 * clients.
 *
 * The files are the updates' wire bytes (little-endian float32, as
 * `Weights.encode` writes them), so nothing is converted on the way in.
 *
 * @since 0.3.0
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Context, Effect, Layer, Schema, type Scope } from "effect"

/**
 * A spill file could not be created, written or read (`operation`, the
 * file's `path`, the system's `reason`, e.g. `ENOSPC: no space left on
 * device`). The server's fault, not the client's.
 *
 * @since 0.3.0
 * @category errors
 */
export class UpdateSpillError extends Schema.TaggedError<UpdateSpillError>()("UpdateSpillError", {
  operation: Schema.Literals(["directory", "create", "write", "open", "read"]),
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `update spill ${this.operation} failed for ${this.path}: ${this.reason}`
  }
}

/**
 * One update on disk: its file.
 *
 * @since 0.3.0
 * @category models
 */
export interface Spill {
  readonly path: string
}

/**
 * A spill being written: `append` adds bytes at its end; `discard` closes
 * and deletes it at once (a refused update leaves nothing behind); calls
 * after the first do nothing. The file is closed when the Scope that created
 * it closes; it stays on disk until discarded, removed, or its round's
 * directory goes.
 *
 * @since 0.3.0
 * @category models
 */
export interface Writer {
  readonly spill: Spill
  readonly append: (bytes: Uint8Array) => Effect.Effect<void, UpdateSpillError>
  readonly discard: Effect.Effect<void>
}

/**
 * A spill open for reading: `read(position, into)` fills `into` with the
 * bytes from `position`, or fails if the file ends first.
 *
 * @since 0.3.0
 * @category models
 */
export interface Reader {
  readonly read: (position: number, into: Uint8Array) => Effect.Effect<void, UpdateSpillError>
}

/**
 * The spill store:
 *
 * - `directory(round)`: a new directory for one round's spills, removed with
 *   everything in it when the Scope closes;
 * - `create(directory)`: a new empty spill in it, open for appending until
 *   the Scope closes;
 * - `open(spill)`: a reader, closed when the Scope closes;
 * - `remove(spill)`: deletes a spill now (one already gone is fine).
 *
 * A `Context.Reference` whose default is {@link make} under `os.tmpdir()`:
 * every composition spills to temporary files without wiring, and a test or
 * a deployment with a bigger scratch disk provides {@link layer} (or a spy)
 * instead.
 *
 * @since 0.3.0
 * @category services
 */
export interface UpdateSpillService {
  readonly directory: (round: number) => Effect.Effect<string, UpdateSpillError, Scope.Scope>
  readonly create: (directory: string) => Effect.Effect<Writer, UpdateSpillError, Scope.Scope>
  readonly open: (spill: Spill) => Effect.Effect<Reader, UpdateSpillError, Scope.Scope>
  readonly remove: (spill: Spill) => Effect.Effect<void>
}

/**
 * Options of {@link make}: `directory`, where the rounds' directories are
 * created (default `os.tmpdir()`).
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly directory?: string | undefined
}

// An open spill file; `open` and `discarded` change once each, so closing and discarding are
// idempotent however the write and its Scope end.
interface SpillFile {
  readonly path: string
  readonly fd: number
  open: boolean
  discarded: boolean
}

const reasonOf = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

const attempt = <A>(operation: UpdateSpillError["operation"], file: string, f: () => A) =>
  Effect.try({ try: f, catch: (cause) => new UpdateSpillError({ operation, path: file, reason: reasonOf(cause) }) })

// Clean-up never fails the round: a file that cannot be deleted is worth a warning, not a crash.
const bestEffort = (what: string, file: string, f: () => void) =>
  Effect.try({ try: f, catch: reasonOf }).pipe(
    Effect.catch((reason) => Effect.logWarning(`could not ${what} ${file}: ${reason}`)),
  )

const roundDirectory = /^fedguard-round-\d+-p(\d+)-/

// Whether a process with this pid exists: signal 0 checks without sending anything, and EPERM
// means it exists under another user.
const alive = (pid: number) =>
  Effect.try({ try: () => process.kill(pid, 0), catch: (error) => (error as NodeJS.ErrnoException).code }).pipe(
    Effect.as(true),
    Effect.catch((code) => Effect.succeed(code === "EPERM")),
  )

// Removes the round directories left in `parent` by server processes that no longer exist.
const sweepStale = (parent: string) =>
  Effect.gen(function* () {
    const names = yield* Effect.try(() => fs.readdirSync(parent)).pipe(Effect.orElseSucceed(() => []))
    for (const name of names) {
      const pid = Number(roundDirectory.exec(name)?.[1])
      if (!Number.isSafeInteger(pid) || pid === process.pid || (yield* alive(pid))) continue
      const dir = path.join(parent, name)
      yield* bestEffort("remove the stale spill directory", dir, () => fs.rmSync(dir, { recursive: true, force: true }))
      yield* Effect.logInfo(`removed ${dir}, left by server process ${pid}, which no longer runs`)
    }
  })

/**
 * The store on the local file system, through `node:fs`'s synchronous calls.
 * Why synchronous: each call moves one transport chunk (a write) or one
 * reduction chunk (a read, 1 MiB by default) to or from the page cache,
 * which takes microseconds; the asynchronous API would hand each to the
 * thread pool and back, and make when an upload is admitted depend on disk
 * latency instead of only on the fibers and the `Clock`, which the tests
 * (on the TestClock) rely on.
 *
 * @since 0.3.0
 * @category constructors
 */
export const make = (options: Options = {}): UpdateSpillService => {
  const parent = options.directory ?? os.tmpdir()
  let created = 0
  let swept = false

  const directory = (round: number) =>
    Effect.acquireRelease(
      Effect.andThen(
        Effect.suspend(() => {
          if (swept) return Effect.void
          swept = true
          return sweepStale(parent)
        }),
        attempt("directory", parent, () =>
          fs.mkdtempSync(path.join(parent, `fedguard-round-${round}-p${process.pid}-`)),
        ),
      ),
      (dir) => bestEffort("remove the spill directory", dir, () => fs.rmSync(dir, { recursive: true, force: true })),
    )

  const remove = (spill: Spill) =>
    bestEffort("remove the spill", spill.path, () => fs.rmSync(spill.path, { force: true }))

  const closeFile = (file: SpillFile) =>
    Effect.suspend(() => {
      if (!file.open) return Effect.void
      file.open = false
      return bestEffort("close the spill", file.path, () => fs.closeSync(file.fd))
    })

  const create = (dir: string) =>
    Effect.gen(function* () {
      // Names are a counter, never the client's id: ids are untrusted input.
      const spill: Spill = { path: path.join(dir, `${++created}.f32le`) }
      const file = yield* Effect.acquireRelease(
        attempt(
          "create",
          spill.path,
          (): SpillFile => ({
            path: spill.path,
            fd: fs.openSync(spill.path, "wx"),
            open: true,
            discarded: false,
          }),
        ),
        closeFile,
      )
      const append = (bytes: Uint8Array) =>
        attempt("write", spill.path, () => {
          if (!file.open) throw new Error("the spill is closed")
          for (let written = 0; written < bytes.byteLength; ) {
            written += fs.writeSync(file.fd, bytes, written, bytes.byteLength - written)
          }
        })
      const discard = Effect.suspend(() => {
        if (file.discarded) return Effect.void
        file.discarded = true
        return Effect.andThen(closeFile(file), remove(spill))
      })
      return { spill, append, discard } satisfies Writer
    })

  const open = (spill: Spill) =>
    Effect.map(
      Effect.acquireRelease(
        attempt("open", spill.path, () => fs.openSync(spill.path, "r")),
        (fd) => bestEffort("close the spill", spill.path, () => fs.closeSync(fd)),
      ),
      (fd): Reader => ({
        read: (position, into) =>
          attempt("read", spill.path, () => {
            for (let filled = 0; filled < into.byteLength; ) {
              const read = fs.readSync(fd, into, filled, into.byteLength - filled, position + filled)
              if (read === 0) throw new Error(`the file ends before byte ${position + into.byteLength}`)
              filled += read
            }
          }),
      }),
    )

  return { directory, create, open, remove }
}

/**
 * The spill store in the context; {@link make} under `os.tmpdir()` unless
 * one is provided.
 *
 * @example
 * ```ts
 * // Spill to a dedicated scratch disk instead of the system's temp directory.
 * FedServer.layer(settings).pipe(Layer.provide(UpdateSpill.layer({ directory: "/scratch" })))
 * ```
 *
 * @since 0.3.0
 * @category services
 */
export const UpdateSpill: Context.Reference<UpdateSpillService> = Context.Reference<UpdateSpillService>(
  "@fedguard/fed-server/UpdateSpill",
  { defaultValue: () => make() },
)

/**
 * {@link make} with `options` as a Layer.
 *
 * @since 0.3.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<never> => Layer.succeed(UpdateSpill, make(options))
