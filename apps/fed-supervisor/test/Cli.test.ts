import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, type Scope } from "effect"
import { assertAllGone, fast, fleetFile, isAlive, ready, readyFile, start, startedPid, testWorker } from "./support.ts"

// These tests run the built CLI (`dist/bin.js`) with workers that are real processes: what is
// checked is what a user sees (exit codes, stderr, the event lines) and what is left in /proc.

const run = <A, E>(effect: Effect.Effect<A, E, NodeServices.NodeServices | Scope.Scope>) =>
  effect.pipe(Effect.scoped, Effect.provide(NodeServices.layer))

describe("fed-supervisor", () => {
  it.live("bad input exits 2 with one line naming the key, the flag or the file; nothing is started", () =>
    run(
      Effect.gen(function* () {
        const badKey = fleetFile({ workers: [testWorker("w", ["run"])], recovery: { maxRestarts: "five" } })
        const cases: ReadonlyArray<readonly [ReadonlyArray<string>, string]> = [
          [[badKey], "recovery.maxRestarts: Expected number"],
          [[fleetFile({ workers: [testWorker("w", ["run"], { cmd: "x" })] })], "workers[0].cmd: unknown key"],
          [[`${badKey}.missing`], "no such file"],
          [[badKey, "--outptu", "json"], "--outptu"],
          [[fleetFile({ workers: [testWorker("w", ["run"])] }), "--state", "/nonexistent-dir/state.db"], "--state"],
        ]
        yield* Effect.forEach(
          cases,
          ([args, says]) =>
            Effect.gen(function* () {
              const cli = yield* start(args)
              const code = yield* cli.exited()
              const stderr = yield* cli.stderr
              assert.strictEqual(code, 2, `${args.join(" ")}: ${stderr.join(" | ")}`)
              assert.include(stderr.join("\n"), says)
              assert.deepStrictEqual(yield* cli.events, [], "a worker was started")
            }),
          { concurrency: 2, discard: true },
        )
      }),
    ),
  )

  it.live("a worker killed with SIGKILL is restarted within its backoff, and fed-supervisor keeps running", () =>
    run(
      Effect.gen(function* () {
        const file = fleetFile({ workers: [testWorker("w", ["run"]), testWorker("other", ["run"])], ...fast })
        const cli = yield* start([file])
        const first = yield* startedPid(cli, "w")
        const other = yield* startedPid(cli, "other")
        process.kill(first, "SIGKILL")
        const restarted = yield* cli.waitFor("restart of w", (e) =>
          e._tag === "WorkerRestarted" && e.workerId === "w" ? e : undefined,
        )
        assert.strictEqual(restarted.reason, "killed by SIGKILL")
        assert.strictEqual(restarted.delayMillis, 100) // backoffBase, no jitter
        assert.notStrictEqual(restarted.pid, first)
        assert.isTrue(isAlive(restarted.pid))
        yield* cli.waitFor("the replacement's healthy check", (e) =>
          e._tag === "WorkerHealthChanged" && e.pid === restarted.pid && e.to === "healthy" ? true : undefined,
        )
        // the supervisor is still running, and the other worker was left alone (restart-one)
        assert.isTrue(yield* cli.handle.isRunning)
        assert.isTrue(isAlive(other))
        const events = yield* cli.events
        assert.isFalse(events.some((e) => e._tag === "SupervisorEscalated" || e._tag === "SupervisorStopped"))
        assert.isFalse(events.some((e) => e._tag === "WorkerRestarted" && e.workerId === "other"))
        yield* cli.handle.kill({ killSignal: "SIGTERM" })
        assert.strictEqual(yield* cli.exited(), 130)
        yield* assertAllGone([restarted.pid, other])
      }),
    ),
  )

  it.live("escalation: a worker that always exits at once ends the run with exit 1, the reason and the history", () =>
    run(
      Effect.gen(function* () {
        const file = fleetFile({
          workers: [testWorker("crasher", ["crash"]), testWorker("steady", ["run"])],
          ...fast,
          recovery: { ...fast.recovery, maxRestarts: 2, restartPeriod: "30 seconds", backoffBase: "50 millis" },
        })
        const cli = yield* start([file])
        const steady = yield* startedPid(cli, "steady")
        assert.strictEqual(yield* cli.exited(), 1)
        const stderr = (yield* cli.stderr).join("\n")
        assert.include(stderr, "escalated: 3 failures within 30s (recovery.maxRestarts is 2)")
        assert.strictEqual(stderr.match(/ {2}crasher {2}exited with code 1/g)?.length, 3, stderr)
        const events = yield* cli.events
        const escalated = events.find((e) => e._tag === "SupervisorEscalated")
        assert.strictEqual(escalated?._tag === "SupervisorEscalated" ? escalated.history.length : 0, 3)
        assert.isTrue(events.some((e) => e._tag === "SupervisorStopped" && e.reason === "escalated"))
        // every worker was stopped, the healthy one too
        const pids = events.flatMap((e) => (e._tag === "WorkerStarted" ? [e.pid] : []))
        assert.include(pids, steady)
        yield* assertAllGone(pids)
      }),
    ),
  )

  it.live("SIGTERM stops every worker gracefully, SIGKILL after stopGrace for one that ignores it; none is left", () =>
    run(
      Effect.gen(function* () {
        const [politeReady, stubbornReady] = [readyFile("polite"), readyFile("stubborn")]
        const file = fleetFile({
          workers: [
            testWorker("polite", ["run"], { env: { READY_FILE: politeReady } }),
            testWorker("stubborn", ["stubborn"], { env: { READY_FILE: stubbornReady } }),
          ],
          ...fast,
          recovery: { ...fast.recovery, stopGrace: "500 millis" },
        })
        const cli = yield* start([file])
        const polite = yield* startedPid(cli, "polite")
        const stubborn = yield* startedPid(cli, "stubborn")
        yield* ready(politeReady)
        yield* ready(stubbornReady)
        yield* cli.handle.kill({ killSignal: "SIGTERM" })
        assert.strictEqual(yield* cli.exited(), 130)
        yield* assertAllGone([polite, stubborn])
        const exits = (yield* cli.events).flatMap((e) => (e._tag === "WorkerExited" ? [e] : []))
        const byId = (id: string) => exits.find((e) => e.workerId === id)
        assert.deepStrictEqual([byId("polite")?.code, byId("polite")?.expected], [0, true])
        assert.deepStrictEqual([byId("stubborn")?.signal, byId("stubborn")?.expected], ["SIGKILL", true])
        assert.isTrue((yield* cli.events).some((e) => e._tag === "SupervisorStopped" && e.reason === "shutdown"))
      }),
    ),
  )

  it.live("a significant worker's exit 0 completes the run (exit 0); a plain worker's exit 0 is restarted", () =>
    run(
      Effect.gen(function* () {
        const file = fleetFile({
          workers: [
            testWorker("short", ["finish", "100"]),
            testWorker("server", ["finish", "1500"], { significant: true }),
          ],
          ...fast,
        })
        const cli = yield* start([file])
        const server = yield* startedPid(cli, "server")
        assert.strictEqual(yield* cli.exited(), 0)
        const events = yield* cli.events
        assert.isTrue(events.some((e) => e._tag === "WorkerRestarted" && e.workerId === "short"))
        assert.isFalse(events.some((e) => e._tag === "WorkerRestarted" && e.workerId === "server"))
        assert.include((yield* cli.stderr).join("\n"), "fleet complete: server exited with code 0")
        yield* assertAllGone([server, ...events.flatMap((e) => (e._tag === "WorkerStarted" ? [e.pid] : []))])
      }),
    ),
  )

  it.live("with --state, a fed-supervisor killed by SIGKILL is replaced by one that adopts its running worker", () =>
    run(
      Effect.gen(function* () {
        const file = fleetFile({ workers: [testWorker("w", ["run"])], ...fast })
        const state = `${file}.state.db`
        const first = yield* start([file, "--state", state])
        const pid = yield* startedPid(first, "w")
        // the worker outlives a supervisor killed by SIGKILL: whatever happens below, it is not left behind
        yield* Effect.addFinalizer(() => Effect.sync(() => isAlive(pid) && process.kill(pid, "SIGKILL")))
        yield* first.waitFor("healthy", (e) => (e._tag === "WorkerHealthChanged" ? true : undefined))
        yield* first.handle.kill({ killSignal: "SIGKILL" })
        assert.strictEqual(yield* first.exited("10 seconds", false), -1)
        // the worker outlived its supervisor: it is in its own process group
        assert.isTrue(isAlive(pid))
        const second = yield* start([file, "--state", state])
        const adopted = yield* second.waitFor("adoption", (e) => (e._tag === "WorkerAdopted" ? e : undefined))
        assert.strictEqual(adopted.pid, pid)
        assert.isFalse(
          (yield* second.events).some((e) => e._tag === "WorkerStarted"),
          "a second copy was started",
        )
        yield* second.handle.kill({ killSignal: "SIGTERM" })
        assert.strictEqual(yield* second.exited(), 130)
        yield* assertAllGone([pid])
      }),
    ),
  )

  it.live("without --state nothing is adopted: a new fed-supervisor starts its own worker", () =>
    run(
      Effect.gen(function* () {
        const file = fleetFile({ workers: [testWorker("w", ["run"])], ...fast })
        const first = yield* start([file])
        const pid = yield* startedPid(first, "w")
        // the worker outlives a supervisor killed by SIGKILL: whatever happens below, it is not left behind
        yield* Effect.addFinalizer(() => Effect.sync(() => isAlive(pid) && process.kill(pid, "SIGKILL")))
        yield* first.handle.kill({ killSignal: "SIGKILL" })
        assert.strictEqual(yield* first.exited("10 seconds", false), -1)
        const second = yield* start([file])
        const fresh = yield* startedPid(second, "w")
        assert.notStrictEqual(fresh, pid)
        assert.isFalse((yield* second.events).some((e) => e._tag === "WorkerAdopted"))
        yield* second.handle.kill({ killSignal: "SIGTERM" })
        yield* second.exited()
      }),
    ),
  )
})
