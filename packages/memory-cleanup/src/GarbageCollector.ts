/**
 * The full garbage collection step of the cleanup: a service, so that tests
 * script it and an application can say where a GC comes from.
 *
 * Node exposes a synchronous full GC as `globalThis.gc()` only when started
 * with `--expose-gc`. Without it, V8 still accepts the flag at runtime
 * (`v8.setFlagsFromString("--expose-gc")`): the process's own global object is
 * not changed, but a context created afterwards has `gc`, so
 * `vm.runInNewContext("gc")` returns a callable full GC. Measured on Node
 * 24.21 (main thread, worker threads, `--disallow-code-generation-from-strings`,
 * `--permission`, `--jitless`): it works and frees the same as `--expose-gc`.
 * Node documents `setFlagsFromString` after start-up as possibly unpredictable
 * ("or it may simply do nothing"), and runtimes that emulate `node:v8` may not
 * honour it (Deno threw `ReferenceError: gc is not defined` until
 * denoland/deno#34604), so `--expose-gc` stays the recommended way and the runtime route
 * is the fallback, which `enableAtRuntime: false` turns off. The flag is set
 * back to `--no-expose-gc` at once, so later `vm` contexts do not gain `gc`.
 *
 * @since 0.1.0
 */
import * as v8 from "node:v8"
import * as vm from "node:vm"
import { Context, Effect, Layer, Schema } from "effect"

/**
 * No full GC is available in this process; `reason` says why and how to
 * enable one. The cleanup reports its `gc` step as `skipped` with that
 * reason: a missing GC is a fact of the deployment, not a failure.
 *
 * @since 0.1.0
 * @category errors
 */
export class GcUnavailable extends Schema.TaggedError<GcUnavailable>()("GcUnavailable", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `full GC unavailable: ${this.reason}`
  }
}

/**
 * Where the GC came from: `expose-gc` (the process was started with
 * `--expose-gc`) or `runtime-flag` (enabled at runtime through
 * `v8.setFlagsFromString` and a new `vm` context).
 *
 * @since 0.1.0
 * @category models
 */
export type GcSource = "expose-gc" | "runtime-flag"

/**
 * A detected full GC: where it came from, and the function that runs one
 * (synchronously, on the calling thread).
 *
 * @since 0.1.0
 * @category models
 */
export interface DetectedGc {
  readonly source: GcSource
  readonly gc: () => void
}

/**
 * Options of the Node garbage collector: `enableAtRuntime` (default `true`)
 * allows the `v8.setFlagsFromString` fallback when the process was not
 * started with `--expose-gc`; with `false` only `--expose-gc` counts.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly enableAtRuntime?: boolean | undefined
}

/**
 * The garbage collector service: `collect` runs a full GC, or fails with
 * `GcUnavailable` when the process has none.
 *
 * @since 0.1.0
 * @category services
 */
export class GarbageCollector extends Context.Service<
  GarbageCollector,
  {
    readonly collect: Effect.Effect<void, GcUnavailable>
  }
>()("@fedguard/memory-cleanup/GarbageCollector") {}

const howToEnable = "start Node with --expose-gc (node --expose-gc app.js, or NODE_OPTIONS=--expose-gc)"

const describe = (error: unknown): string => (error instanceof Error ? error.message : String(error))

/**
 * Finds a full GC: `globalThis.gc` when the process was started with
 * `--expose-gc`; otherwise, unless `enableAtRuntime` is `false`, sets
 * `--expose-gc` through `v8.setFlagsFromString`, takes `gc` from a new `vm`
 * context, and sets `--no-expose-gc` again. Fails with `GcUnavailable` (the
 * reason and how to enable it) when neither gives a function.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { GarbageCollector } from "@fedguard/memory-cleanup"
 *
 * // At start-up: say whether the cleanup will be able to collect.
 * const report = GarbageCollector.detect().pipe(
 *   Effect.flatMap(({ source }) => Effect.logInfo(`full GC available (${source})`)),
 *   Effect.catchTag("GcUnavailable", (e) => Effect.logWarning(e.message)),
 * )
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const detect = (options: Options = {}): Effect.Effect<DetectedGc, GcUnavailable> =>
  Effect.suspend((): Effect.Effect<DetectedGc, GcUnavailable> => {
    const exposed: unknown = (globalThis as { gc?: unknown }).gc
    if (typeof exposed === "function") {
      return Effect.succeed({ source: "expose-gc", gc: () => void exposed() })
    }
    if (options.enableAtRuntime === false) {
      return Effect.fail(
        new GcUnavailable({ reason: `globalThis.gc is not exposed and enableAtRuntime is off; ${howToEnable}` }),
      )
    }
    return Effect.try({
      try: (): unknown => {
        v8.setFlagsFromString("--expose-gc")
        return vm.runInNewContext("gc")
      },
      catch: (error) =>
        new GcUnavailable({
          reason: `enabling gc at runtime through v8.setFlagsFromString failed (${describe(error)}); ${howToEnable}`,
        }),
    }).pipe(
      Effect.ensuring(Effect.sync(() => v8.setFlagsFromString("--no-expose-gc"))),
      Effect.flatMap((gc) =>
        typeof gc === "function"
          ? Effect.succeed<DetectedGc>({ source: "runtime-flag", gc: () => void gc() })
          : Effect.fail(
              new GcUnavailable({
                reason: `v8.setFlagsFromString("--expose-gc") did not expose gc to new contexts; ${howToEnable}`,
              }),
            ),
      ),
    )
  })

/**
 * The Node garbage collector. Detection (`detect`) runs once, at the first
 * `collect`, so a cleanup configured with `gc: false` never touches V8's
 * flags; its outcome is logged once (info: where the GC comes from; warning:
 * why there is none) and kept.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options = {}): Effect.Effect<GarbageCollector["Service"]> =>
  Effect.map(
    Effect.cached(
      detect(options).pipe(
        Effect.tap(({ source }) =>
          Effect.logInfo(
            source === "expose-gc"
              ? "memory cleanup: full GC from --expose-gc"
              : "memory cleanup: full GC enabled at runtime through v8.setFlagsFromString('--expose-gc')",
          ),
        ),
        Effect.tapError((error) => Effect.logWarning(`memory cleanup: ${error.message}`)),
      ),
    ),
    (detected) => GarbageCollector.of({ collect: Effect.flatMap(detected, ({ gc }) => Effect.sync(gc)) }),
  )

/**
 * The Node garbage collector as a Layer (see `make`).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<GarbageCollector> =>
  Layer.effect(GarbageCollector, make(options))

/**
 * A garbage collector that never collects: every `collect` fails with
 * `GcUnavailable` and `reason`. For runtimes where no GC may be forced, and
 * for tests of the skipped step.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerUnavailable = (reason: string): Layer.Layer<GarbageCollector> =>
  Layer.succeed(GarbageCollector, GarbageCollector.of({ collect: Effect.fail(new GcUnavailable({ reason })) }))
