import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Fiber, Layer, Option, Random, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as SupervisorConfig from "../src/SupervisorConfig.ts"
import type { SupervisorEvent } from "../src/SupervisorEvent.ts"
import * as SupervisorStore from "../src/SupervisorStore.ts"
import * as WorkerSupervisor from "../src/WorkerSupervisor.ts"
import { type FakeOs, makeFakeOs, settle, spec } from "./support.ts"

const CONFIG: Partial<SupervisorConfig.SupervisorConfig> = {
  jitter: false,
  backoffBase: Duration.seconds(1),
  backoffFactor: 2,
  backoffCap: Duration.seconds(8),
  checkInterval: Duration.seconds(1),
  unhealthyChecks: 2,
  maxRestarts: 10,
  restartPeriod: Duration.seconds(60),
  stopGrace: Duration.seconds(5),
}

/** A supervisor over the fake OS and an in-memory store, with its events recorded. */
const start = (
  os: FakeOs,
  ids: ReadonlyArray<string>,
  config: Partial<SupervisorConfig.SupervisorConfig> = {},
  extra: Partial<WorkerSupervisor.Options> = {},
) =>
  Effect.gen(function* () {
    const store = yield* SupervisorStore.makeSqlite({ path: ":memory:" })
    const supervisor = yield* WorkerSupervisor.make({
      workers: ids.map((id) => spec(id)),
      config: { ...CONFIG, ...config },
      ...extra,
    }).pipe(Effect.provide(Layer.merge(os.layer, Layer.succeed(SupervisorStore.SupervisorStore, store))))
    const events: Array<SupervisorEvent> = []
    const stream = yield* supervisor.subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (e) => Effect.sync(() => events.push(e))))
    yield* settle
    return { supervisor, events, store }
  })

const advance = (millis: number) => Effect.flatMap(TestClock.adjust(Duration.millis(millis)), () => settle)

const spawns = (os: FakeOs) => os.entries("spawn")
const signals = (os: FakeOs) => os.log.filter((e) => e.what.startsWith("SIG")).map((e) => [e.at, e.what, e.command])

