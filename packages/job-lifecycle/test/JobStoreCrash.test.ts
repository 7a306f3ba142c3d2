import { spawn } from "node:child_process"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option } from "effect"
import * as JobStore from "../src/JobStore.ts"
import { count, tempDir, withRaw } from "./JobStoreSupport.ts"

const PACKAGE_DIR = join(import.meta.dirname, "..")
const KILL_AFTER_COMMITS = 15
const MODEL_BYTES = 2 * 1024 * 1024

// The child commits rounds of a 2 MiB model in a loop and prints each round
// once committed; most of its time is spent inside a commit, so the SIGKILL
// lands mid-commit.
const child = `
import { Effect } from "effect"
import * as JobStore from "./src/JobStore.ts"
const path = process.argv[1]
const model = new Uint8Array(${MODEL_BYTES})
await Effect.runPromise(Effect.scoped(Effect.gen(function* () {
  const store = yield* JobStore.makeSqlite({ path })
  const jobId = yield* store.createJob({ name: "crash" }, { jobId: "job-crash" })
  for (let round = 1; ; round++) {
    model.fill(round & 0xff)
    yield* store.commitRound(jobId, { round, record: { round }, model })
    process.stdout.write(round + "\\n")
  }
})))
`

/** Runs the child until it has printed `commits` rounds, then SIGKILLs it; the last printed round. */
const commitThenKill = (path: string, commits: number) =>
  Effect.callback<number, Error>((resume) => {
    const proc = spawn(process.execPath, ["--input-type=module", "-e", child, path], {
      cwd: PACKAGE_DIR,
      stdio: ["ignore", "pipe", "pipe"],
    })
    let printed = 0
    let stderr = ""
    const timer = setTimeout(() => {
      proc.kill("SIGKILL")
      resume(Effect.fail(new Error(`child committed ${printed} rounds in 30 s: ${stderr}`)))
    }, 30_000)
    proc.stderr.on("data", (chunk) => {
      stderr += String(chunk)
    })
    proc.stdout.on("data", (chunk) => {
      printed = Math.max(printed, ...String(chunk).trim().split("\n").map(Number))
      if (printed >= commits && proc.kill("SIGKILL")) {
        clearTimeout(timer)
        const last = printed
        proc.on("exit", (_, signal) =>
          resume(signal === "SIGKILL" ? Effect.succeed(last) : Effect.fail(new Error(`child exited: ${signal}`))),
        )
      }
    })
    proc.on("exit", (code, signal) => {
      if (signal !== "SIGKILL") {
        clearTimeout(timer)
        resume(Effect.fail(new Error(`child exited with ${code}: ${stderr}`)))
      }
    })
  })

describe("JobStore after a crash", () => {
  it.effect(
    "reopens a file whose writer was SIGKILLed mid-commit: intact, last round whole, no partial round",
    () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const path = join(dir, "state.db")
        const lastPrinted = yield* commitThenKill(path, KILL_AFTER_COMMITS)

        const store = yield* JobStore.makeSqlite({ path })
        const latest = Option.getOrThrow(yield* store.latest("job-crash"))
        // printed after its commit: the printed round is durable; the kill may
        // have come after one more commit but before its print
        assert.isAtLeast(latest.round, lastPrinted)
        assert.isAtMost(latest.round, lastPrinted + 1)
        assert.deepStrictEqual(latest.record, { round: latest.round })
        assert.strictEqual(latest.model.byteLength, MODEL_BYTES)
        assert.isTrue(latest.model.every((byte) => byte === (latest.round & 0xff)))
        const rounds = yield* store.rounds("job-crash")
        assert.deepStrictEqual(
          rounds.map((r) => r.round),
          Array.from({ length: latest.round }, (_, i) => i + 1),
        )
        yield* store.close
        withRaw(path, (db) => {
          assert.deepStrictEqual(db.prepare("PRAGMA integrity_check").all(), [{ integrity_check: "ok" }])
          assert.strictEqual(count(db, "SELECT count(*) AS n FROM checkpoints"), 2)
          assert.strictEqual(
            count(
              db,
              "SELECT count(*) AS n FROM checkpoints c LEFT JOIN rounds r USING (job_id, round) WHERE r.round IS NULL",
            ),
            0,
          )
        })
      }),
    60_000,
  )
})
