import { Clock, Deferred, Effect, Layer, Option, Scope, Sink, Stream } from "effect"
import * as PlatformError from "effect/PlatformError"
import {
  ChildProcessSpawner,
  ExitCode,
  makeHandle,
  make as makeSpawner,
  ProcessId,
} from "effect/process/ChildProcessSpawner"
import type { ProcState } from "../src/ProcStat.ts"
import * as SupervisorStore from "../src/SupervisorStore.ts"
import * as WorkerHealth from "../src/WorkerHealth.ts"
import type { WorkerSpec } from "../src/WorkerSpec.ts"

/** A scripted process: what the fake spawner started (or an "external" one for adoption tests). */
export interface FakeProcess {
  readonly pid: number
  readonly command: string
  readonly startTimeTicks: number
  state: ProcState
  rssBytes: number
  cpuTicks: number
  ignoresSigterm: boolean
  readonly ended: Deferred.Deferred<readonly [number | null, string | null]>
}

export interface LogEntry {
  readonly at: number
  readonly what: string
  readonly pid: number
  readonly command: string
}

/**
 * A scripted OS: a `ChildProcessSpawner` and a `WorkerHealth` over one process
 * table, with a log of spawns and signals stamped with `Clock` time.
 */
export const makeFakeOs = Effect.gen(function* () {
  const processes = new Map<number, FakeProcess>()
  const log: Array<LogEntry> = []
  const pidFiles = new Map<string, number>()
  const failing = new Set<string>()
  let nextPid = 1000

  const note = (what: string, proc: FakeProcess) =>
    Effect.map(Clock.currentTimeMillis, (at) => {
      log.push({ at, what, pid: proc.pid, command: proc.command })
    })

  /** Ends a process: `code` for an exit, `signal` for a death by signal; it is reaped at once. */
  const end = (proc: FakeProcess, code: number | null, signal: string | null) =>
    Effect.gen(function* () {
      if (yield* Deferred.isDone(proc.ended)) return
      processes.delete(proc.pid)
      yield* note(code === null ? `died:${signal}` : `exited:${code}`, proc)
      yield* Deferred.succeed(proc.ended, [code, signal] as const)
    })

  const deliver = (proc: FakeProcess, signal: string) =>
    Effect.gen(function* () {
      yield* note(signal, proc)
      if (signal === "SIGKILL" || (signal === "SIGTERM" && !proc.ignoresSigterm)) yield* end(proc, null, signal)
    })

  const register = (command: string) =>
    Effect.gen(function* () {
      const at = yield* Clock.currentTimeMillis
      const proc: FakeProcess = {
        pid: nextPid++,
        command,
        startTimeTicks: Math.floor(at / 10) + 1,
        state: "S",
        rssBytes: 50 * 1024 * 1024,
        cpuTicks: 0,
        ignoresSigterm: false,
        ended: yield* Deferred.make<readonly [number | null, string | null]>(),
      }
      processes.set(proc.pid, proc)
      return proc
    })

  const spawner = makeSpawner((command) =>
    Effect.gen(function* () {
      if (command._tag !== "StandardCommand") return yield* Effect.die("piped commands are not scripted")
      if (failing.has(command.command)) {
        return yield* Effect.fail(
          PlatformError.systemError({
            _tag: "NotFound",
            module: "ChildProcess",
            method: "spawn",
            description: "ENOENT",
          }),
        )
      }
      const proc = yield* register(command.command)
      yield* note("spawn", proc)
      yield* Effect.addFinalizer(() => end(proc, null, "SIGKILL"))
      return makeHandle({
        pid: ProcessId(proc.pid),
        exitCode: Effect.flatMap(Deferred.await(proc.ended), ([code, signal]) =>
          code !== null
            ? Effect.succeed(ExitCode(code))
            : Effect.fail(
                PlatformError.systemError({
                  _tag: "Unknown",
                  module: "ChildProcess",
                  method: "exitCode",
                  cause: new Error(`Process interrupted due to receipt of signal: '${signal}'`),
                }),
              ),
        ),
        isRunning: Effect.map(Deferred.isDone(proc.ended), (done) => !done),
        kill: (options) =>
          Effect.flatMap(deliver(proc, options?.killSignal ?? "SIGTERM"), () =>
            Effect.asVoid(Deferred.await(proc.ended)),
          ),
        stdin: Sink.drain,
        stdout: Stream.empty,
        stderr: Stream.empty,
        all: Stream.empty,
        getInputFd: () => Sink.drain,
        getOutputFd: () => Stream.empty,
        unref: Effect.succeed(Effect.void),
      })
    }),
  )

  const health = WorkerHealth.WorkerHealth.of({
    sample: (pid) =>
      Effect.gen(function* () {
        const proc = processes.get(pid)
        if (proc === undefined) return yield* new WorkerHealth.ProcessGone({ pid })
        return {
          pid,
          state: proc.state,
          ppid: 1,
          pgrp: pid,
          cpuTicks: proc.cpuTicks,
          startTimeTicks: proc.startTimeTicks,
          rssBytes: proc.rssBytes,
          at: yield* Clock.currentTimeMillis,
        }
      }),
    readPidFile: (path) => Effect.succeed(Option.fromUndefinedOr(pidFiles.get(path))),
    signal: (pid, signal) => {
      const proc = processes.get(pid)
      return proc === undefined ? Effect.fail(new WorkerHealth.ProcessGone({ pid })) : deliver(proc, signal)
    },
  })

  const byCommand = (command: string) => [...processes.values()].filter((p) => p.command === command)
  const only = (command: string): FakeProcess => {
    const found = byCommand(command)
    if (found.length !== 1) throw new Error(`${found.length} live processes of ${command}`)
    return found[0] as FakeProcess
  }

  return {
    log,
    processes,
    pidFiles,
    failing,
    /** The live process of a command (exactly one). */
    only,
    /** Ends the live process of `command` with an exit code. */
    exit: (command: string, code: number) => end(only(command), code, null),
    /** Kills the live process of `command` from outside (like `kill -9`). */
    kill: (command: string, signal = "SIGKILL") => end(only(command), null, signal),
    /** A running process the supervisor did not spawn (to be adopted). */
    external: (command: string) => register(command),
    layer: Layer.mergeAll(
      Layer.succeed(ChildProcessSpawner, spawner),
      Layer.succeed(WorkerHealth.WorkerHealth, health),
    ),
    /** Log entries of one kind, as `[at, command]`. */
    entries: (what: string) => log.filter((e) => e.what === what).map((e) => [e.at, e.command] as const),
  }
})

export type FakeOs = Effect.Success<typeof makeFakeOs>

/** A spec whose command is its id (so the fake log reads as worker ids). */
export const spec = (id: string, extra: Partial<WorkerSpec> = {}): WorkerSpec => ({
  id,
  command: id,
  args: [],
  env: {},
  ...extra,
})

/** Lets forked fibers run until they wait on time, without moving the clock. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 100; i++) yield* Effect.yieldNow
})

/** A fresh in-memory store in the current Scope. */
export const memoryStore = Effect.map(SupervisorStore.makeSqlite({ path: ":memory:" }), (store) =>
  Layer.succeed(SupervisorStore.SupervisorStore, store),
)

export const scoped = Scope.Scope