describe("WorkerSupervisor strategies", () => {
  it.effect("restart-one: restarts only the failed worker, 1 s after its exit and not before", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      yield* start(os, ["a", "b", "c"])
      assert.deepStrictEqual(spawns(os), [
        [0, "a"],
        [0, "b"],
        [0, "c"],
      ])
      yield* os.exit("a", 1)
      yield* advance(999)
      assert.strictEqual(spawns(os).length, 3)
      yield* advance(1)
      assert.deepStrictEqual(spawns(os).slice(3), [[1000, "a"]])
      assert.deepStrictEqual(signals(os), [])
    }).pipe(Effect.scoped),
  )

  it.effect("restart-all: stops the others (SIGTERM) at once, then starts all three after the backoff", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { events } = yield* start(os, ["a", "b", "c"], { strategy: "restart-all" })
      yield* os.exit("a", 3)
      yield* settle
      assert.deepStrictEqual(signals(os), [
        [0, "SIGTERM", "b"],
        [0, "SIGTERM", "c"],
      ])
      assert.strictEqual(spawns(os).length, 3)
      yield* advance(1000)
      assert.deepStrictEqual(spawns(os).slice(3), [
        [1000, "a"],
        [1000, "b"],
        [1000, "c"],
      ])
      const restarted = events.filter((e) => e._tag === "WorkerRestarted").map((e) => e.workerId)
      assert.deepStrictEqual(restarted, ["a", "b", "c"])
    }).pipe(Effect.scoped),
  )

  it.effect("stop-all: stops every worker and ends with StoppedOnFailure; nothing starts again", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor, events } = yield* start(os, ["a", "b"], { strategy: "stop-all" })
      const ended = yield* Effect.forkScoped(Effect.exit(supervisor.terminated))
      yield* os.exit("a", 1)
      yield* settle
      assert.deepStrictEqual(signals(os), [[0, "SIGTERM", "b"]])
      const exit = yield* Fiber.join(ended)
      assert.isTrue(Exit.isFailure(exit))
      const error = Option.getOrThrow(Exit.findErrorOption(exit))
      assert.strictEqual(error._tag, "StoppedOnFailure")
      if (error._tag !== "StoppedOnFailure") return
      assert.strictEqual(error.workerId, "a")
      assert.strictEqual(error.reason, "exited with code 1")
      yield* advance(60_000)
      assert.strictEqual(spawns(os).length, 2)
      assert.strictEqual(events.at(-1)?._tag, "SupervisorStopped")
    }).pipe(Effect.scoped),
  )

  it.effect("reassign: moves the failed worker's open tasks to the least-loaded healthy worker, then restarts it", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor, events } = yield* start(os, ["a", "b", "c"], { strategy: "reassign" })
      yield* supervisor.addTask("t0")
      yield* supervisor.assign("t0", "b")
      yield* supervisor.addTask("t1")
      yield* supervisor.assign("t1", "a")
      yield* supervisor.addTask("t2")
      yield* supervisor.assign("t2", "a")
      yield* supervisor.complete("t2", "a")
      yield* os.exit("a", 1)
      yield* settle
      const moved = events.find((e) => e._tag === "TasksReassigned")
      assert.deepStrictEqual(moved && { from: moved.from, to: moved.to, taskIds: moved.taskIds }, {
        from: "a",
        to: "c",
        taskIds: ["t1"],
      })
      assert.deepStrictEqual(yield* supervisor.tasksOf("c"), ["t1"])
      assert.deepStrictEqual(yield* supervisor.tasksOf("a"), [])
      // the slow worker's late completion is refused: the task is not done twice
      const late = yield* Effect.flip(supervisor.complete("t1", "a"))
      assert.strictEqual(late._tag, "TaskNotAssigned")
      yield* advance(1000)
      assert.deepStrictEqual(spawns(os).slice(3), [[1000, "a"]])
    }).pipe(Effect.scoped),
  )

  it.effect("restart-one does not move tasks: the restarted worker keeps them", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor, events } = yield* start(os, ["a", "b"])
      yield* supervisor.addTask("t1")
      yield* supervisor.assign("t1", "a")
      yield* os.exit("a", 1)
      yield* advance(1000)
      assert.isUndefined(events.find((e) => e._tag === "TasksReassigned"))
      assert.deepStrictEqual(yield* supervisor.tasksOf("a"), ["t1"])
    }).pipe(Effect.scoped),
  )
})

