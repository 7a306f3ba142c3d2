import { type ChildProcess as NodeChild, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Layer, Stream } from "effect"
import type { SupervisorEvent } from "../src/SupervisorEvent.ts"
import * as SupervisorStore from "../src/SupervisorStore.ts"
import * as WorkerHealth from "../src/WorkerHealth.ts"
import type { WorkerSpec } from "../src/WorkerSpec.ts"
import * as WorkerSupervisor from "../src/WorkerSupervisor.ts"

const PACKAGE_DIR = join(import.meta.dirname, "..")
const FAST = {
  checkInterval: Duration.millis(100),
  unhealthyChecks: 2,
  jitter: false,
  backoffBase: Duration.millis(200),
  stopGrace: Duration.seconds(2),
}
const Live = Layer.mergeAll(NodeServices.layer, WorkerHealth.layer, SupervisorStore.layerMemory)

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Runs a supervisor over real processes and returns it with its recorded events. */
const supervise = (workers: ReadonlyArray<WorkerSpec>, config: Partial<WorkerSupervisor.Options["config"]> = {}) =>
  Effect.gen(function* () {
    const supervisor = yield* WorkerSupervisor.make({ workers, config: { ...FAST, ...config } })
    const events: Array<SupervisorEvent> = []
    const stream = yield* supervisor.subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (e) => Effect.sync(() => events.push(e))))
    return { supervisor, events }
  })

/** Polls until `found` returns a value, for at most `within`. */
const waitFor = <A>(what: string, found: () => A | undefined, within: Duration.Input = "10 seconds") =>
  Effect.gen(function* () {
    while (true) {
      const value = found()
      if (value !== undefined) return value
      yield* Effect.sleep(Duration.millis(20))
    }
  }).pipe(
    Effect.timeoutOrElse({
      duration: within,
      orElse: () => Effect.die(new Error(`timed out waiting for ${what}`)),
    }),
  )

const node = (id: string, script: string, extra: Partial<WorkerSpec> = {}): WorkerSpec => ({
  id,
  command: process.execPath,
  args: ["-e", script],
  env: {},
  ...extra,
})

describe("WorkerSupervisor on real processes", () => {
  it.live(
    "restarts a worker killed with SIGKILL after the 200 ms backoff, with a new live process",
    () =>
      Effect.gen(function* () {
        const { events, supervisor } = yield* supervise([node("w", "setInterval(() => {}, 1000)")])
        const first = yield* waitFor("the first start", () => events.find((e) => e._tag === "WorkerStarted"))
        process.kill(first.pid, "SIGKILL")
        const exited = yield* waitFor("the exit", () => events.find((e) => e._tag === "WorkerExited"))
        assert.deepStrictEqual([exited.pid, exited.signal, exited.expected], [first.pid, "SIGKILL", false])
        const restarted = yield* waitFor("the restart", () => events.find((e) => e._tag === "WorkerRestarted"))
        assert.strictEqual(restarted.delayMillis, 200)
        assert.notStrictEqual(restarted.pid, first.pid)
        assert.isTrue(isAlive(restarted.pid))
        yield* waitFor("health", () =>
          events.find((e) => e._tag === "WorkerHealthChanged" && e.pid === restarted.pid && e.to === "healthy"),
        )
        yield* supervisor.shutdown
        assert.isFalse(isAlive(restarted.pid))
      }).pipe(Effect.scoped, Effect.provide(Live)),
    20_000,
  )

  it.live(
    "detects a zombie: a launcher whose worker exited unreaped (state Z in /proc) is restarted",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "supervisor-zombie-"))
        const pidFile = join(dir, "worker.pid")
        // `sleep 0` exits at once; `exec sleep` replaces the shell that should reap it: a zombie.
        const launcher: WorkerSpec = {
          id: "launcher",
          command: "/bin/sh",
          args: ["-c", `sleep 0 & echo $! > ${pidFile}; exec sleep 30`],
          env: {},
          pidFile,
        }
        const { events, supervisor } = yield* supervise([launcher])
        const unhealthy = yield* waitFor("the zombie", () =>
          events.find((e) => e._tag === "WorkerHealthChanged" && e.to === "unhealthy"),
        )
        assert.strictEqual(unhealthy._tag === "WorkerHealthChanged" && unhealthy.breaches[0]?._tag, "Zombie")
        yield* waitFor("the restart", () => events.find((e) => e._tag === "WorkerRestarted"))
        yield* supervisor.shutdown
        rmSync(dir, { recursive: true, force: true })
      }).pipe(Effect.scoped, Effect.provide(Live)),
    20_000,
  )

  it.live(
    "restarts a worker that allocates past its 100 MiB RSS limit, and leaves a small one alone",
    () =>
      Effect.gen(function* () {
        const grow =
          "const a = []; for (let i = 0; i < 10; i++) a.push(Buffer.alloc(16 * 1024 * 1024, 1)); setInterval(() => {}, 1000)"
        const { events, supervisor } = yield* supervise(
          [node("big", grow), node("small", "setInterval(() => {}, 1000)")],
          { maxRssBytes: 100 * 1024 * 1024 },
        )
        const unhealthy = yield* waitFor("the RSS breach", () =>
          events.find((e) => e._tag === "WorkerHealthChanged" && e.to === "unhealthy"),
        )
        assert.strictEqual(unhealthy._tag === "WorkerHealthChanged" && unhealthy.workerId, "big")
        assert.strictEqual(unhealthy._tag === "WorkerHealthChanged" && unhealthy.breaches[0]?._tag, "RssOver")
        const restarted = yield* waitFor("the restart", () => events.find((e) => e._tag === "WorkerRestarted"))
        assert.strictEqual(restarted.workerId, "big")
        const views = yield* supervisor.workers
        assert.strictEqual(views.find((v) => v.id === "small")?.restarts, 0)
        yield* supervisor.shutdown
      }).pipe(Effect.scoped, Effect.provide(Live)),
    20_000,
  )
})

