/**
 * A worker's health from Linux procfs: alive, zombie, CPU %, resident set
 * size, as the torchft-derived process guard checks them with psutil, read
 * here straight from `/proc/<pid>/stat` and `/proc/<pid>/status`.
 *
 * Reading goes through the `WorkerHealth` service so that tests script the
 * readings under `TestClock`; `assess` turns two consecutive samples into a
 * verdict and is pure. On a platform without procfs every read fails with
 * `HealthUnsupported`, never with a made-up reading.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { Clock, Context, Effect, Layer, Option, Result, Schema } from "effect"
import type * as ChildProcess from "effect/process/ChildProcess"
import { type ProcParseError, type ProcState, parseStat, parseStatusRss } from "./ProcStat.ts"

/**
 * `USER_HZ`, the unit of procfs times: 100 on every Linux architecture Node
 * supports (the kernel converts its internal HZ to it for userspace).
 *
 * @since 0.1.0
 * @category constants
 */
export const CLOCK_TICKS_PER_SECOND = 100

/**
 * No process with this pid (it exited and was reaped).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcessGone extends Schema.TaggedError<ProcessGone>()("ProcessGone", {
  pid: Schema.Number,
}) {
  override get message(): string {
    return `no process ${this.pid}`
  }
}

/**
 * A procfs file exists but could not be read (permissions, I/O).
 *
 * @since 0.1.0
 * @category errors
 */
export class ProcReadFailed extends Schema.TaggedError<ProcReadFailed>()("ProcReadFailed", {
  pid: Schema.Number,
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot read /proc/${this.pid}/${this.file}: ${this.reason}`
  }
}

/**
 * Health from procfs needs Linux; this platform has none.
 *
 * @since 0.1.0
 * @category errors
 */
export class HealthUnsupported extends Schema.TaggedError<HealthUnsupported>()("HealthUnsupported", {
  platform: Schema.String,
}) {
  override get message(): string {
    return `worker health reads Linux /proc; this platform is ${this.platform}`
  }
}

/**
 * A signal could not be delivered (no permission, invalid signal).
 *
 * @since 0.1.0
 * @category errors
 */
export class SignalFailed extends Schema.TaggedError<SignalFailed>()("SignalFailed", {
  pid: Schema.Number,
  signal: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot send ${this.signal} to ${this.pid}: ${this.reason}`
  }
}

/**
 * Why a sample could not be taken.
 *
 * @since 0.1.0
 * @category errors
 */
export type SampleError = ProcessGone | ProcReadFailed | ProcParseError | HealthUnsupported

/**
 * One reading of a process: its procfs state, its CPU time so far
 * (`cpuTicks`, user + kernel), its start time (ticks since boot, which with
 * the pid identifies the process across pid reuse), its resident set in
 * bytes, and `at`, the `Clock` time of the reading in milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProcessSample {
  readonly pid: number
  readonly state: ProcState
  readonly ppid: number
  readonly pgrp: number
  readonly cpuTicks: number
  readonly startTimeTicks: number
  readonly rssBytes: number
  readonly at: number
}

/**
 * One way a check can fail: the process (or its `pidFile` target) is a
 * zombie, over the CPU or RSS limit, gone, or its liveness probe failed or
 * timed out.
 *
 * @since 0.1.0
 * @category models
 */
export const Breach = Schema.Union([
  Schema.TaggedStruct("Zombie", { pid: Schema.Number }),
  Schema.TaggedStruct("CpuOver", { percent: Schema.Number, limit: Schema.Number }),
  Schema.TaggedStruct("RssOver", { bytes: Schema.Number, limit: Schema.Number }),
  Schema.TaggedStruct("TargetGone", { pid: Schema.Number }),
  Schema.TaggedStruct("ProbeFailed", { reason: Schema.String }),
])

/**
 * @since 0.1.0
 * @category models
 */
export type Breach = typeof Breach.Type

/**
 * A breach in a few words, for logs and tables.
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatBreach = (breach: Breach): string => {
  switch (breach._tag) {
    case "Zombie":
      return `process ${breach.pid} is a zombie`
    case "CpuOver":
      return `CPU ${breach.percent.toFixed(1)}% over ${breach.limit}%`
    case "RssOver":
      return `RSS ${breach.bytes} B over ${breach.limit} B`
    case "TargetGone":
      return `process ${breach.pid} is gone`
    case "ProbeFailed":
      return `liveness probe failed: ${breach.reason}`
  }
}

/**
 * The thresholds `assess` applies (see `SupervisorConfig.HealthThresholds`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Limits {
  readonly maxCpuPercent: number | undefined
  readonly maxRssBytes: number | undefined
  readonly zombie: boolean
}

/**
 * The CPU use between two samples of the same process, in percent of one
 * core: `Δ(utime + stime) / USER_HZ / Δt · 100`. `undefined` for the first
 * sample, for samples of two different processes (pid reuse), and when no
 * time passed.
 *
 * @since 0.1.0
 * @category health
 */
export const cpuPercent = (previous: ProcessSample | undefined, current: ProcessSample): number | undefined => {
  if (previous === undefined || previous.pid !== current.pid) return undefined
  if (previous.startTimeTicks !== current.startTimeTicks) return undefined
  const elapsedMs = current.at - previous.at
  if (elapsedMs <= 0) return undefined
  const cpuMs = ((current.cpuTicks - previous.cpuTicks) * 1000) / CLOCK_TICKS_PER_SECOND
  return Math.max(0, (cpuMs / elapsedMs) * 100)
}

