/**
 * The job store's cost on the round path and at restart, on a SQLite state
 * file in a temporary directory (`JobStore.layerSqlite` defaults: WAL,
 * `synchronous = FULL`, 2 checkpoints kept).
 *
 * Commit: time of `commitRound` (the round record and the model checkpoint in
 * one transaction, pruning the checkpoint of round n-2) for models of
 * 31 KiB, 800 KiB and 23 MiB of float32 bytes, median and p99 over the
 * rounds. Resume: time to open the state file and read `latest` (the last
 * round with its 800 KiB model, sha256 verified) from a file with 1,000
 * committed rounds, median of 5 opens. The last line is one JSON object.
 *
 *   node benchmarks/dist/store.js
 */
import { mkdtempSync, rmSync, statSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { performance } from "node:perf_hooks"
import { NodeRuntime } from "@effect/platform-node"
import * as JobStore from "@fedguard/job-lifecycle/JobStore"
import { Effect, Option, References } from "effect"

const KiB = 1024
const MiB = 1024 * KiB
const SIZES = [
  { label: "31KiB", bytes: 31 * KiB, rounds: 300 },
  { label: "800KiB", bytes: 800 * KiB, rounds: 200 },
  { label: "23MiB", bytes: 23 * MiB, rounds: 40 },
] as const
const RESUME_ROUNDS = 1_000
const RESUME_MODEL_BYTES = 800 * KiB
const RESUME_OPENS = 5

const percentile = (sorted: ReadonlyArray<number>, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!
const fmt = (ms: number) => ms.toFixed(2)
const modelOf = (bytes: number, round: number) => new Uint8Array(bytes).fill(round & 0xff)

const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "fedguard-bench-store-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
)

const timed = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const start = performance.now()
    const value = yield* effect
    return [performance.now() - start, value] as const
  })

const commits = Effect.fnUntraced(function* (dir: string, size: (typeof SIZES)[number]) {
  const path = join(dir, `commit-${size.label}.db`)
  const store = yield* JobStore.makeSqlite({ path })
  const jobId = yield* store.createJob({ name: `bench-${size.label}` })
  const models = [modelOf(size.bytes, 1), modelOf(size.bytes, 2)]
  const times: Array<number> = []
  for (let round = 1; round <= size.rounds; round++) {
    const [ms] = yield* timed(
      store.commitRound(jobId, { round, record: { round, loss: 1 / round }, model: models[round % 2]! }),
    )
    times.push(ms)
  }
  yield* store.close
  const sorted = times.sort((a, b) => a - b)
  const result = { median: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1)! }
  console.log(
    `commit ${size.label}: median ${fmt(result.median)} ms, p99 ${fmt(result.p99)} ms, max ${fmt(result.max)} ms (${size.rounds} rounds, file ${(statSync(path).size / MiB).toFixed(1)} MiB)`,
  )
  return result
})

const resume = Effect.fnUntraced(function* (dir: string) {
  const path = join(dir, "resume.db")
  yield* Effect.scoped(
    Effect.gen(function* () {
      const store = yield* JobStore.makeSqlite({ path, synchronous: "normal" })
      const jobId = yield* store.createJob({ name: "bench-resume" }, { jobId: "job-resume" })
      for (let round = 1; round <= RESUME_ROUNDS; round++) {
        yield* store.commitRound(jobId, { round, record: { round }, model: modelOf(RESUME_MODEL_BYTES, round) })
      }
    }),
  )
  const times: Array<number> = []
  for (let i = 0; i < RESUME_OPENS; i++) {
    const [ms, latest] = yield* timed(
      Effect.scoped(Effect.flatMap(JobStore.makeSqlite({ path }), (store) => store.latest("job-resume"))),
    )
    if (Option.getOrThrow(latest).round !== RESUME_ROUNDS) return yield* Effect.die("resumed the wrong round")
    times.push(ms)
  }
  const median = percentile(
    times.sort((a, b) => a - b),
    50,
  )
  console.log(
    `resume (open + latest, 800 KiB model) from ${RESUME_ROUNDS} committed rounds: median ${fmt(median)} ms, max ${fmt(times.at(-1)!)} ms (${RESUME_OPENS} opens)`,
  )
  return median
})

const program = Effect.gen(function* () {
  const dir = yield* tempDir
  const commitP99Ms: Record<string, number> = {}
  for (const size of SIZES) {
    const result = yield* Effect.scoped(commits(dir, size))
    commitP99Ms[size.label] = Number(result.p99.toFixed(3))
  }
  const resumeMs = yield* resume(dir)
  console.log(JSON.stringify({ bench: "store", commitP99Ms, resumeMs: Number(resumeMs.toFixed(3)) }))
})

NodeRuntime.runMain(program.pipe(Effect.scoped, Effect.provideService(References.MinimumLogLevel, "Error")))