interface Run {
  readonly child: NodeChild
  readonly lines: Array<Record<string, unknown>>
  readonly exited: Promise<number | null>
}

const runSupervisor = (dbPath: string): Run => {
  const child = spawn(process.execPath, [join("test", "fixtures", "supervise.ts"), dbPath], {
    cwd: PACKAGE_DIR,
    stdio: ["ignore", "pipe", "ignore"],
  })
  const lines: Array<Record<string, unknown>> = []
  let buffer = ""
  child.stdout?.on("data", (chunk) => {
    buffer += String(chunk)
    const parts = buffer.split("\n")
    buffer = parts.pop() ?? ""
    for (const part of parts) if (part.trim() !== "") lines.push(JSON.parse(part))
  })
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)))
  return { child, lines, exited }
}

const tagged = (run: Run, tag: string) => run.lines.filter((l) => l._tag === tag)

describe("a supervisor killed with SIGKILL", () => {
  it.live(
    "is restarted on its state file: adopts the same worker processes and finishes the queue, no task done twice",
    () =>
      Effect.gen(function* () {
        const dir = mkdtempSync(join(tmpdir(), "supervisor-crash-"))
        const dbPath = join(dir, "state.db")
        const pids: Array<number> = []
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL")
            rmSync(dir, { recursive: true, force: true })
          }),
        )
        const first = runSupervisor(dbPath)
        // Bounded waits are generous: a loaded 2-core machine takes seconds to start a Node process.
        yield* waitFor(
          "3 completed tasks",
          () => (tagged(first, "TaskCompleted").length >= 3 ? true : undefined),
          "30 seconds",
        )
        first.child.kill("SIGKILL")
        yield* Effect.promise(() => first.exited)
        const started = tagged(first, "WorkerStarted").map((l) => [l.workerId, l.pid] as [string, number])
        pids.push(...started.map(([, pid]) => pid))
        assert.strictEqual(started.length, 2)
        for (const [, pid] of started) assert.isTrue(isAlive(pid), "the workers outlive their supervisor")
        const doneBefore = (() => {
          const db = new DatabaseSync(dbPath, { readOnly: true })
          const rows = db.prepare("SELECT id FROM tasks WHERE completed_by IS NOT NULL").all() as Array<{ id: string }>
          db.close()
          return rows.map((r) => r.id)
        })()
        assert.isAtLeast(doneBefore.length, 3)

        const second = runSupervisor(dbPath)
        yield* waitFor(
          "the end of the queue",
          () => (tagged(second, "AllDone").length === 1 ? true : undefined),
          "30 seconds",
        )
        const code = yield* Effect.promise(() => second.exited)
        assert.strictEqual(code, 0)
        const adopted = tagged(second, "WorkerAdopted").map((l) => [l.workerId, l.pid])
        assert.sameDeepMembers(adopted, started)
        assert.deepStrictEqual(tagged(second, "WorkerStarted"), [])
        const doneAfter = tagged(second, "TaskCompleted").map((l) => l.taskId as string)
        assert.deepStrictEqual(
          doneAfter.filter((id) => doneBefore.includes(id)),
          [],
          "no task completed twice",
        )
        assert.sameMembers([...doneBefore, ...doneAfter], ["t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8"])
        for (const [, pid] of started) yield* waitFor(`the stop of ${pid}`, () => (isAlive(pid) ? undefined : true))
      }).pipe(Effect.scoped),
    90_000,
  )
})