describe("WorkerSupervisor backoff and intensity", () => {
  it.effect("waits 1, 2, 4, 8, 8 s before consecutive restarts of a crash-looping worker (cap 8 s)", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      yield* start(os, ["a"])
      const delays: Array<number> = []
      for (let i = 0; i < 5; i++) {
        const before = spawns(os).at(-1)?.[0] as number
        yield* os.exit("a", 1)
        while (spawns(os).length === i + 1) yield* advance(250)
        delays.push((spawns(os).at(-1)?.[0] as number) - before)
      }
      assert.deepStrictEqual(delays, [1000, 2000, 4000, 8000, 8000])
    }).pipe(Effect.scoped),
  )

  it.effect("starts again at the base delay after a worker stayed up for restartPeriod", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      yield* start(os, ["a"])
      yield* os.exit("a", 1)
      yield* advance(1000)
      yield* os.exit("a", 1)
      yield* advance(2000) // second delay: 2 s
      assert.strictEqual(spawns(os).length, 3)
      yield* advance(60_000)
      yield* os.exit("a", 1)
      yield* advance(1000)
      assert.deepStrictEqual(spawns(os).at(-1), [64_000, "a"])
    }).pipe(Effect.scoped),
  )

  it.effect("jitter keeps each delay within 0.8 to 1.2 of its step", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      yield* start(os, ["a"], { jitter: true })
      yield* os.exit("a", 1)
      while (spawns(os).length === 1) yield* advance(10)
      const delay = spawns(os)[1]?.[0] as number
      assert.isAtLeast(delay, 800)
      assert.isAtMost(delay, 1210)
    }).pipe(Effect.scoped, Random.withSeed("supervisor")),
  )

  it.effect("escalates on the 4th restart within 60 s (maxRestarts 3): stops everyone, fails with the history", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor, events } = yield* start(os, ["a", "b"], { maxRestarts: 3, backoffCap: Duration.seconds(1) })
      const ended = yield* Effect.forkScoped(Effect.exit(supervisor.terminated))
      for (let i = 0; i < 3; i++) {
        yield* os.exit("a", 1)
        yield* advance(1000)
      }
      assert.isUndefined(ended.pollUnsafe())
      yield* os.exit("a", 2)
      yield* settle
      const exit = yield* Fiber.join(ended)
      const error = Option.getOrThrow(Exit.findErrorOption(exit))
      assert.strictEqual(error._tag, "SupervisorEscalated")
      if (error._tag !== "SupervisorEscalated") return
      assert.deepStrictEqual(
        error.history.map((r) => [r.workerId, r.at, r.reason]),
        [
          ["a", 0, "exited with code 1"],
          ["a", 1000, "exited with code 1"],
          ["a", 2000, "exited with code 1"],
          ["a", 3000, "exited with code 2"],
        ],
      )
      assert.deepStrictEqual(signals(os), [[3000, "SIGTERM", "b"]])
      assert.deepStrictEqual(
        events.filter((e) => e._tag === "SupervisorEscalated" || e._tag === "SupervisorStopped").map((e) => e._tag),
        ["SupervisorEscalated", "SupervisorStopped"],
      )
      yield* advance(10_000)
      assert.strictEqual(spawns(os).length, 5)
    }).pipe(Effect.scoped),
  )

  it.effect("never escalates when failures are spread out: 8 failures 20 s apart with at most 3 per 60 s", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor } = yield* start(os, ["a"], { maxRestarts: 3 })
      const ended = yield* Effect.forkScoped(supervisor.terminated)
      for (let i = 0; i < 8; i++) {
        yield* os.exit("a", 1)
        yield* advance(20_000)
      }
      assert.isUndefined(ended.pollUnsafe())
      assert.strictEqual(spawns(os).length, 9)
    }).pipe(Effect.scoped),
  )
})

describe("WorkerSupervisor stopping", () => {
  it.effect("graceful stop: SIGTERM, then SIGKILL only after the 5 s grace period", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor, events } = yield* start(os, ["a", "b"])
      os.only("a").ignoresSigterm = true
      const stopping = yield* Effect.forkScoped(supervisor.shutdown)
      yield* settle
      assert.deepStrictEqual(signals(os), [
        [0, "SIGTERM", "a"],
        [0, "SIGTERM", "b"],
      ])
      yield* advance(4999)
      assert.strictEqual(signals(os).length, 2)
      assert.isUndefined(stopping.pollUnsafe())
      yield* advance(1)
      assert.deepStrictEqual(signals(os)[2], [5000, "SIGKILL", "a"])
      yield* Fiber.join(stopping)
      const exits = events.filter((e) => e._tag === "WorkerExited")
      assert.deepStrictEqual(
        exits.map((e) => [e.workerId, e.signal, e.expected]),
        [
          ["b", "SIGTERM", true],
          ["a", "SIGKILL", true],
        ],
      )
      yield* supervisor.terminated
    }).pipe(Effect.scoped),
  )

  it.effect("closing the supervisor's Scope stops its workers the same way", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      yield* Effect.scoped(start(os, ["a"]))
      assert.deepStrictEqual(signals(os), [[0, "SIGTERM", "a"]])
      assert.strictEqual(os.processes.size, 0)
    }),
  )
})

