/**
 * Supervises a set of worker processes: starts each from its `WorkerSpec`
 * with `effect/process`, watches its exit and its health (procfs state,
 * CPU %, RSS, an optional liveness probe), and on a failure applies the
 * supervisor's strategy (`restart-one`, `restart-all`, `reassign`,
 * `stop-all`), restarting with a backoff `Schedule` under an OTP restart
 * intensity: more than `maxRestarts` restarts within `restartPeriod` and it
 * stops everything and ends with `SupervisorEscalated` and the history.
 *
 * State (workers, their current pid and start time, restart counts, task
 * holders and completions) lives in the `SupervisorStore`; a supervisor
 * started on the state of a killed one adopts the workers still running
 * (same pid AND same procfs start time, so a reused pid is never adopted)
 * and restarts the others, and resumes the task queue.
 *
 * Lifetimes: one fiber per worker run, forked in the supervisor's Scope;
 * closing that Scope stops every worker gracefully (SIGTERM, SIGKILL after
 * `stopGrace`).
 *
 * @since 0.1.0
 */
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Layer,
  Metric,
  Option,
  PubSub,
  Queue,
  Ref,
  Schedule,
  Schema,
  Scope,
  Stream,
} from "effect"
import * as ChildProcess from "effect/process/ChildProcess"
import { ChildProcessSpawner } from "effect/process/ChildProcessSpawner"
import * as RestartWindow from "./internal/restartWindow.ts"
import { adopted, describeExit, type ExitStatus, fromHandle, type Running, stopGracefully } from "./internal/running.ts"
import * as SupervisorConfig from "./SupervisorConfig.ts"
import {
  type RestartRecord,
  StoppedOnFailure,
  SupervisorEscalated,
  type TaskAlreadyCompleted,
  type TaskNotAssigned,
  type UnknownTask,
  UnknownWorker,
} from "./SupervisorError.ts"
import * as Event from "./SupervisorEvent.ts"
import * as Metrics from "./SupervisorMetrics.ts"
import { type StoredTask, type StoreFailure, SupervisorStore } from "./SupervisorStore.ts"
import * as WorkerHealth from "./WorkerHealth.ts"
import { WorkerSpec } from "./WorkerSpec.ts"

/**
 * Where a worker is: `starting` (spawning), `running`, `backoff` (waiting
 * to be restarted), `stopping`, `stopped`.
 *
 * @since 0.1.0
 * @category models
 */
export type WorkerStatus = "starting" | "running" | "backoff" | "stopping" | "stopped"

/**
 * A worker's health as the last checks found it (see `WorkerHealthChanged`).
 *
 * @since 0.1.0
 * @category models
 */
export type HealthState = "starting" | "healthy" | "degraded" | "unhealthy"

/**
 * A snapshot of one worker: status, current pid, health, the CPU % and RSS
 * of the last check, restart count (kept across supervisor restarts), and
 * when its current process started (`Clock` ms).
 *
 * @since 0.1.0
 * @category models
 */
export interface WorkerView {
  readonly id: string
  readonly status: WorkerStatus
  readonly pid: number | undefined
  readonly health: HealthState
  readonly cpuPercent: number | undefined
  readonly rssBytes: number | undefined
  readonly restarts: number
  readonly startedAt: number | undefined
}

/**
 * What the liveness probe is given: the worker and the pid it is checked on.
 *
 * @since 0.1.0
 * @category models
 */
export interface ProbeTarget {
  readonly workerId: string
  readonly pid: number
}

