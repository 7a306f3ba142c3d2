import { fileURLToPath } from "node:url"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { type Cause, ConfigProvider, Deferred, Effect, Layer, Option, Queue, Stdio, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as ParentWatch from "../src/ParentWatch.ts"

const env = (vars: Record<string, string>) => ConfigProvider.layer(ConfigProvider.fromEnv({ env: vars }))

const fixture = fileURLToPath(new URL("./fixtures/exitWithParent.ts", import.meta.url))

/** Starts the fixture with a stdin pipe, then ends that pipe as a dying parent would. */
const spawnThenCloseStdin = (vars: Record<string, string>) =>
  Effect.gen(function* () {
    const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
    const child = yield* spawner.spawn(
      ChildProcess.make(process.execPath, [fixture], {
        env: vars,
        extendEnv: true,
        stdin: "pipe",
        stdout: "ignore",
        stderr: "ignore",
      }),
    )
    // Give the child time to start its watch before the pipe ends.
    yield* Effect.sleep("1500 millis")
    yield* Stream.empty.pipe(Stream.run(child.stdin))
    return child
  })

describe("ParentWatch", () => {
  it.effect("runs the reaction once stdin ends, and not while the parent holds it open", () =>
    Effect.gen(function* () {
      const stdin = yield* Queue.make<Uint8Array, Cause.Done>()
      const gone = yield* Deferred.make<void>()
      yield* Effect.gen(function* () {
        yield* Queue.offer(stdin, new Uint8Array([1]))
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isFalse(yield* Deferred.isDone(gone))
        yield* Queue.end(stdin)
        yield* Deferred.await(gone)
      }).pipe(
        Effect.provide(
          ParentWatch.layerWith(Deferred.succeed(gone, undefined).pipe(Effect.asVoid)).pipe(
            Layer.provide(Stdio.layerTest({ stdin: Stream.fromQueue(stdin) })),
            Layer.provide(env({ [ParentWatch.envVar]: "1" })),
          ),
        ),
      )
    }),
  )

  it.effect("does nothing without FEDGUARD_EXIT_WITH_PARENT, even when stdin is already closed", () =>
    Effect.gen(function* () {
      const gone = yield* Deferred.make<void>()
      yield* Effect.gen(function* () {
        for (let i = 0; i < 10; i++) yield* Effect.yieldNow
        assert.isFalse(yield* Deferred.isDone(gone))
      }).pipe(
        Effect.provide(
          ParentWatch.layerWith(Deferred.succeed(gone, undefined).pipe(Effect.asVoid)).pipe(
            Layer.provide(Stdio.layerTest({ stdin: Stream.empty })),
            Layer.provide(env({})),
          ),
        ),
      )
    }),
  )

  it.live(
    "a real process exits within 5 s of its stdin closing when the variable is set, and lives on when it is not",
    () =>
      Effect.gen(function* () {
        const [watched, unwatched] = yield* Effect.all(
          [spawnThenCloseStdin({ [ParentWatch.envVar]: "1" }), spawnThenCloseStdin({})],
          { concurrency: 2 },
        )
        const exited = yield* watched.exitCode.pipe(Effect.exit, Effect.timeoutOption("5 seconds"))
        assert.isTrue(Option.isSome(exited))
        assert.isFalse(yield* watched.isRunning)
        yield* Effect.sleep("1 second")
        assert.isTrue(yield* unwatched.isRunning)
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer)),
    20_000,
  )
})