describe("WorkerSupervisor health", () => {
  it.effect("restarts a worker whose RSS stays over its limit for 2 checks (SIGTERM, then a new process)", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { events } = yield* start(os, ["a"], { maxRssBytes: 100 * 1024 * 1024 })
      os.only("a").rssBytes = 200 * 1024 * 1024
      yield* advance(1000)
      assert.deepStrictEqual(signals(os), [])
      yield* advance(1000)
      assert.deepStrictEqual(signals(os), [[2000, "SIGTERM", "a"]])
      yield* advance(1000)
      assert.deepStrictEqual(spawns(os).at(-1), [3000, "a"])
      const changes = events.filter((e) => e._tag === "WorkerHealthChanged").map((e) => `${e.from}>${e.to}`)
      assert.deepStrictEqual(changes.slice(0, 3), ["starting>healthy", "healthy>degraded", "degraded>unhealthy"])
    }).pipe(Effect.scoped),
  )

  it.effect("does not restart a worker whose RSS is over its limit for one check only", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { events } = yield* start(os, ["a"], { maxRssBytes: 100 * 1024 * 1024 })
      os.only("a").rssBytes = 200 * 1024 * 1024
      yield* advance(1000)
      os.only("a").rssBytes = 10 * 1024 * 1024
      yield* advance(10_000)
      assert.deepStrictEqual(signals(os), [])
      assert.strictEqual(spawns(os).length, 1)
      const changes = events.filter((e) => e._tag === "WorkerHealthChanged").map((e) => e.to)
      assert.deepStrictEqual(changes, ["healthy", "degraded", "healthy"])
    }).pipe(Effect.scoped),
  )

  it.effect(
    "restarts a worker over its CPU limit; its own child seen as a zombie is an exit being reaped, not a breach",
    () =>
      Effect.gen(function* () {
        const os = yield* makeFakeOs
        yield* start(os, ["z", "hot"], { maxCpuPercent: 150 })
        // Our own child in state Z has exited and waits for its parent to reap it (a loaded machine
        // shows it before the exit event): the exit watch reports it, the health check does not
        // stop it. Zombies are breaches for `pidFile` targets (next tests).
        os.only("z").state = "Z"
        const hot = os.only("hot")
        for (let i = 0; i < 3; i++) {
          hot.cpuTicks += 200 // 2 s of CPU per 1 s check: 200 %
          yield* advance(1000)
        }
        assert.deepStrictEqual(
          signals(os).map(([, signal, command]) => `${signal} ${command}`),
          ["SIGTERM hot"],
        )
      }).pipe(Effect.scoped),
  )

  it.effect("a liveness probe that does not answer within probeTimeout is a breach", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      let answering = true
      const { events } = yield* start(
        os,
        ["a"],
        { probeTimeout: Duration.millis(500) },
        { probe: () => (answering ? Effect.void : Effect.never) },
      )
      yield* advance(3000)
      assert.deepStrictEqual(signals(os), [])
      answering = false
      yield* advance(4000)
      assert.strictEqual(signals(os)[0]?.[1], "SIGTERM")
      const unhealthy = events.find((e) => e._tag === "WorkerHealthChanged" && e.to === "unhealthy")
      assert.strictEqual(
        unhealthy?._tag === "WorkerHealthChanged" ? unhealthy.breaches[0]?._tag : undefined,
        "ProbeFailed",
      )
    }).pipe(Effect.scoped),
  )

  it.effect("a pid file target that is a zombie fails its launcher; a stale pid file is ignored", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const store = yield* SupervisorStore.makeSqlite({ path: ":memory:" })
      const old = yield* os.external("old-target")
      os.pidFiles.set("/run/a.pid", old.pid)
      yield* advance(5000)
      yield* WorkerSupervisor.make({
        workers: [spec("launcher", { pidFile: "/run/a.pid" })],
        config: CONFIG,
      }).pipe(Effect.provide(Layer.merge(os.layer, Layer.succeed(SupervisorStore.SupervisorStore, store))))
      yield* settle
      old.state = "Z" // older than the launcher: not its worker
      yield* advance(3000)
      assert.deepStrictEqual(signals(os), [])
      const target = yield* os.external("target")
      os.pidFiles.set("/run/a.pid", target.pid)
      target.state = "Z"
      yield* advance(2000)
      assert.deepStrictEqual(signals(os), [[10_000, "SIGTERM", "launcher"]])
    }).pipe(Effect.scoped),
  )
})