/**
 * Options of `make`:
 *
 * - `workers`: the specs (ids unique).
 * - `config`: overrides of `SupervisorConfig.defaults`.
 * - `probe`: an optional liveness probe run at every check (e.g. a heartbeat
 *   over the worker's pipe); failing, or not done within `probeTimeout`, is
 *   a breach like a threshold.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly workers: ReadonlyArray<WorkerSpec>
  readonly config?: Partial<SupervisorConfig.SupervisorConfig> | undefined
  readonly probe?: ((target: ProbeTarget) => Effect.Effect<void, unknown>) | undefined
}

/**
 * The supervisor:
 *
 * - `workers`: a snapshot of every worker.
 * - `addTask(taskId)`: queues a task and assigns it to the healthy worker
 *   with the fewest open tasks (it stays queued while none is healthy, and
 *   is assigned when one becomes healthy); adding a known id returns it as is.
 * - `assign(taskId, workerId)`: moves an open task to a given worker.
 * - `complete(taskId, workerId)`: marks it done, only by its holder and only
 *   once (`TaskNotAssigned`, `TaskAlreadyCompleted`).
 * - `tasks` / `tasksOf(workerId)`: task snapshots, open ones for a worker.
 * - `events` / `subscribe`: the `SupervisorEvent`s.
 * - `shutdown`: stops every worker gracefully and ends the supervisor.
 * - `terminated`: waits for the end: success after `shutdown`,
 *   `SupervisorEscalated`, or `StoppedOnFailure` under `stop-all`.
 *
 * @since 0.1.0
 * @category services
 */
export class WorkerSupervisor extends Context.Service<
  WorkerSupervisor,
  {
    readonly workers: Effect.Effect<ReadonlyArray<WorkerView>>
    readonly addTask: (taskId: string) => Effect.Effect<StoredTask, StoreFailure>
    readonly assign: (
      taskId: string,
      workerId: string,
    ) => Effect.Effect<void, UnknownWorker | UnknownTask | TaskAlreadyCompleted | StoreFailure>
    readonly complete: (
      taskId: string,
      workerId: string,
    ) => Effect.Effect<void, UnknownTask | TaskAlreadyCompleted | TaskNotAssigned | StoreFailure>
    readonly tasks: Effect.Effect<ReadonlyArray<StoredTask>, StoreFailure>
    readonly tasksOf: (workerId: string) => Effect.Effect<ReadonlyArray<string>, StoreFailure>
    readonly events: Stream.Stream<Event.SupervisorEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<Event.SupervisorEvent>, never, Scope.Scope>
    readonly shutdown: Effect.Effect<void>
    readonly terminated: Effect.Effect<void, SupervisorEscalated | StoppedOnFailure>
  }
>()("@fedguard/supervisor/WorkerSupervisor") {}

/** Why a run of a worker ended, reported to the coordinator. */
type Failure =
  | { readonly _tag: "Exited"; readonly status: ExitStatus }
  | { readonly _tag: "Unhealthy"; readonly breaches: ReadonlyArray<WorkerHealth.Breach> }
  | { readonly _tag: "SpawnFailed"; readonly reason: string }

const describeFailure = (failure: Failure): string => {
  switch (failure._tag) {
    case "Exited":
      return describeExit(failure.status)
    case "Unhealthy":
      return `unhealthy: ${failure.breaches.map(WorkerHealth.formatBreach).join("; ")}`
    case "SpawnFailed":
      return `could not start: ${failure.reason}`
  }
}

type Message =
  | {
      readonly _tag: "Failed"
      readonly workerId: string
      readonly incarnation: number
      readonly failure: Failure
      readonly startedAt: number
    }
  | { readonly _tag: "Healthy"; readonly workerId: string }
  | { readonly _tag: "Shutdown" }

/** How a run begins: spawn after a delay, or adopt a running process. */
type Plan =
  | {
      readonly _tag: "Spawn"
      readonly delay: Duration.Duration
      readonly restart: { readonly reason: string } | undefined
    }
  | { readonly _tag: "Adopt"; readonly pid: number; readonly startTimeTicks: number }

const encodeSpec = Schema.encodeSync(WorkerSpec)

