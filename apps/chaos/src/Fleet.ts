/**
 * The real processes of one chaos run: fed-server and fed-client started
 * from their packages' built bins (`@fedguard/fed-server/bin`,
 * `@fedguard/fed-client/bin`) through `effect/process`, each owned by the
 * run's Scope (SIGKILLed when it closes, and ended by `ParentWatch` if the
 * campaign itself dies).
 *
 * A server's stdout is decoded line by line into its typed `ServerEvent`s
 * with the time of each line (the `time` field the server wrote), and its
 * RSS is sampled from `/proc/PID/status` every 100 ms. A client may run in
 * a network namespace (`ip netns exec NS node …`: the same pid after the
 * exec). Signals that do not end a process (SIGSTOP, SIGCONT) go straight
 * to its pid, since a handle's `kill` waits for the exit.
 *
 * @since 0.1.0
 */
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import * as ParentWatch from "@fedguard/app-kit/ParentWatch"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import {
  Cause,
  Clock,
  Deferred,
  Duration,
  Effect,
  Exit,
  Fiber,
  Option,
  PubSub,
  Schedule,
  Schema,
  Scope,
  Stream,
} from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import type { ClientLife, ServerLife, Timed } from "./RunRecord.ts"

const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))
const clientBin = fileURLToPath(import.meta.resolve("@fedguard/fed-client/bin"))

/**
 * A wait of the campaign ran out: `what` it waited for, and for how long.
 *
 * @since 0.1.0
 * @category errors
 */
export class WaitTimedOut extends Schema.TaggedError<WaitTimedOut>()("WaitTimedOut", {
  what: Schema.String,
  afterMs: Schema.Number,
}) {
  override get message(): string {
    return `no ${this.what} within ${this.afterMs} ms`
  }
}

/**
 * The server process ended while the campaign waited for `what`.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerEnded extends Schema.TaggedError<ServerEnded>()("ServerEnded", { what: Schema.String }) {
  override get message(): string {
    return `the server ended before ${this.what}`
  }
}

const parseLine = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Json)))

/**
 * Decodes one server stdout line into its event and the epoch milliseconds
 * of its `time` field; `None` for any other line.
 *
 * @since 0.1.0
 * @category decoding
 */
export const timedFromLine = (line: string): Option.Option<Timed> =>
  Option.flatMap(parseLine(line), (object) => {
    const at = typeof object.time === "string" ? Date.parse(object.time) : Number.NaN
    if (!Number.isFinite(at)) return Option.none()
    return Option.map(ServerEvent.lines.fromObject(object), (event) => ({ at, event }))
  })

/** The number in a `Key:   1234 kB` (status) or `key: 1234` (io) line of a /proc file. */
const fieldOf = (text: string, key: string): number => {
  const line = text.split("\n").find((l) => l.startsWith(`${key}:`))
  const value = line === undefined ? Number.NaN : Number.parseInt(line.slice(key.length + 1).trim(), 10)
  return Number.isFinite(value) ? value : 0
}

// A /proc file of a process that is gone (or was never there) reads as 0.
const procField = (pid: number, file: "status" | "io", key: string, scale: number): Effect.Effect<number> =>
  Effect.try(() => fieldOf(readFileSync(`/proc/${pid}/${file}`, "utf8"), key) * scale).pipe(
    Effect.orElseSucceed(() => 0),
  )

/**
 * The resident set size of `pid` in bytes (0 once it is gone).
 *
 * @since 0.1.0
 * @category processes
 */
export const rssOf = (pid: number): Effect.Effect<number> => procField(pid, "status", "VmRSS", 1024)

/**
 * Bytes `pid` has passed to write calls so far (sockets included), from
 * `/proc/PID/io`; 0 once it is gone.
 *
 * @since 0.1.0
 * @category processes
 */
export const writtenBy = (pid: number): Effect.Effect<number> => procField(pid, "io", "wchar", 1)

/**
 * Sends `signal` to `pid` and returns at once; false when there is no such
 * process any more.
 *
 * @since 0.1.0
 * @category processes
 */
export const signal = (pid: number, name: NodeJS.Signals): Effect.Effect<boolean> =>
  Effect.try(() => process.kill(pid, name)).pipe(Effect.orElseSucceed(() => false))