/**
 * What one check finds: the breaches of `current` against `limits`, with the
 * CPU % measured since `previous` (the check before). An empty list is a
 * healthy check.
 *
 * @since 0.1.0
 * @category health
 */
export const assess = (
  previous: ProcessSample | undefined,
  current: ProcessSample,
  limits: Limits,
): { readonly cpuPercent: number | undefined; readonly breaches: ReadonlyArray<Breach> } => {
  const breaches: Array<Breach> = []
  if (limits.zombie && current.state === "Z") breaches.push({ _tag: "Zombie", pid: current.pid })
  const cpu = cpuPercent(previous, current)
  if (limits.maxCpuPercent !== undefined && cpu !== undefined && cpu > limits.maxCpuPercent) {
    breaches.push({ _tag: "CpuOver", percent: cpu, limit: limits.maxCpuPercent })
  }
  if (limits.maxRssBytes !== undefined && current.rssBytes > limits.maxRssBytes) {
    breaches.push({ _tag: "RssOver", bytes: current.rssBytes, limit: limits.maxRssBytes })
  }
  return { cpuPercent: cpu, breaches }
}

/**
 * Reads processes:
 *
 * - `sample(pid)`: one `ProcessSample` (fails `ProcessGone` when there is no
 *   such process).
 * - `readPidFile(path)`: the pid a launcher wrote (`None` while the file is
 *   missing, empty or not a pid).
 * - `signal(pid, signal)`: sends a signal to a process the supervisor did not
 *   spawn in this run (one it adopted after its own restart): to its whole
 *   process group when it leads one, as the spawner does for its children.
 *
 * @since 0.1.0
 * @category services
 */
export class WorkerHealth extends Context.Service<
  WorkerHealth,
  {
    readonly sample: (pid: number) => Effect.Effect<ProcessSample, SampleError>
    readonly readPidFile: (path: string) => Effect.Effect<Option.Option<number>>
    readonly signal: (pid: number, signal: ChildProcess.Signal) => Effect.Effect<void, ProcessGone | SignalFailed>
  }
>()("@fedguard/supervisor/WorkerHealth") {}

const errorCode = (cause: unknown): string | undefined =>
  typeof cause === "object" && cause !== null && "code" in cause ? String(cause.code) : undefined

const readProc = (pid: number, file: string): Result.Result<string, ProcessGone | ProcReadFailed> => {
  try {
    return Result.succeed(readFileSync(`/proc/${pid}/${file}`, "latin1"))
  } catch (cause) {
    const code = errorCode(cause)
    return code === "ENOENT" || code === "ESRCH"
      ? Result.fail(new ProcessGone({ pid }))
      : Result.fail(new ProcReadFailed({ pid, file, reason: code ?? String(cause) }))
  }
}

/**
 * Reads one sample synchronously (two small procfs reads); `at` is the
 * caller's. Exposed for benchmarks; use the service in programs.
 *
 * @since 0.1.0
 * @category procfs
 */
export const readSampleSync = (pid: number, at: number): Result.Result<ProcessSample, SampleError> => {
  // A pid is a positive integer: anything else would read another /proc entry (self, ../).
  if (!Number.isSafeInteger(pid) || pid <= 0) return Result.fail(new ProcessGone({ pid }))
  const statText = readProc(pid, "stat")
  if (Result.isFailure(statText)) return Result.fail(statText.failure)
  const stat = parseStat(statText.success)
  if (Result.isFailure(stat)) return Result.fail(stat.failure)
  const statusText = readProc(pid, "status")
  if (Result.isFailure(statusText)) return Result.fail(statusText.failure)
  const rss = parseStatusRss(statusText.success)
  if (Result.isFailure(rss)) return Result.fail(rss.failure)
  const s = stat.success
  return Result.succeed({
    pid: s.pid,
    state: s.state,
    ppid: s.ppid,
    pgrp: s.pgrp,
    cpuTicks: s.utimeTicks + s.stimeTicks,
    startTimeTicks: s.startTimeTicks,
    rssBytes: rss.success,
    at,
  })
}

const readPidFileSync = (path: string): Option.Option<number> => {
  try {
    const text = readFileSync(path, "utf8").trim()
    return /^\d{1,10}$/.test(text) && Number(text) > 0 ? Option.some(Number(text)) : Option.none()
  } catch {
    return Option.none()
  }
}

/**
 * The procfs reader: `WorkerHealth` on Linux; on any other platform `sample`
 * fails with `HealthUnsupported` (and `signal` still works).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (platform: string = process.platform): WorkerHealth["Service"] => {
  const sample = (pid: number): Effect.Effect<ProcessSample, SampleError> =>
    platform !== "linux"
      ? Effect.fail(new HealthUnsupported({ platform }))
      : Effect.flatMap(Clock.currentTimeMillis, (at) => Effect.fromResult(readSampleSync(pid, at)))
  const signal = (pid: number, signal: ChildProcess.Signal) =>
    Effect.try({
      try: () => {
        const self = platform === "linux" ? readSampleSync(pid, 0) : undefined
        const leadsGroup = self !== undefined && Result.isSuccess(self) && self.success.pgrp === pid
        process.kill(leadsGroup ? -pid : pid, signal)
      },
      catch: (cause) =>
        errorCode(cause) === "ESRCH"
          ? new ProcessGone({ pid })
          : new SignalFailed({ pid, signal, reason: errorCode(cause) ?? String(cause) }),
    })
  return WorkerHealth.of({
    sample,
    readPidFile: (path) => Effect.sync(() => readPidFileSync(path)),
    signal,
  })
}

/**
 * `WorkerHealth` on this machine's procfs.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<WorkerHealth> = Layer.sync(WorkerHealth, () => make())
