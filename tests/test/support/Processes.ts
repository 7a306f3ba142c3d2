/**
 * Test support: fed-server and fed-client as real OS processes, each owned by
 * the test's Scope (killed when it closes), with their stdout decoded into
 * the apps' typed events (`ServerEvent`, `ClientEvent`): tests read events,
 * never log strings.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { fileURLToPath } from "node:url"
import * as ClientEvent from "@fedguard/fed-client/ClientEvent"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Deferred, Effect, Option, Queue, type Scope, Stream } from "effect"

export const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))
export const clientBin = fileURLToPath(import.meta.resolve("@fedguard/fed-client/bin"))

/** A typed event with the time its line was read (epoch ms). */
export type Timed<E> = E & { readonly receivedAt: number }

export interface Running<E> {
  readonly process: ChildProcess
  /** Every stdout line that decodes as one of the app's events, in order. */
  readonly events: Stream.Stream<Timed<E>>
  /** Every event seen so far. */
  readonly seen: () => ReadonlyArray<Timed<E>>
  /** Every stdout line so far, raw (for tests about the log itself). */
  readonly lines: () => ReadonlyArray<string>
  readonly stderr: () => string
  readonly exitCode: Effect.Effect<number | null>
}

/** Spawns `node file args…` (extra `env` on top of ours); SIGKILLed when the scope closes. */
const start = <E>(
  file: string,
  args: ReadonlyArray<string>,
  fromLine: (line: string) => Option.Option<E>,
  env: Readonly<Record<string, string>> = {},
): Effect.Effect<Running<E>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const events = yield* Queue.unbounded<Timed<E>, import("effect").Cause.Done>()
    const seen: Array<Timed<E>> = []
    const raw: Array<string> = []
    const exited = yield* Deferred.make<number | null>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() =>
        spawn(process.execPath, [file, ...args], {
          stdio: ["ignore", "pipe", "pipe"],
          env: { ...process.env, ...env },
        }),
      ),
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
        raw.push(line)
        const event = fromLine(line)
        if (Option.isSome(event)) {
          const timed = Object.assign(Object.create(Object.getPrototypeOf(event.value)), event.value, {
            receivedAt: Date.now(),
          }) as Timed<E>
          seen.push(timed)
          Queue.offerUnsafe(events, timed)
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
      seen: () => seen,
      lines: () => raw,
      stderr: () => stderr,
      exitCode: Deferred.await(exited),
    }
  })

/** Runs a bin to its end with `args`: exit code and stderr. */
export const runToEnd = (file: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function* () {
    const running = yield* start(file, args, () => Option.none(), env)
    const code = yield* running.exitCode
    return { code, stderr: running.stderr() }
  }).pipe(Effect.scoped, Effect.timeout("30 seconds"))

/** The first event satisfying `predicate`; dies (with stderr) when the process ends first. */
export const waitFor = <E, B extends E>(
  running: Running<E>,
  predicate: ((event: E) => event is B) | ((event: E) => boolean),
): Effect.Effect<Timed<B>> =>
  running.events.pipe(
    Stream.filter((event) => predicate(event)),
    Stream.runHead,
    Effect.flatMap((found) =>
      Option.isSome(found)
        ? Effect.succeed(found.value as Timed<B>)
        : Effect.die(new Error(`process ended first; stderr: ${running.stderr()}`)),
    ),
  )

/** Narrows a server event by tag. */
export const is =
  <Tag extends ServerEvent.ServerEvent["_tag"]>(
    tag: Tag,
    extra: (event: Extract<ServerEvent.ServerEvent, { _tag: Tag }>) => boolean = () => true,
  ) =>
  (event: ServerEvent.ServerEvent): event is Extract<ServerEvent.ServerEvent, { _tag: Tag }> =>
    event._tag === tag && extra(event as Extract<ServerEvent.ServerEvent, { _tag: Tag }>)

/** fed-server on an ephemeral port with `secret` and the given flags. */
export const startServer = (secret: string, flags: ReadonlyArray<string>) =>
  // No state file unless a test names one: a server started in the test's directory would otherwise
  // resume (or refuse) another test's job from ./fedguard-state.db.
  start(serverBin, ["--port", "0", ...flags], ServerEvent.fromLine, {
    FED_SERVER_SECRET: secret,
    FED_SERVER_STATE: ":memory:",
  })

/** The port of a started server, from its `Listening` event. */
export const portOf = (server: Running<ServerEvent.ServerEvent>) =>
  Effect.map(waitFor(server, is("Listening")), (event) => event.port)

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
  start(
    clientBin,
    [
      "--server",
      `127.0.0.1:${port}`,
      "--id",
      options.id,
      "--shard-index",
      String(options.index),
      "--shard-count",
      String(options.count),
      ...(options.flags ?? []),
    ],
    ClientEvent.fromLine,
    { FED_CLIENT_SECRET: options.secret },
  )
