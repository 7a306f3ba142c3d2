/**
 * Lets a child process die with its parent. A parent that is SIGKILLed runs
 * no cleanup, so its children live on as orphans until something else (a
 * heartbeat timeout, a port) notices. The parent instead spawns the child
 * with a stdin pipe it never writes and sets `FEDGUARD_EXIT_WITH_PARENT=1`:
 * the kernel closes that pipe when the parent dies, whatever killed it, and
 * the child sees its stdin end.
 *
 * ```ts
 * const program = Trainer.run(settings).pipe(Effect.provide(ParentWatch.layer))
 * ```
 *
 * @since 0.2.0
 */
import { Config, Effect, Layer, Stdio, Stream } from "effect"

/**
 * The environment variable that turns the watch on (`1`, `true`, `yes`, `on`).
 * Off by default: a server started from a shell or a service manager may have
 * its stdin closed or at `/dev/null` from the start, which says nothing about
 * its parent.
 *
 * @since 0.2.0
 * @category constants
 */
export const envVar = "FEDGUARD_EXIT_WITH_PARENT"

/**
 * Completes when stdin ends (or fails): the parent is gone. Never completes
 * while the parent holds the pipe open.
 *
 * @since 0.2.0
 * @category watching
 */
export const parentGone: Effect.Effect<void, never, Stdio.Stdio> = Effect.gen(function* () {
  const stdio = yield* Stdio.Stdio
  yield* stdio.stdin.pipe(Stream.runDrain, Effect.ignore)
})

/**
 * A Layer that, when {@link envVar} is set, runs `onParentGone` once stdin
 * ends; it does nothing otherwise. The watch is a fiber in the Layer's scope,
 * so it stops with the program. Use {@link layer} in an app; this variant
 * lets tests observe the reaction instead of signalling the test runner.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerWith = (onParentGone: Effect.Effect<void>): Layer.Layer<never, never, Stdio.Stdio> =>
  Layer.effectDiscard(
    Effect.gen(function* () {
      const enabled = yield* Config.Boolean(envVar).pipe(
        Config.withDefault(false),
        Effect.orElseSucceed(() => false),
      )
      if (!enabled) return
      yield* parentGone.pipe(Effect.andThen(onParentGone), Effect.forkScoped)
    }),
  )

/**
 * {@link layerWith} whose reaction is a SIGTERM to this very process: the
 * parent is gone, so the process stops exactly as if the parent had sent
 * SIGTERM on its way out. Under `NodeRuntime.runMain` that interrupts the
 * program, so its scopes close (sockets, child processes) before it exits.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<never, never, Stdio.Stdio> = layerWith(
  Effect.sync(() => {
    process.kill(process.pid, "SIGTERM")
  }),
)