const childOptions = (env: Record<string, string>) =>
  ({
    extendEnv: true,
    env: { ...env, [ParentWatch.envVar]: "1" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
    killSignal: "SIGKILL",
  }) as const

const lines = <E>(bytes: Stream.Stream<Uint8Array, E>) => bytes.pipe(Stream.decodeText(), Stream.splitLines)

/**
 * One running fed-server:
 *
 * - `pid`; `port` (from its `Listening` event);
 * - `life()`: its events so far and how it ended, for the `RunRecord`;
 * - `waitFor(what, predicate, within)`: the first event (seen or to come)
 *   satisfying `predicate`; fails with `WaitTimedOut` or `ServerEnded`;
 * - `kill`: SIGKILL (recorded as the campaign's), returning once every line
 *   it wrote has been read;
 * - `ended`: waits for its exit and its last line.
 *
 * @since 0.1.0
 * @category models
 */
export interface Server {
  readonly pid: number
  readonly port: number
  readonly life: () => ServerLife
  readonly waitFor: (
    what: string,
    predicate: (event: ServerEvent.ServerEvent) => boolean,
    within: Duration.Input,
  ) => Effect.Effect<Timed, WaitTimedOut | ServerEnded>
  readonly kill: Effect.Effect<void>
  readonly ended: Effect.Effect<void>
  readonly peakRss: () => number
}

// The first event (already seen, or still to come) satisfying `predicate`.
const waiter =
  (events: ReadonlyArray<Timed>, hub: PubSub.PubSub<Timed>, stdoutDone: Deferred.Deferred<void>) =>
  (
    what: string,
    predicate: (event: ServerEvent.ServerEvent) => boolean,
    within: Duration.Input,
  ): Effect.Effect<Timed, WaitTimedOut | ServerEnded> =>
    Effect.gen(function* () {
      const subscription = yield* PubSub.subscribe(hub)
      const seen = events.find((timed) => predicate(timed.event))
      if (seen !== undefined) return seen
      const next = Stream.fromSubscription(subscription).pipe(
        Stream.filter((timed) => predicate(timed.event)),
        Stream.runHead,
      )
      // The last lines may reach `events` just before stdout ends: look once more then.
      const ended = Deferred.await(stdoutDone).pipe(
        Effect.andThen(Effect.sync(() => Option.fromNullishOr(events.find((timed) => predicate(timed.event))))),
      )
      const found = yield* Effect.raceFirst(next, ended).pipe(Effect.timeoutOption(within))
      if (Option.isNone(found)) {
        return yield* new WaitTimedOut({ what, afterMs: Duration.toMillis(Duration.fromInputUnsafe(within)) })
      }
      if (Option.isNone(found.value)) return yield* new ServerEnded({ what })
      return found.value.value
    }).pipe(Effect.scoped)

/**
 * Starts fed-server with `flags` (`--port PORT` first) and the secret in its
 * environment, and waits for its `Listening` event (up to 30 s).
 *
 * @since 0.1.0
 * @category processes
 */
export const startServer = Effect.fnUntraced(function* (options: {
  readonly port: number
  readonly secret: string
  readonly flags: ReadonlyArray<string>
}) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const command = ChildProcess.make(
    process.execPath,
    [serverBin, "--port", String(options.port), ...options.flags],
    childOptions({ FED_SERVER_SECRET: options.secret }),
  )
  const handle = yield* spawner.spawn(command).pipe(Effect.orDie)
  const pid = Number(handle.pid)
  const events: Array<Timed> = []
  const hub = yield* PubSub.unbounded<Timed>()
  const stdoutDone = yield* Deferred.make<void>()
  let stderrTail: ReadonlyArray<string> = []
  let exit: ServerLife["exit"] = "running"
  let killed = false
  let peak = 0
  yield* lines(handle.stdout).pipe(
    Stream.runForEach((line) =>
      Option.match(timedFromLine(line), {
        onNone: () => Effect.void,
        onSome: (timed) =>
          Effect.andThen(
            Effect.sync(() => {
              events.push(timed)
            }),
            PubSub.publish(hub, timed),
          ),
      }),
    ),
    Effect.ignore,
    Effect.ensuring(Deferred.succeed(stdoutDone, undefined)),
    Effect.forkScoped,
  )
  yield* lines(handle.stderr).pipe(
    Stream.runForEach((line) =>
      Effect.sync(() => {
        stderrTail = [...stderrTail, line].slice(-5)
      }),
    ),
    Effect.ignore,
    Effect.forkScoped,
  )
  const exited = yield* handle.exitCode.pipe(
    Effect.exit,
    Effect.flatMap((result) =>
      Effect.sync(() => {
        exit = Exit.isSuccess(result)
          ? { code: Number(result.value), signal: null }
          : { code: null, signal: killed ? "SIGKILL" : Cause.pretty(result.cause).split("\n")[0]! }
      }),
    ),
    Effect.forkScoped,
  )
  yield* rssOf(pid).pipe(
    Effect.tap((rss) =>
      Effect.sync(() => {
        peak = Math.max(peak, rss)
      }),
    ),
    Effect.repeat(Schedule.spaced("100 millis")),
    Effect.forkScoped,
  )

  const waitFor = waiter(events, hub, stdoutDone)

  const listening = yield* waitFor("listening", (event) => event._tag === "Listening", "30 seconds").pipe(Effect.orDie)
  const ended = Effect.andThen(Fiber.join(exited), Deferred.await(stdoutDone))
  return {
    pid,
    port: listening.event._tag === "Listening" ? listening.event.port : options.port,
    life: () => ({ events: [...events], exit, killed, stderrTail }),
    waitFor,
    kill: Effect.gen(function* () {
      killed = true
      yield* signal(pid, "SIGKILL")
      yield* ended
    }),
    ended,
    peakRss: () => peak,
  } satisfies Server
})

