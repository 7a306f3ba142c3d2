/**
 * Test support: fed-server and fed-client as real OS processes, each owned by
 * the test's Scope (killed when it closes), with their stdout as JSON events.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import { Deferred, Effect, Option, Queue, Schema, type Scope, Stream } from "effect"

export const serverBin = fileURLToPath(new URL("../../dist/bin.js", import.meta.url))
export const clientBin = fileURLToPath(new URL("../../../fed-client/dist/bin.js", import.meta.url))

export interface Running {
  readonly process: ChildProcess
  /** Every stdout line that parses as a JSON object with an `event`. */
  readonly events: Stream.Stream<Record<string, unknown> & { readonly event: string }>
  readonly stderr: () => string
  readonly exitCode: Effect.Effect<number | null>
}

const EventLine = Schema.fromJsonString(Schema.Record(Schema.String, Schema.Json))

/** Spawns `node file args…`; the process is SIGKILLed when the scope closes. */
export const start = (file: string, args: ReadonlyArray<string>): Effect.Effect<Running, never, Scope.Scope> =>
  Effect.gen(function* () {
    const events = yield* Queue.unbounded<
      Record<string, unknown> & { readonly event: string },
      import("effect").Cause.Done
    >()
    const exited = yield* Deferred.make<number | null>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => spawn(process.execPath, [file, ...args], { stdio: ["ignore", "pipe", "pipe"] })),
      (child) => Effect.sync(() => child.exitCode === null && child.kill("SIGKILL")),
    )
    let stderr = ""
    let pending = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr += chunk.toString()
    })
    child.stdout?.on("data", (chunk: Buffer) => {
      pending += chunk.toString()
      const lines = pending.split("\n")
      pending = lines.pop() ?? ""
      for (const line of lines) {
        const parsed = Schema.decodeUnknownOption(EventLine)(line)
        if (Option.isSome(parsed) && typeof parsed.value.event === "string") {
          Queue.offerUnsafe(events, parsed.value as Record<string, unknown> & { readonly event: string })
        }
      }
    })
    child.on("exit", (code) => {
      Queue.endUnsafe(events)
      Deferred.doneUnsafe(exited, Effect.succeed(code))
    })
    // One item per pull: a reader that stops early (runHead) leaves the rest for the next reader.
    return {
      process: child,
      events: Stream.fromEffectRepeat(Queue.take(events)),
      stderr: () => stderr,
      exitCode: Deferred.await(exited),
    }
  })

/** Waits for the first event named `name` (bounded by the caller's timeout). */
export const waitFor = (running: Running, name: string) =>
  running.events.pipe(
    Stream.filter((e) => e.event === name),
    Stream.runHead,
    Effect.flatMap((found) =>
      Option.isSome(found)
        ? Effect.succeed(found.value)
        : Effect.die(new Error(`process ended before ${name}: ${running.stderr()}`)),
    ),
  )

/** fed-server on an ephemeral port with `secret` and the given flags. */
export const startServer = (secret: string, flags: ReadonlyArray<string>) =>
  start(serverBin, ["--port", "0", "--secret", secret, ...flags])

/** fed-client `id` holding shard `index` of `count`, joining the server on `port`. */
export const startClient = (
  port: number,
  options: {
    readonly id: string
    readonly index: number
    readonly count: number
    readonly secret: string
    readonly flags?: ReadonlyArray<string>
  },
) =>
  start(clientBin, [
    "--server",
    `127.0.0.1:${port}`,
    "--id",
    options.id,
    "--secret",
    options.secret,
    "--shard-index",
    String(options.index),
    "--shard-count",
    String(options.count),
    ...(options.flags ?? []),
  ])
