import { type ChildProcess, spawn } from "node:child_process"
import { mkdtempSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Exit } from "effect"
import * as StateLock from "../src/StateLock.ts"

const stateFile = () => join(mkdtempSync(join(tmpdir(), "fed-lock-")), "state.db")

// The module under test, run in child processes (Node 24 strips the types).
const moduleUrl = new URL("../src/StateLock.ts", import.meta.url).href
const cwd = fileURLToPath(new URL("..", import.meta.url))

// A child process that takes the lock of `path` with StateLock (at `Date.now() >= at`), then
// prints "held FROM TO" (epoch ms, after holding it `holdMs`) or "refused <message>", and exits; `holdMs` < 0 holds
// it until killed, printing "locked".
const child = (path: string, options: { readonly at?: number; readonly holdMs: number }) =>
  spawn(
    process.execPath,
    [
      "--input-type=module",
      "-e",
      `import { Effect, Exit } from "effect"
       const StateLock = await import(${JSON.stringify(moduleUrl)})
       while (Date.now() < ${options.at ?? 0}) {}
       const hold = ${options.holdMs} < 0
         ? Effect.sync(() => { console.log("locked"); setInterval(() => {}, 1_000) }).pipe(Effect.andThen(Effect.never))
         : Effect.sync(() => { const t = Date.now(); while (Date.now() < t + ${options.holdMs}) {} console.log("held " + t + " " + Date.now()) })
       const exit = await Effect.runPromiseExit(Effect.scoped(Effect.andThen(StateLock.acquire(${JSON.stringify(path)}), hold)))
       if (Exit.isFailure(exit)) console.log("refused " + String(exit.cause))`,
    ],
    { cwd, stdio: ["ignore", "pipe", "inherit"] },
  )

const outputOf = (process: ChildProcess) =>
  Effect.callback<string>((resume) => {
    let out = ""
    process.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString()
    })
    process.on("exit", () => resume(Effect.succeed(out.trim())))
  })

// A server-like holder: takes the lock and holds it until killed.
const holder = (path: string) =>
  Effect.acquireRelease(
    Effect.gen(function* () {
      const process = child(path, { holdMs: -1 })
      const locked = yield* Deferred.make<void>()
      process.stdout?.on("data", (chunk: Buffer) => {
        if (chunk.toString().includes("locked")) Deferred.doneUnsafe(locked, Exit.void)
      })
      yield* Deferred.await(locked).pipe(Effect.timeout("20 seconds"))
      return process
    }),
    (process) => Effect.sync(() => process.kill("SIGKILL")),
  )

describe("StateLock: one server per state file", () => {
  it.effect(
    "holds the lock for the Scope: a second holder is refused meanwhile, and takes it once the Scope closes",
    () =>
      Effect.gen(function* () {
        const path = stateFile()
        yield* Effect.scoped(
          Effect.gen(function* () {
            yield* StateLock.acquire(path)
            const error = yield* Effect.flip(Effect.scoped(StateLock.acquire(path)))
            assert.strictEqual(error._tag, "StateInUse")
            assert.match(error.message, new RegExp(`in use by another fed-server \\(pid ${process.pid}\\)`))
          }),
        )
        yield* Effect.scoped(StateLock.acquire(path))
      }),
  )

  it.live("refuses a state file another running process holds, naming its pid", () =>
    Effect.gen(function* () {
      const path = stateFile()
      const other = yield* holder(path)
      const error = yield* Effect.flip(Effect.scoped(StateLock.acquire(path)))
      assert.strictEqual(error._tag, "StateInUse")
      assert.match(error.message, new RegExp(`\\(pid ${other.pid}\\)`))
    }).pipe(Effect.scoped),
  )

  it.live("the lock of a server killed with SIGKILL is free at once: the kernel released it", () =>
    Effect.gen(function* () {
      const path = stateFile()
      yield* Effect.scoped(
        Effect.gen(function* () {
          const other = yield* holder(path)
          const exited = yield* Deferred.make<void>()
          other.on("exit", () => Deferred.doneUnsafe(exited, Exit.void))
          other.kill("SIGKILL")
          yield* Deferred.await(exited).pipe(Effect.timeout("20 seconds"))
        }),
      )
      yield* Effect.scoped(StateLock.acquire(path))
    }),
  )

  it.effect("takes no lock for :memory:, and names the lock file when its directory is missing", () =>
    Effect.gen(function* () {
      yield* Effect.scoped(StateLock.acquire(":memory:"))
      const error = yield* Effect.flip(Effect.scoped(StateLock.acquire("/nonexistent-dir/state.db")))
      assert.strictEqual(error._tag, "StateLockFailed")
      assert.match(error.message, /cannot lock \/nonexistent-dir\/state\.db\.lock/)
    }),
  )

  it.live(
    "two processes racing for a free lock never both hold it",
    () =>
      Effect.gen(function* () {
        for (let i = 0; i < 3; i++) {
          const path = stateFile()
          const at = Date.now() + 800
          const results = yield* Effect.all(
            [0, 1].map(() => outputOf(child(path, { at, holdMs: 2_500 }))),
            { concurrency: "unbounded" },
          )
          // Held intervals [from, to] in epoch ms; under load the two may also run one after the other.
          const held = results
            .filter((r) => r.startsWith("held"))
            .map((r) => r.split(" ").slice(1).map(Number) as [number, number])
          assert.isAtLeast(held.length, 1, results.join(" | "))
          if (held.length === 2) {
            const [[a0, a1], [b0, b1]] = held as [[number, number], [number, number]]
            assert.isTrue(a1 <= b0 || b1 <= a0, `both held the lock at once: ${results.join(" | ")}`)
          } else {
            assert.isTrue(results.some((r) => r.startsWith("refused") && r.includes("in use by another fed-server")))
          }
        }
      }),
    // Three races of two processes that each hold the lock 2.5 s: about 12 s alone, over 30 s
    // under a load average of 24.
    90_000,
  )
})