/**
 * One running fed-client: its id, pid, and `kill` (SIGKILL, waiting for
 * the exit). `exited` completes with its exit code (null after a signal).
 *
 * @since 0.1.0
 * @category models
 */
export interface Client {
  readonly id: string
  readonly pid: number
  readonly kill: Effect.Effect<void>
  readonly exited: Effect.Effect<number | null>
  /** Ends its process Scope (kills it if it still runs). */
  readonly release: Effect.Effect<void>
  /** Its id, pid, exit so far (`"running"`, else its code, null after a signal) and last stderr lines. */
  readonly life: () => ClientLife
}

/**
 * Starts fed-client `id` on shard `index` of `count`, joining `server`
 * (`host:port`), with extra `flags`; inside network namespace `netns` when
 * given. The client lives in a Scope of its own under the current one.
 *
 * @since 0.1.0
 * @category processes
 */
export const startClient = Effect.fnUntraced(function* (options: {
  readonly id: string
  readonly index: number
  readonly count: number
  readonly server: string
  readonly secret: string
  readonly flags: ReadonlyArray<string>
  readonly netns?: string | undefined
}) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const parent = yield* Effect.scope
  const scope = yield* Scope.fork(parent)
  const args = [
    clientBin,
    ...["--server", options.server, "--id", options.id],
    ...["--shard-index", String(options.index), "--shard-count", String(options.count)],
    ...options.flags,
  ]
  const command =
    options.netns === undefined
      ? ChildProcess.make(process.execPath, args, childOptions({ FED_CLIENT_SECRET: options.secret }))
      : ChildProcess.make(
          "ip",
          ["netns", "exec", options.netns, process.execPath, ...args],
          childOptions({ FED_CLIENT_SECRET: options.secret }),
        )
  const handle = yield* spawner.spawn(command).pipe(Scope.provide(scope), Effect.orDie)
  // Nobody reads a client's stdout: drain it so a full pipe never blocks it. Its stderr's last
  // lines are kept for a failing run's record (a client that died at startup says why there).
  let stderrTail: ReadonlyArray<string> = []
  let exit: ClientLife["exit"] = "running"
  yield* Stream.runDrain(handle.stdout).pipe(Effect.ignore, Effect.forkIn(scope))
  yield* lines(handle.stderr).pipe(
    Stream.runForEach((line) =>
      Effect.sync(() => {
        stderrTail = [...stderrTail, line].slice(-5)
      }),
    ),
    Effect.ignore,
    Effect.forkIn(scope),
  )
  const exited = yield* handle.exitCode.pipe(
    Effect.map((code): number | null => Number(code)),
    Effect.orElseSucceed(() => null),
    Effect.tap((code) =>
      Effect.sync(() => {
        exit = code
      }),
    ),
    Effect.forkIn(scope),
  )
  const pid = Number(handle.pid)
  return {
    id: options.id,
    pid,
    kill: Effect.andThen(signal(pid, "SIGKILL"), Fiber.join(exited)).pipe(Effect.asVoid),
    exited: Fiber.join(exited),
    release: Scope.close(scope, Exit.void),
    life: () => ({ id: options.id, pid, exit, stderrTail }),
  } satisfies Client
})

/**
 * The current epoch milliseconds (the `Clock`), for stamping faults.
 *
 * @since 0.1.0
 * @category time
 */
export const now: Effect.Effect<number> = Clock.currentTimeMillis
