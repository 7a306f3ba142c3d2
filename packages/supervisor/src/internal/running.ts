/**
 * One running worker process as the supervisor sees it, whether it spawned
 * it (through `effect/process`) or adopted it after its own restart (known
 * only by pid and procfs start time): how to wait for its end and how to
 * signal it, and the graceful stop built on both.
 */
import { Deferred, type Duration, Effect, Option, type Scope } from "effect"
import type * as ChildProcess from "effect/process/ChildProcess"
import type { ChildProcessHandle } from "effect/process/ChildProcessSpawner"
import type * as WorkerHealth from "../WorkerHealth.ts"

export interface ExitStatus {
  readonly code?: number | undefined
  readonly signal?: string | undefined
}

export interface Running {
  readonly pid: number
  readonly startTimeTicks: number | undefined
  readonly adopted: boolean
  /** Waits for the process to end. */
  readonly exit: Effect.Effect<ExitStatus>
  readonly hasExited: Effect.Effect<boolean>
  /** Sends a signal; does not wait. */
  readonly signal: (signal: ChildProcess.Signal) => Effect.Effect<void>
}

// `effect/process` reports a death by signal only as a PlatformError whose
// text carries Node's "receipt of signal: 'SIGKILL'". The signal is
// descriptive (events, logs): no policy depends on it, so reading it from the
// text is safe; `undefined` when the text changes.
const signalOf = (error: unknown): string | undefined => {
  const texts: Array<string> = [String((error as { message?: unknown })?.message ?? "")]
  const cause = (error as { reason?: { cause?: unknown } })?.reason?.cause
  if (cause instanceof Error) texts.push(cause.message)
  for (const text of texts) {
    const match = /signal: '(SIG[A-Z0-9]+)'/.exec(text)
    if (match !== null) return match[1]
  }
  return undefined
}

/** A process this supervisor spawned: its exit is watched from a fiber in `scope`. */
export const fromHandle = Effect.fnUntraced(function* (
  handle: ChildProcessHandle,
  startTimeTicks: number | undefined,
  scope: Scope.Scope,
) {
  const ended = yield* Deferred.make<ExitStatus>()
  yield* handle.exitCode.pipe(
    Effect.match({
      onSuccess: (code): ExitStatus => ({ code }),
      onFailure: (error): ExitStatus => ({ signal: signalOf(error) }),
    }),
    Effect.flatMap((status) => Deferred.succeed(ended, status)),
    Effect.forkIn(scope),
  )
  const running: Running = {
    pid: handle.pid,
    startTimeTicks,
    adopted: false,
    exit: Deferred.await(ended),
    hasExited: Deferred.isDone(ended),
    // The handle's `kill` signals the process group and then waits for the
    // exit; the wait runs detached so a signal never blocks its sender.
    signal: (signal) => Effect.asVoid(Effect.forkDetach(Effect.ignore(handle.kill({ killSignal: signal })))),
  }
  return running
})

/**
 * A process found running after a supervisor restart. Its exit status went
 * to its new parent; it has ended when its pid is gone, belongs to another
 * process (another start time), or is a zombie or dead. Polled every `poll`.
 */
export const adopted = (
  health: WorkerHealth.WorkerHealth["Service"],
  pid: number,
  startTimeTicks: number,
  poll: Duration.Duration,
): Running => {
  const isGone = Effect.match(health.sample(pid), {
    onFailure: (error) => error._tag === "ProcessGone",
    onSuccess: (s) => s.startTimeTicks !== startTimeTicks || s.state === "Z" || s.state === "X",
  })
  const exit: Effect.Effect<ExitStatus> = Effect.flatMap(isGone, (gone) =>
    gone ? Effect.succeed({}) : Effect.flatMap(Effect.sleep(poll), () => exit),
  )
  return {
    pid,
    startTimeTicks,
    adopted: true,
    exit,
    hasExited: isGone,
    signal: (signal) => Effect.ignore(health.signal(pid, signal)),
  }
}

/**
 * SIGTERM, then SIGKILL if the process has not ended `grace` later; returns
 * its exit status, or `None` when it had ended before the call.
 */
export const stopGracefully = Effect.fnUntraced(function* (running: Running, grace: Duration.Duration) {
  if (yield* running.hasExited) return Option.none<ExitStatus>()
  yield* running.signal("SIGTERM")
  const ended = yield* Effect.timeoutOption(running.exit, grace)
  if (Option.isSome(ended)) return ended
  yield* running.signal("SIGKILL")
  return Option.some(yield* running.exit)
})

export const describeExit = (status: ExitStatus): string =>
  status.signal !== undefined
    ? `killed by ${status.signal}`
    : status.code !== undefined
      ? `exited with code ${status.code}`
      : "exited"