describe("WorkerSupervisor tasks", () => {
  it.effect("assigns a new task to the healthy worker with the fewest open tasks", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor } = yield* start(os, ["a", "b"])
      const assigned = []
      for (const id of ["t1", "t2", "t3"]) assigned.push((yield* supervisor.addTask(id)).workerId)
      assert.deepStrictEqual(assigned, ["a", "b", "a"])
      yield* supervisor.complete("t1", "a")
      const again = yield* supervisor.addTask("t1")
      assert.strictEqual(again.state, "completed")
      const twice = yield* Effect.flip(supervisor.complete("t1", "a"))
      assert.strictEqual(twice._tag, "TaskAlreadyCompleted")
      const unknown = yield* Effect.flip(supervisor.assign("t2", "zz"))
      assert.strictEqual(unknown._tag, "UnknownWorker")
    }).pipe(Effect.scoped),
  )

  it.effect("keeps a task queued while no worker is healthy, and assigns it when one becomes healthy", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const { supervisor } = yield* start(os, ["a"])
      yield* os.exit("a", 1)
      yield* settle
      const queued = yield* supervisor.addTask("t1")
      assert.strictEqual(queued.state, "pending")
      yield* advance(1000)
      assert.deepStrictEqual(yield* supervisor.tasksOf("a"), ["t1"])
    }).pipe(Effect.scoped),
  )
})

describe("WorkerSupervisor resume", () => {
  it.effect("adopts a recorded worker still running with the same start time; restarts a reused or dead pid", () =>
    Effect.gen(function* () {
      const os = yield* makeFakeOs
      const store = yield* SupervisorStore.makeSqlite({ path: ":memory:" })
      const live = yield* os.external("alive")
      const reused = yield* os.external("reused")
      const specs = [spec("alive"), spec("reused"), spec("dead")]
      const encoded = specs.map((s) => JSON.parse(JSON.stringify(s)))
      yield* store.recordStart(
        "alive",
        encoded[0],
        { pid: live.pid, startTimeTicks: live.startTimeTicks, startedAt: 0 },
        2,
      )
      yield* store.recordStart(
        "reused",
        encoded[1],
        { pid: reused.pid, startTimeTicks: reused.startTimeTicks - 1, startedAt: 0 },
        0,
      )
      yield* store.recordStart("dead", encoded[2], { pid: 4242, startTimeTicks: 7, startedAt: 0 }, 0)
      yield* store.addTask("done")
      yield* store.assignTask("done", "alive")
      yield* store.completeTask("done", "alive")
      yield* store.addTask("open")
      yield* store.assignTask("open", "alive")
      const supervisor = yield* WorkerSupervisor.make({ workers: specs, config: CONFIG }).pipe(
        Effect.provide(Layer.merge(os.layer, Layer.succeed(SupervisorStore.SupervisorStore, store))),
      )
      yield* settle
      assert.deepStrictEqual(
        spawns(os).map(([, command]) => command),
        ["reused", "dead"],
      )
      const views = yield* supervisor.workers
      const alive = views.find((v) => v.id === "alive")
      assert.deepStrictEqual([alive?.pid, alive?.restarts, alive?.status], [live.pid, 2, "running"])
      assert.deepStrictEqual(yield* supervisor.tasksOf("alive"), ["open"])
      assert.strictEqual((yield* supervisor.addTask("done")).state, "completed")
      // the adopted worker's exit is noticed from procfs and it is restarted
      yield* Effect.sync(() => os.processes.delete(live.pid))
      yield* advance(1100)
      assert.deepStrictEqual(spawns(os).at(-1)?.[1], "alive")
    }).pipe(Effect.scoped),
  )
})
