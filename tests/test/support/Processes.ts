/**
 * Test support: fed-server and fed-client as real OS processes, each owned by
 * the test's Scope (killed when it closes), with their stdout decoded into
 * the apps' typed events (`ServerEvent`, `ClientEvent`): tests read events,
 * never log strings. `readStateFile` reads what a (killed) server left in its
 * state file, with `node:sqlite` rather than the server's own code.
 */
import { type ChildProcess, spawn } from "node:child_process"
import { DatabaseSync } from "node:sqlite"
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
  /**
   * Done when the process's stdout and stderr have closed: every line it wrote has been read
   * (`exitCode` can come first, with output still in the pipe).
   */
  readonly closed: Effect.Effect<void>
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
    const closed = yield* Deferred.make<void>()
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
    child.on("close", () => Deferred.doneUnsafe(closed, Effect.void))
    // One item per pull: a reader that stops early (runHead) leaves the rest for the next reader.
    return {
      process: child,
      events: Stream.fromEffectRepeat(Queue.take(events)),
      seen: () => seen,
      lines: () => raw,
      stderr: () => stderr,
      exitCode: Deferred.await(exited),
      closed: Deferred.await(closed),
    }
  })

/** Runs a bin to its end with `args`: exit code and stderr. */
export const runToEnd = (file: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function* () {
    const running = yield* start(file, args, () => Option.none(), env)
    const code = yield* running.exitCode
    return { code, stderr: running.stderr() }
  }).pipe(Effect.scoped, Effect.timeout("30 seconds"))

/** Runs a bin to its end with `args`: exit code, every stdout line (read to the end) and stderr. */
export const runForOutput = (file: string, args: ReadonlyArray<string>, env: Readonly<Record<string, string>> = {}) =>
  Effect.gen(function* () {
    const running = yield* start(file, args, () => Option.none(), env)
    const code = yield* running.exitCode
    yield* running.closed
    return { code, stdout: running.lines().join("\n"), stderr: running.stderr() }
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

/** Every `tag` event a server printed so far, narrowed to its type. */
export const seenOf = <Tag extends ServerEvent.ServerEvent["_tag"]>(
  server: Running<ServerEvent.ServerEvent>,
  tag: Tag,
): ReadonlyArray<Timed<Extract<ServerEvent.ServerEvent, { _tag: Tag }>>> =>
  server.seen().filter((event): event is Timed<Extract<ServerEvent.ServerEvent, { _tag: Tag }>> => event._tag === tag)

/**
 * fed-server on `port` with `secret` and the given flags: a restarted server takes the port of the
 * one it replaces, so that its clients, reconnecting to the address they know, find it.
 */
export const startServerOn = (port: number, secret: string, flags: ReadonlyArray<string>) =>
  // No state file unless a test names one: a server started in the test's directory would otherwise
  // resume (or refuse) another test's job from ./fedguard-state.db.
  start(serverBin, ["--port", String(port), ...flags], ServerEvent.fromLine, {
    FED_SERVER_SECRET: secret,
    FED_SERVER_STATE: ":memory:",
  })

/** fed-server on an ephemeral port with `secret` and the given flags. */
export const startServer = (secret: string, flags: ReadonlyArray<string>) => startServerOn(0, secret, flags)

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

/** What a state file holds, read as the next server would find it (see {@link readStateFile}). */
export interface StateFileContents {
  /** `PRAGMA integrity_check`: `"ok"` for a sound file. */
  readonly integrity: string
  readonly jobs: ReadonlyArray<{
    readonly id: string
    readonly name: string
    readonly state: string
    readonly spec: string
    readonly updated_at: number
  }>
  readonly transitions: ReadonlyArray<{
    readonly job_id: string
    readonly seq: number
    readonly from_state: string | null
    readonly to_state: string
    readonly reason: string
  }>
  readonly rounds: ReadonlyArray<{ readonly job_id: string; readonly round: number; readonly record: string }>
  readonly checkpoints: ReadonlyArray<{ readonly job_id: string; readonly round: number; readonly sha256: string }>
  readonly clients: ReadonlyArray<{ readonly job_id: string; readonly client_id: string; readonly record: string }>
}

/**
 * Reads a fed-server state file on a read-only `node:sqlite` connection (the test's own view of
 * the file, independent of the server's code): its integrity check and every row, as a restarted
 * server would find them. Read it while no server has the file open.
 */
export const readStateFile = (path: string): StateFileContents => {
  const db = new DatabaseSync(path, { readOnly: true })
  try {
    const all = <A>(sql: string) => db.prepare(sql).all() as unknown as ReadonlyArray<A>
    return {
      integrity: all<{ integrity_check: string }>("PRAGMA integrity_check")
        .map((row) => row.integrity_check)
        .join("; "),
      jobs: all("SELECT id, name, state, spec, created_at, updated_at FROM jobs ORDER BY created_at, id"),
      transitions: all(
        "SELECT job_id, seq, from_state, to_state, reason, at FROM job_transitions ORDER BY job_id, seq",
      ),
      rounds: all("SELECT job_id, round, record, committed_at FROM rounds ORDER BY job_id, round"),
      checkpoints: all("SELECT job_id, round, sha256, hex(model) AS model FROM checkpoints ORDER BY job_id, round"),
      clients: all("SELECT job_id, client_id, record, updated_at FROM clients ORDER BY job_id, client_id"),
    }
  } finally {
    db.close()
  }
}
