import { spawn, spawnSync } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as StateLock from "../src/StateLock.ts"

const stateFile = () => join(mkdtempSync(join(tmpdir(), "fed-lock-")), "state.db")

describe("StateLock: one server per state file", () => {
  it.effect("takes the lock with this pid for the Scope and removes it when the Scope closes", () =>
    Effect.gen(function* () {
      const path = stateFile()
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* StateLock.acquire(path)
          assert.strictEqual(readFileSync(`${path}.lock`, "utf8").trim(), String(process.pid))
        }),
      )
      assert.isFalse(existsSync(`${path}.lock`))
    }),
  )

  it.effect("refuses a state file whose lock a running process holds, and leaves that lock alone", () =>
    Effect.gen(function* () {
      const path = stateFile()
      const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"], { stdio: "ignore" })
      yield* Effect.addFinalizer(() => Effect.sync(() => other.kill("SIGKILL")))
      writeFileSync(`${path}.lock`, `${other.pid}\n`)
      const error = yield* Effect.flip(Effect.scoped(StateLock.acquire(path)))
      assert.strictEqual(error._tag, "StateInUse")
      assert.match(error.message, new RegExp(`in use by another fed-server \\(pid ${other.pid}\\)`))
      assert.strictEqual(readFileSync(`${path}.lock`, "utf8").trim(), String(other.pid))
    }).pipe(Effect.scoped),
  )

  it.effect("takes over the lock of a server that was killed (its pid no longer runs)", () =>
    Effect.gen(function* () {
      const path = stateFile()
      const dead = spawnSync(process.execPath, ["-e", "console.log(process.pid)"], { encoding: "utf8" })
      writeFileSync(`${path}.lock`, dead.stdout)
      yield* Effect.scoped(
        Effect.gen(function* () {
          yield* StateLock.acquire(path)
          assert.strictEqual(readFileSync(`${path}.lock`, "utf8").trim(), String(process.pid))
        }),
      )
    }),
  )

  it.effect("takes no lock for :memory:, and names the lock file when its directory is missing", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(StateLock.acquire(":memory:"))
      assert.isFalse(existsSync(":memory:.lock"))
      const error = yield* Effect.flip(Effect.scoped(StateLock.acquire("/nonexistent-dir/state.db")))
      assert.strictEqual(error._tag, "StateLockFailed")
      assert.match(error.message, /cannot write \/nonexistent-dir\/state\.db\.lock/)
    }),
  )
})
