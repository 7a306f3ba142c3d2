import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert } from "@effect/vitest"
import type { SupervisorEvent } from "@fedguard/supervisor"
import { type Duration, Effect, Fiber, Option, Ref, Schedule, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import { lines as eventLines } from "../src/SupervisorLines.ts"

export const bin = join(import.meta.dirname, "..", "dist", "bin.js")
const worker = join(import.meta.dirname, "fixtures", "worker.mjs")

/** A worker of a fleet file running the test worker in `mode` (see fixtures/worker.mjs). */
export const testWorker = (id: string, mode: ReadonlyArray<string>, extra: Record<string, unknown> = {}) => ({
  id,
  command: process.execPath,
  args: [worker, ...mode],
  ...extra,
})

/** Short checks and backoffs so that a test's waits stay under a few seconds. */
export const fast = {
  monitoring: { interval: "100 millis", unhealthyChecks: 2 },
  recovery: { backoffBase: "100 millis", backoffCap: "1 second", jitter: false, stopGrace: "2 seconds" },
}

/** Writes a fleet file (JSON) into a fresh directory; returns its path. */
export const fleetFile = (fleet: unknown, name = "fleet.json") => {
  const dir = mkdtempSync(join(tmpdir(), "fed-supervisor-"))
  const file = join(dir, name)
  writeFileSync(file, JSON.stringify(fleet))
  return file
}

/** A file path in a fresh directory, for a worker's READY_FILE. */
export const readyFile = (name: string) => join(mkdtempSync(join(tmpdir(), "fed-supervisor-ready-")), name)

/** Waits (at most 10 s) for a worker to create its READY_FILE. */
export const ready = (file: string) =>
  Effect.suspend(() => (existsSync(file) ? Effect.void : Effect.fail("not yet"))).pipe(
    Effect.retry(Schedule.spaced("25 millis")),
    Effect.timeoutOrElse({ duration: "10 seconds", orElse: () => Effect.die(`${file} was never created`) }),
  )

/** A process is gone once /proc no longer lists it or it is a zombie waiting to be reaped. */
export const isAlive = (pid: number) => {
  const stat = `/proc/${pid}/stat`
  if (!existsSync(stat)) return false
  const state = readFileSync(stat, "utf8").split(") ")[1]?.[0]
  return state !== undefined && state !== "Z" && state !== "X"
}

const lines = <E>(bytes: Stream.Stream<Uint8Array, E>) => bytes.pipe(Stream.decodeText(), Stream.splitLines)

/**
 * Starts fed-supervisor with `args` in the current Scope; collects its stdout
 * as typed events and its stderr as lines.
 */
export const start = Effect.fnUntraced(function* (args: ReadonlyArray<string>) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const handle = yield* spawner.spawn(
    ChildProcess.make(process.execPath, [bin, ...args], { stdout: "pipe", stderr: "pipe" }),
  )
  const events = yield* Ref.make<ReadonlyArray<SupervisorEvent.SupervisorEvent>>([])
  const stderr = yield* Ref.make<ReadonlyArray<string>>([])
  const stdoutDone = yield* lines(handle.stdout).pipe(
    Stream.runForEach((line) =>
      Option.match(eventLines.fromLine(line), {
        onNone: () => Effect.void,
        onSome: (event) => Ref.update(events, (all) => [...all, event]),
      }),
    ),
    Effect.ignore,
    Effect.forkScoped,
  )
  const stderrDone = yield* lines(handle.stderr).pipe(
    Stream.runForEach((line) => Ref.update(stderr, (all) => [...all, line])),
    Effect.ignore,
    Effect.forkScoped,
  )
  /** Waits (polling every 50 ms, at most `within`) for the first event that `pick` accepts. */
  const waitFor = <A>(
    what: string,
    pick: (event: SupervisorEvent.SupervisorEvent) => A | undefined,
    within: Duration.Input = "10 seconds",
  ) =>
    Ref.get(events).pipe(
      Effect.flatMap((all) => {
        for (const event of all) {
          const found = pick(event)
          if (found !== undefined) return Effect.succeed(found)
        }
        return Effect.fail("not yet" as const)
      }),
      Effect.retry(Schedule.spaced("50 millis")),
      Effect.timeoutOrElse({
        duration: within,
        orElse: () =>
          Effect.flatMap(Ref.get(events), (all) =>
            Effect.die(`no ${what} within ${String(within)}; events: ${all.map((e) => e._tag).join(", ")}`),
          ),
      }),
    )
  /**
   * Waits for the process's exit code (-1: killed by a signal), then for the rest of its output.
   * After a SIGKILL the workers it left running still hold its stdout and stderr open: pass
   * `drain: false` not to wait for them.
   */
  const exited = (within: Duration.Input = "20 seconds", drain = true) =>
    Effect.gen(function* () {
      const code = yield* handle.exitCode.pipe(Effect.orElseSucceed(() => -1))
      if (drain) {
        yield* Fiber.join(stdoutDone)
        yield* Fiber.join(stderrDone)
      }
      return Number(code)
    }).pipe(
      Effect.timeoutOrElse({
        duration: within,
        orElse: () => Effect.die(`fed-supervisor did not exit within ${within}`),
      }),
    )
  return {
    handle,
    waitFor,
    exited,
    events: Ref.get(events),
    stderr: Ref.get(stderr),
  }
})

/** The pid of the worker's latest start, waiting for it. */
export const startedPid = (supervisor: Effect.Success<ReturnType<typeof start>>, workerId: string, incarnation = 1) =>
  supervisor.waitFor(`start ${incarnation} of ${workerId}`, (event) =>
    event._tag === "WorkerStarted" && event.workerId === workerId && event.incarnation === incarnation
      ? event.pid
      : undefined,
  )

/** Asserts that none of `pids` is alive, waiting up to 5 s for the last ones to be reaped. */
export const assertAllGone = (pids: ReadonlyArray<number>) =>
  Effect.suspend(() => {
    const alive = pids.filter(isAlive)
    return alive.length === 0 ? Effect.void : Effect.fail(alive)
  }).pipe(
    Effect.retry(Schedule.spaced("50 millis")),
    Effect.timeoutOrElse({ duration: "5 seconds", orElse: () => Effect.void }),
    Effect.andThen(Effect.sync(() => assert.deepStrictEqual(pids.filter(isAlive), [], "orphan worker processes"))),
  )