/**
 * Builds a supervisor in the current Scope: adopts or starts every worker,
 * then supervises them until `shutdown`, an escalation, a `stop-all`, or the
 * Scope's end.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const config: SupervisorConfig.SupervisorConfig = { ...SupervisorConfig.defaults, ...options.config }
  const spawner = yield* ChildProcessSpawner
  const health = yield* WorkerHealth.WorkerHealth
  const store = yield* SupervisorStore
  const scope = yield* Scope.Scope
  const specs = new Map(options.workers.map((spec) => [spec.id, spec]))

  const pubsub = yield* PubSub.unbounded<Event.SupervisorEvent>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const publish = (event: Event.SupervisorEvent) => PubSub.publish(pubsub, event)
  const inbox = yield* Queue.unbounded<Message>()
  const done = yield* Deferred.make<void, SupervisorEscalated | StoppedOnFailure>()

  // The observable part of each worker, as values; the coordinator's own
  // bookkeeping (fibers, backoff steps) stays inside the coordinator below.
  const views = yield* Ref.make<ReadonlyMap<string, WorkerView>>(
    new Map(
      options.workers.map((spec) => [
        spec.id,
        {
          id: spec.id,
          status: "starting",
          pid: undefined,
          health: "starting",
          cpuPercent: undefined,
          rssBytes: undefined,
          restarts: 0,
          startedAt: undefined,
        } satisfies WorkerView,
      ]),
    ),
  )
  const update = (id: string, change: Partial<WorkerView>) =>
    Ref.updateAndGet(views, (map) => {
      const next = new Map(map)
      const current = map.get(id)
      if (current !== undefined) next.set(id, { ...current, ...change })
      return next
    }).pipe(
      Effect.flatMap((map) =>
        Metric.update(Metrics.workersRunning, [...map.values()].filter((v) => v.status === "running").length),
      ),
    )

  // ---------------------------------------------------------------------------
  // one run of one worker
  // ---------------------------------------------------------------------------

  const launch = Effect.fnUntraced(function* (spec: WorkerSpec, runScope: Scope.Scope) {
    const command = ChildProcess.make(spec.command, spec.args, {
      env: spec.env,
      extendEnv: true,
      ...(spec.cwd === undefined ? {} : { cwd: spec.cwd }),
      stdin: "ignore",
      stdout: "inherit",
      stderr: "inherit",
      // used by the spawner's own finalizer, the last resort if ours did not run
      killSignal: "SIGTERM",
      forceKillAfter: config.stopGrace,
    })
    const handle = yield* Scope.provide(spawner.spawn(command), runScope)
    const sample = yield* Effect.option(health.sample(handle.pid))
    return yield* fromHandle(handle, Option.getOrUndefined(Option.map(sample, (s) => s.startTimeTicks)), runScope)
  })

  /** The pid health is read from: the `pidFile` target once the launcher wrote a fresh one. */
  const targetOf = Effect.fnUntraced(function* (spec: WorkerSpec, running: Running) {
    if (spec.pidFile === undefined) return running.pid
    const written = yield* health.readPidFile(spec.pidFile)
    if (Option.isNone(written) || written.value === running.pid) return running.pid
    // A file left by an earlier run names a process older than this launcher.
    const target = yield* Effect.option(health.sample(written.value))
    if (
      Option.isSome(target) &&
      running.startTimeTicks !== undefined &&
      target.value.startTimeTicks < running.startTimeTicks
    ) {
      return running.pid
    }
    return written.value
  })

  /** Checks every `checkInterval` until `unhealthyChecks` breaching checks in a row. */
  const watchHealth = Effect.fnUntraced(function* (spec: WorkerSpec, running: Running) {
    const limits = SupervisorConfig.thresholdsFor(config, spec.health)
    let previous: WorkerHealth.ProcessSample | undefined
    let breaching = 0
    let state: HealthState = "starting"
    while (true) {
      const target = yield* targetOf(spec, running)
      const sampled = yield* Effect.result(health.sample(target))
      let breaches: Array<WorkerHealth.Breach> = []
      let known = true
      if (sampled._tag === "Failure") {
        const error = sampled.failure
        if (error._tag === "HealthUnsupported") {
          yield* Effect.logWarning(`${error.message}: only exits and the probe are watched for ${spec.id}`)
          return yield* Effect.never
        }
        if (error._tag === "ProcessGone" && target !== running.pid) breaches.push({ _tag: "TargetGone", pid: target })
        else {
          // The worker itself is gone: its exit is reported by the exit watch.
          known = false
          if (error._tag !== "ProcessGone") yield* Effect.logWarning(`health check of ${spec.id}: ${error.message}`)
        }
      } else if (target === running.pid && sampled.success.state === "Z") {
        // Our own child as a zombie has exited and waits for us to reap it: under load the check can
        // see that before the exit watch does. It is an exit, reported by the exit watch, not an
        // unhealthy worker (zombie detection is for `pidFile` targets, which we do not reap).
        known = false
      } else {
        const verdict = WorkerHealth.assess(previous, sampled.success, limits)
        previous = sampled.success
        breaches = [...verdict.breaches]
        yield* update(spec.id, { cpuPercent: verdict.cpuPercent, rssBytes: sampled.success.rssBytes })
      }
      if (options.probe !== undefined) {
        const probed = yield* options
          .probe({ workerId: spec.id, pid: running.pid })
          .pipe(Effect.timeoutOption(config.probeTimeout), Effect.result)
        if (probed._tag === "Failure") breaches.push({ _tag: "ProbeFailed", reason: String(probed.failure) })
        else if (Option.isNone(probed.success)) {
          breaches.push({ _tag: "ProbeFailed", reason: `no answer within ${Duration.format(config.probeTimeout)}` })
        }
        known = true
      }
      if (known) {
        breaching = breaches.length === 0 ? 0 : breaching + 1
        const next: HealthState =
          breaching === 0 ? "healthy" : breaching >= config.unhealthyChecks ? "unhealthy" : "degraded"
        if (next !== state) {
          const at = yield* Clock.currentTimeMillis
          yield* publish(
            new Event.WorkerHealthChanged({ workerId: spec.id, pid: target, from: state, to: next, breaches, at }),
          )
          yield* Metric.update(Metrics.healthChanges, 1)
          yield* update(spec.id, { health: next })
          if (next === "healthy") yield* Queue.offer(inbox, { _tag: "Healthy", workerId: spec.id })
          state = next
        }
        if (next === "unhealthy") return { _tag: "Unhealthy", breaches } satisfies Failure
      }
      yield* Effect.sleep(config.checkInterval)
    }
  })

  /**
   * One run of a worker, in its own Scope: wait the backoff, spawn (or
   * adopt), watch, report the failure, and stay until the coordinator
   * interrupts it; the interruption stops the process gracefully.
   */
  const run = (spec: WorkerSpec, incarnation: number, plan: Plan, restarts: number) =>
    Effect.scoped(
      Effect.gen(function* () {
        const runScope = yield* Scope.Scope
        if (plan._tag === "Spawn" && Duration.isPositive(plan.delay)) {
          yield* update(spec.id, { status: "backoff", pid: undefined })
          yield* Effect.sleep(plan.delay)
        }
        yield* update(spec.id, { status: "starting", health: "starting", cpuPercent: undefined, rssBytes: undefined })
        const launched: Exit.Exit<Running, unknown> =
          plan._tag === "Adopt"
            ? Exit.succeed(
                adopted(
                  health,
                  plan.pid,
                  plan.startTimeTicks,
                  Duration.min(config.checkInterval, Duration.millis(100)),
                ),
              )
            : yield* Effect.exit(launch(spec, runScope))
        const startedAt = yield* Clock.currentTimeMillis
        if (Exit.isFailure(launched)) {
          yield* update(spec.id, { status: "stopped", pid: undefined })
          const reason = String(Option.getOrUndefined(Exit.findErrorOption(launched)) ?? launched.cause)
          yield* Queue.offer(inbox, {
            _tag: "Failed",
            workerId: spec.id,
            incarnation,
            startedAt,
            failure: { _tag: "SpawnFailed", reason },
          })
          return yield* Effect.never
        }
        const running = launched.value
        let reported = false
        const reportExit = (status: ExitStatus, expected: boolean) =>
          Effect.gen(function* () {
            if (reported) return
            reported = true
            const at = yield* Clock.currentTimeMillis
            yield* publish(
              new Event.WorkerExited({
                workerId: spec.id,
                pid: running.pid,
                code: status.code,
                signal: status.signal,
                expected,
                at,
              }),
            )
            yield* Metric.update(Metrics.workerExits, 1)
            yield* update(spec.id, { status: "stopped", pid: undefined })
            yield* Effect.ignore(store.recordExit(spec.id, running.pid))
          })
        yield* Effect.addFinalizer(() =>
          Effect.gen(function* () {
            if (reported) return
            yield* update(spec.id, { status: "stopping" })
            const stopped = yield* stopGracefully(running, config.stopGrace)
            yield* reportExit(
              Option.getOrElse(stopped, () => ({})),
              true,
            )
          }),
        )
        yield* Effect.ignore(
          store.recordStart(
            spec.id,
            encodeSpec(spec),
            { pid: running.pid, startTimeTicks: running.startTimeTicks, startedAt },
            restarts,
          ),
        )
        yield* update(spec.id, { status: "running", pid: running.pid, startedAt, restarts })
        if (plan._tag === "Adopt") {
          yield* publish(new Event.WorkerAdopted({ workerId: spec.id, pid: running.pid, at: startedAt }))
          yield* Metric.update(Metrics.workersAdopted, 1)
        } else {
          yield* publish(new Event.WorkerStarted({ workerId: spec.id, pid: running.pid, incarnation, at: startedAt }))
          yield* Metric.update(Metrics.workersStarted, 1)
          if (plan.restart !== undefined) {
            yield* publish(
              new Event.WorkerRestarted({
                workerId: spec.id,
                pid: running.pid,
                restarts,
                delayMillis: Duration.toMillis(plan.delay),
                reason: plan.restart.reason,
                at: startedAt,
              }),
            )
            yield* Metric.update(Metrics.restarts, 1)
          }
        }
        const failure: Failure = yield* Effect.raceFirst(
          Effect.map(running.exit, (status): Failure => ({ _tag: "Exited", status })),
          watchHealth(spec, running),
        )
        if (failure._tag === "Exited") yield* reportExit(failure.status, false)
        yield* Queue.offer(inbox, { _tag: "Failed", workerId: spec.id, incarnation, failure, startedAt })
        return yield* Effect.never
      }),
    )

  // ---------------------------------------------------------------------------
  // the coordinator: the only fiber that starts, stops and restarts runs
  // ---------------------------------------------------------------------------

  const fibers = new Map<string, { readonly incarnation: number; readonly fiber: Fiber.Fiber<never, unknown> }>()
  const backoffSteps = new Map<string, (now: number) => Effect.Effect<Duration.Duration>>()
  const restartCounts = new Map<string, number>()
  let window: ReadonlyArray<RestartRecord> = []
  let ended = false

  const backoff = Schedule.exponential(config.backoffBase, config.backoffFactor).pipe(
    config.jitter ? Schedule.jittered : (schedule) => schedule,
    Schedule.modifyDelay(({ duration }) => Effect.succeed(Duration.min(duration, config.backoffCap))),
  )
  const nextDelay = Effect.fnUntraced(function* (workerId: string, upFor: number) {
    // A worker that stayed up for the intensity window starts over at the base.
    if (upFor >= Duration.toMillis(config.restartPeriod)) backoffSteps.delete(workerId)
    let step = backoffSteps.get(workerId)
    if (step === undefined) {
      const pull = yield* Schedule.toStep(backoff)
      step = (now) =>
        pull(now, undefined).pipe(
          Effect.map(([, delay]) => delay),
          Effect.catchCause(() => Effect.succeed(Duration.fromInputUnsafe(config.backoffCap))),
        )
      backoffSteps.set(workerId, step)
    }
    return yield* step(yield* Clock.currentTimeMillis)
  })

  const startRun = Effect.fnUntraced(function* (workerId: string, plan: Plan) {
    const spec = specs.get(workerId) as WorkerSpec
    const incarnation = (fibers.get(workerId)?.incarnation ?? 0) + 1
    const restarts = restartCounts.get(workerId) ?? 0
    const fiber = yield* Effect.forkIn(run(spec, incarnation, plan, restarts), scope)
    fibers.set(workerId, { incarnation, fiber })
  })

  const stopRuns = (workerIds: ReadonlyArray<string>) =>
    Effect.forEach(
      workerIds,
      (id) => {
        const current = fibers.get(id)
        return current === undefined ? Effect.void : Fiber.interrupt(current.fiber)
      },
      { concurrency: "unbounded", discard: true },
    )

  const restart = Effect.fnUntraced(function* (workerId: string, reason: string, delay: Duration.Duration) {
    yield* stopRuns([workerId])
    restartCounts.set(workerId, (restartCounts.get(workerId) ?? 0) + 1)
    yield* startRun(workerId, { _tag: "Spawn", delay, restart: { reason } })
  })

  const end = Effect.fnUntraced(function* (
    reason: "shutdown" | "stop-all" | "escalated",
    error: SupervisorEscalated | StoppedOnFailure | undefined,
  ) {
    ended = true
    yield* stopRuns([...specs.keys()])
    yield* publish(new Event.SupervisorStopped({ reason, at: yield* Clock.currentTimeMillis }))
    yield* error === undefined ? Deferred.succeed(done, undefined) : Deferred.fail(done, error)
  })

  const openTasks = Effect.map(store.tasks, (tasks) => tasks.filter((t) => t.state === "assigned"))

  /** The healthy running worker with the fewest open tasks, other than `except`. */
  const leastLoaded = Effect.fnUntraced(function* (except: string | undefined) {
    const map = yield* Ref.get(views)
    const open = yield* openTasks
    const candidates = [...map.values()].filter(
      (v) => v.id !== except && v.status === "running" && v.health === "healthy",
    )
    const load = (id: string) => open.filter((t) => t.workerId === id).length
    candidates.sort((a, b) => load(a.id) - load(b.id) || a.id.localeCompare(b.id))
    return candidates[0]?.id
  })

  const assignTo = Effect.fnUntraced(function* (taskId: string, workerId: string) {
    yield* store.assignTask(taskId, workerId)
    yield* publish(new Event.TaskAssigned({ taskId, workerId, at: yield* Clock.currentTimeMillis }))
  })

  const drainPending = Effect.gen(function* () {
    const pending = (yield* store.tasks).filter((t) => t.state === "pending")
    for (const task of pending) {
      const target = yield* leastLoaded(undefined)
      if (target === undefined) return
      yield* Effect.ignore(assignTo(task.id, target))
    }
  })

  const reassign = Effect.fnUntraced(function* (from: string) {
    const to = yield* leastLoaded(from)
    const moved = yield* store.moveTasks(from, to)
    if (moved.length === 0) return
    yield* publish(new Event.TasksReassigned({ from, to, taskIds: moved, at: yield* Clock.currentTimeMillis }))
    yield* Metric.update(Metrics.tasksReassigned, moved.length)
  })

  const onFailure = Effect.fnUntraced(function* (message: Extract<Message, { _tag: "Failed" }>) {
    const { workerId, failure } = message
    // A report from a run the coordinator already replaced (restart-all) is stale.
    if (ended || fibers.get(workerId)?.incarnation !== message.incarnation) return
    const reason = describeFailure(failure)
    const now = yield* Clock.currentTimeMillis
    yield* Effect.logWarning(`worker ${workerId} failed: ${reason}`)
    if (config.strategy === "stop-all") {
      return yield* end("stop-all", new StoppedOnFailure({ workerId, reason }))
    }
    window = RestartWindow.record(window, { workerId, at: now, reason }, Duration.toMillis(config.restartPeriod))
    if (RestartWindow.exceeds(window, config.maxRestarts)) {
      yield* publish(new Event.SupervisorEscalated({ history: window, at: now }))
      yield* Metric.update(Metrics.escalations, 1)
      yield* Effect.logError(
        `restart intensity exceeded (${window.length} in ${Duration.format(config.restartPeriod)})`,
      )
      return yield* end(
        "escalated",
        new SupervisorEscalated({
          maxRestarts: config.maxRestarts,
          periodMillis: Duration.toMillis(config.restartPeriod),
          history: window,
        }),
      )
    }
    const delay = yield* nextDelay(workerId, now - message.startedAt)
    switch (config.strategy) {
      case "restart-one":
        return yield* restart(workerId, reason, delay)
      case "reassign":
        yield* stopRuns([workerId])
        yield* Effect.ignore(reassign(workerId))
        return yield* restart(workerId, reason, delay)
      case "restart-all": {
        const others = [...specs.keys()].filter((id) => id !== workerId)
        yield* stopRuns([workerId, ...others])
        yield* restart(workerId, reason, delay)
        for (const id of others) yield* restart(id, `restart-all after ${workerId} ${reason}`, delay)
        return
      }
    }
  })

  const coordinator = Effect.gen(function* () {
    while (!ended) {
      const message = yield* Queue.take(inbox)
      switch (message._tag) {
        case "Failed":
          yield* onFailure(message)
          break
        case "Healthy":
          yield* Effect.ignore(drainPending)
          break
        case "Shutdown":
          yield* end("shutdown", undefined)
          break
      }
    }
  })

  // ---------------------------------------------------------------------------
  // start: adopt what still runs, start the rest
  // ---------------------------------------------------------------------------

  const stored = new Map((yield* store.workers).map((w) => [w.id, w]))
  for (const spec of options.workers) {
    const row = stored.get(spec.id)
    restartCounts.set(spec.id, row?.restarts ?? 0)
    let plan: Plan = { _tag: "Spawn", delay: Duration.zero, restart: undefined }
    if (row?.pid !== undefined && row.startTimeTicks !== undefined) {
      const sample = yield* Effect.option(health.sample(row.pid))
      const same = Option.isSome(sample) && sample.value.startTimeTicks === row.startTimeTicks
      const alive = same && sample.value.state !== "Z" && sample.value.state !== "X"
      if (alive && JSON.stringify(row.spec) === JSON.stringify(encodeSpec(spec))) {
        plan = { _tag: "Adopt", pid: row.pid, startTimeTicks: row.startTimeTicks }
      } else if (alive) {
        // Still running, but from another spec: replaced by a process of this one.
        const poll = Duration.min(config.checkInterval, Duration.millis(100))
        yield* stopGracefully(adopted(health, row.pid, row.startTimeTicks, poll), config.stopGrace)
      }
    }
    yield* startRun(spec.id, plan)
  }
  yield* Effect.forkIn(coordinator, scope)

  const knownWorker = (workerId: string) =>
    specs.has(workerId) ? Effect.void : Effect.fail(new UnknownWorker({ workerId }))

  return WorkerSupervisor.of({
    workers: Effect.map(Ref.get(views), (map) => [...map.values()]),
    addTask: Effect.fn("WorkerSupervisor.addTask")(function* (taskId: string) {
      const task = yield* store.addTask(taskId)
      if (task.state !== "pending") return task
      const target = yield* leastLoaded(undefined)
      if (target === undefined) return task
      yield* assignTo(taskId, target).pipe(Effect.catchTag(["UnknownTask", "TaskAlreadyCompleted"], () => Effect.void))
      return { ...task, state: "assigned" as const, workerId: target }
    }),
    assign: Effect.fn("WorkerSupervisor.assign")(function* (taskId: string, workerId: string) {
      yield* knownWorker(workerId)
      yield* assignTo(taskId, workerId)
    }),
    complete: Effect.fn("WorkerSupervisor.complete")(function* (taskId: string, workerId: string) {
      yield* store.completeTask(taskId, workerId)
      yield* publish(new Event.TaskCompleted({ taskId, workerId, at: yield* Clock.currentTimeMillis }))
    }),
    tasks: store.tasks,
    tasksOf: (workerId) =>
      Effect.map(openTasks, (open) => open.filter((t) => t.workerId === workerId).map((t) => t.id)),
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
    shutdown: Effect.flatMap(Queue.offer(inbox, { _tag: "Shutdown" }), () => Effect.ignore(Deferred.await(done))),
    terminated: Deferred.await(done),
  })
})

/**
 * The supervisor as a Layer; its workers stop when the Layer's Scope closes.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<WorkerSupervisor, StoreFailure, ChildProcessSpawner | WorkerHealth.WorkerHealth | SupervisorStore> =>
  Layer.effect(WorkerSupervisor, make(options))
