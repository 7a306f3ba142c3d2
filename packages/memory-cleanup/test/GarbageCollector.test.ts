import { execFileSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as vm from "node:vm"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as GarbageCollector from "../src/GarbageCollector.ts"

const global = globalThis as { gc?: unknown }

// Runs `self` with `globalThis.gc` set to `gc` (undefined: as without --expose-gc), then puts
// back what the test process had.
const withGlobalGc = <A, E, R>(gc: unknown, self: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.acquireUseRelease(
    Effect.sync(() => {
      const saved = global.gc
      if (gc === undefined) delete global.gc
      else global.gc = gc
      return saved
    }),
    () => self,
    (saved) =>
      Effect.sync(() => {
        if (saved === undefined) delete global.gc
        else global.gc = saved
      }),
  )

// Allocates ~40 MB that nothing references, and returns V8's heap used afterwards.
const allocateGarbage = (): number => {
  let garbage: Array<Array<number>> | undefined = Array.from({ length: 200 }, () => new Array(25_000).fill(1.5))
  garbage.length = 0
  garbage = undefined
  return process.memoryUsage().heapUsed
}

describe("GarbageCollector", () => {
  it.effect("uses globalThis.gc when the process was started with --expose-gc", () => {
    const calls: Array<string> = []
    return withGlobalGc(
      () => void calls.push("gc"),
      Effect.gen(function* () {
        const detected = yield* GarbageCollector.detect()
        assert.strictEqual(detected.source, "expose-gc")
        detected.gc()
        assert.deepStrictEqual(calls, ["gc"])
      }),
    )
  })

  it.effect(
    "without --expose-gc, enables a full GC at runtime that frees memory, and leaves later contexts alone",
    () =>
      withGlobalGc(
        undefined,
        Effect.gen(function* () {
          const detected = yield* GarbageCollector.detect()
          assert.strictEqual(detected.source, "runtime-flag")
          const before = allocateGarbage()
          detected.gc()
          const after = process.memoryUsage().heapUsed
          assert.isAbove(before - after, 20_000_000, `heap used ${before} → ${after}`)
          // The flag was set back: a context created now has no gc, and neither has this one.
          assert.strictEqual(vm.runInNewContext("typeof gc"), "undefined")
          assert.isUndefined(global.gc)
        }),
      ),
  )

  it.effect("with enableAtRuntime off and no --expose-gc, fails with GcUnavailable saying how to enable it", () =>
    withGlobalGc(
      undefined,
      Effect.gen(function* () {
        const collector = yield* GarbageCollector.make({ enableAtRuntime: false })
        const error = yield* Effect.flip(collector.collect)
        assert.strictEqual(error._tag, "GcUnavailable")
        assert.include(error.reason, "--expose-gc")
        assert.include(error.message, "full GC unavailable")
      }),
    ),
  )

  it.effect("layerUnavailable fails every collect with its reason", () =>
    Effect.gen(function* () {
      const collector = yield* GarbageCollector.GarbageCollector
      const error = yield* Effect.flip(collector.collect)
      assert.strictEqual(error.reason, "forced GC is not allowed here")
    }).pipe(Effect.provide(GarbageCollector.layerUnavailable("forced GC is not allowed here"))),
  )

  // The real layers in a real `node --expose-gc` (Node runs the TypeScript sources directly), and
  // in one without the flag: the `gc` step of a run is `ok` either way.
  it.effect("runs the real GC step in node with --expose-gc and in node without it", () =>
    Effect.sync(() => {
      const script = [
        `import { Effect } from "effect"`,
        `import { GarbageCollector, MemoryCleanup } from "./src/index.ts"`,
        `const program = Effect.gen(function* () {`,
        `  const { source } = yield* GarbageCollector.detect()`,
        `  const cleanup = yield* MemoryCleanup.MemoryCleanup`,
        `  const event = yield* cleanup.run`,
        `  return { source, steps: event.steps.map((s) => s.name + ":" + s.status), rss: event.after.rss > 0 }`,
        `}).pipe(Effect.provide(MemoryCleanup.layer()))`,
        `console.log(JSON.stringify(await Effect.runPromise(program)))`,
      ].join("\n")
      const cwd = fileURLToPath(new URL("..", import.meta.url))
      const run = (flags: Array<string>) =>
        JSON.parse(
          execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
            cwd,
            encoding: "utf8",
            env: { ...process.env, NODE_OPTIONS: "" },
          })
            .trim()
            .split("\n")
            .at(-1) ?? "null",
        )
      assert.deepStrictEqual(run(["--expose-gc"]), { source: "expose-gc", steps: ["gc:ok"], rss: true })
      assert.deepStrictEqual(run([]), { source: "runtime-flag", steps: ["gc:ok"], rss: true })
    }),
  )
})
