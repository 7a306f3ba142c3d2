// npm run bench:supervisor — what supervision costs and how fast it heals:
//   1. health-check cost per worker per check (two procfs reads + parsing) for 100 live
//      processes, side by side with a bare liveness probe (`kill(pid, 0)`);
//   2. time from a worker's SIGKILL to its replacement's first healthy check (median, p99
//      over 50 kills), with a 1 ms backoff and a 50 ms check interval.
// Last line: one JSON object.
import { spawn } from "node:child_process"
import { performance } from "node:perf_hooks"
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { SupervisorStore, WorkerHealth, WorkerSupervisor } from "@fedguard/supervisor"
import { Duration, Effect, Layer, References, Result, Stream } from "effect"

const WORKERS = 100
const ROUNDS = 50
const KILLS = 50

const quantile = (values: ReadonlyArray<number>, q: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number
}

const checkCost = Effect.gen(function* () {
  const children = Array.from({ length: WORKERS }, () => spawn("/bin/sleep", ["300"], { stdio: "ignore" }))
  yield* Effect.addFinalizer(() =>
    Effect.sync(() => {
      for (const c of children) c.kill("SIGKILL")
    }),
  )
  const pids = children.map((c) => c.pid as number)
  const time = (check: (pid: number) => void) => {
    const started = performance.now()
    for (let round = 0; round < ROUNDS; round++) for (const pid of pids) check(pid)
    return ((performance.now() - started) * 1000) / (ROUNDS * WORKERS)
  }
  time((pid) => WorkerHealth.readSampleSync(pid, 0)) // warm-up
  const sampleUs = time((pid) => {
    if (Result.isFailure(WorkerHealth.readSampleSync(pid, 0))) throw new Error(`no sample of ${pid}`)
  })
  const probeUs = time((pid) => process.kill(pid, 0))
  return { sampleUs, probeUs }
})

const healTimes = Effect.gen(function* () {
  const supervisor = yield* WorkerSupervisor.make({
    workers: [{ id: "w", command: "/bin/sleep", args: ["300"], env: {} }],
    config: {
      checkInterval: Duration.millis(50),
      backoffBase: Duration.millis(1),
      backoffFactor: 1,
      jitter: false,
      maxRestarts: 10 * KILLS,
    },
  })
  const healthy: Array<{ pid: number; at: number }> = []
  const events = yield* supervisor.subscribe
  yield* Effect.forkScoped(
    Stream.runForEach(events, (e) =>
      Effect.sync(() => {
        if (e._tag === "WorkerHealthChanged" && e.to === "healthy") healthy.push({ pid: e.pid, at: performance.now() })
      }),
    ),
  )
  const waitHealthy = (notPid: number) =>
    Effect.gen(function* () {
      while (true) {
        const found = healthy.find((h) => h.pid !== notPid)
        if (found !== undefined) return found
        yield* Effect.sleep(Duration.millis(1))
      }
    }).pipe(Effect.timeout("10 seconds"))
  const first = yield* waitHealthy(-1)
  let pid = first.pid
  const times: Array<number> = []
  for (let i = 0; i < KILLS; i++) {
    healthy.length = 0
    const killedAt = performance.now()
    process.kill(pid, "SIGKILL")
    const next = yield* waitHealthy(pid)
    times.push(next.at - killedAt)
    pid = next.pid
  }
  yield* supervisor.shutdown
  return times
}).pipe(Effect.provide(Layer.mergeAll(NodeServices.layer, WorkerHealth.layer, SupervisorStore.layerMemory)))

const program = Effect.gen(function* () {
  const { sampleUs, probeUs } = yield* checkCost
  const times = yield* healTimes
  const median = quantile(times, 0.5)
  const p99 = quantile(times, 0.99)
  console.log(`health check, ${WORKERS} live processes x ${ROUNDS} rounds`)
  console.log(`  procfs sample (stat + status): ${sampleUs.toFixed(1)} us per worker per check`)
  console.log(
    `  bare kill(pid, 0) probe:       ${probeUs.toFixed(1)} us  (sample/probe ${(sampleUs / probeUs).toFixed(1)}x)`,
  )
  console.log(`SIGKILL -> replacement healthy, ${KILLS} kills (backoff 1 ms, checks every 50 ms)`)
  console.log(`  median ${median.toFixed(1)} ms   p99 ${p99.toFixed(1)} ms   max ${Math.max(...times).toFixed(1)} ms`)
  console.log(
    JSON.stringify({
      bench: "supervisor",
      workers: WORKERS,
      checkUsPerWorker: Number(sampleUs.toFixed(2)),
      probeUsPerWorker: Number(probeUs.toFixed(2)),
      kills: KILLS,
      healMedianMs: Number(median.toFixed(1)),
      healP99Ms: Number(p99.toFixed(1)),
    }),
  )
}).pipe(Effect.scoped)

NodeRuntime.runMain(program.pipe(Effect.provideService(References.MinimumLogLevel, "Error")))
