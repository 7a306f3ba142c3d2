/**
 * The processes of one demo run: the fed-server, which the demo may kill and
 * start again on the same port and state file, and the fed-clients the demo
 * starts, kills and restarts. It owns their lifetimes (every process stops
 * when the Layer's Scope closes) and turns what they do into one ordered
 * stream of `FederationEvent`s: the typed events of every server process in
 * turn, and the clients that exited on their own.
 *
 * The programs are found through their packages (`@fedguard/fed-server/bin`,
 * `@fedguard/fed-client/bin`), not through sibling paths, so the demo runs
 * wherever the package manager put them.
 *
 * @since 0.2.0
 */
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import * as ParentWatch from "@fedguard/app-kit/ParentWatch"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import type { Model } from "@fedguard/federation"
import {
  Cause,
  Context,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberMap,
  Layer,
  Option,
  Queue,
  Redacted,
  Ref,
  Schema,
  Scope,
  Stream,
} from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

/**
 * The settings the server and clients run with.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly clients: number
  readonly rounds: number
  readonly model: Model.Name
  /** Cap on SGD steps per client per round (`--local-steps`); none: the full local epochs. */
  readonly localSteps?: number | undefined
  readonly partition: "iid" | "noniid"
  readonly seed: number
  readonly localEpochs: number
  readonly report: string
  /** Where the server writes its self-contained HTML report (`--report-html`). */
  readonly reportHtml: string
  readonly heartbeatInterval: string
  readonly heartbeatTimeout: string
  readonly roundTimeout: string
  /** `client-2@3`: client-2's upload stops mid-stream in round 3 while its heartbeats go on. */
  readonly stall: ReadonlyArray<{ readonly client: string; readonly round: number }>
  /** The server's `--state` file: every round commits there, and a restarted server resumes from it. */
  readonly state: string
}

/**
 * The server exited before training completed (bad settings, a crash, a
 * restart that could not resume): its exit code (or the signal that ended
 * it) and the last lines it wrote to stderr. A server the demo killed to
 * restart it is not reported: the demo knows.
 *
 * @since 0.2.0
 * @category errors
 */
export class ServerExited extends Schema.TaggedError<ServerExited>()("ServerExited", {
  exit: Schema.String,
  stderr: Schema.Array(Schema.String),
}) {
  override get message(): string {
    const tail = this.stderr.length === 0 ? "" : `: ${this.stderr.join(" | ")}`
    return `fed-server ${this.exit}${tail}`
  }
}

/**
 * What happened in the federation: a server process reported a typed event,
 * or a client process exited on its own (a crash, or its normal end after
 * training). A client the demo killed is not reported: the demo knows.
 *
 * @since 0.2.0
 * @category models
 */
export type FederationEvent =
  | { readonly _tag: "ServerReported"; readonly event: ServerEvent.ServerEvent }
  | {
      readonly _tag: "ClientExited"
      readonly id: string
      readonly exit: Exit.Exit<ChildProcessSpawner.ExitCode, unknown>
    }

/**
 * The fewest clients a round may run with: half the clients, rounded up.
 * The server gets it as `--min-clients`.
 *
 * @since 0.2.0
 * @category models
 */
export const minClients = (clients: number): number => Math.max(1, Math.ceil(clients / 2))

/**
 * The server's `--join-timeout`: long, because it covers starting every
 * client process on a loaded machine. A restarted server waits up to this
 * long for all its expected clients before it resumes.
 *
 * @since 0.3.0
 * @category models
 */
export const joinTimeout = "120s"

/**
 * The running federation:
 *
 * - `expectedClients`, `minClients`: the server's `--expected-clients` and
 *   `--min-clients`.
 * - `events`: server events and client exits, in order; it ends when the
 *   stdout of a server the demo did not kill ends (the server exited). One
 *   consumer.
 * - `listening`: the server's port once it listens; fails with
 *   `ServerExited` if the server exits first (a bad setting).
 * - `restartServer`: SIGKILLs the server, lets the events it wrote before
 *   dying through, and starts it again with the same arguments on the same
 *   port and state file; returns the port. The clients are left alone:
 *   they reconnect by themselves.
 * - `startClient(id)`: starts `client-N` once the server listens; it runs
 *   until it exits or `killClient(id)` SIGKILLs it.
 * - `isRunning(id)`, `running`: which and how many client processes run.
 * - `serverFinished`: waits for the last server process's exit; fails with
 *   `ServerExited` unless its exit code is 0.
 * - `clientsFinished`: waits up to 3 s for every client to exit.
 * - `summary` (optional): lines for the end of the run.
 *
 * @since 0.2.0
 * @category services
 */
export class Federation extends Context.Service<
  Federation,
  {
    readonly expectedClients: number
    readonly minClients: number
    readonly events: Stream.Stream<FederationEvent>
    readonly listening: Effect.Effect<number, ServerExited>
    readonly restartServer: Effect.Effect<number>
    readonly startClient: (id: string) => Effect.Effect<void>
    readonly killClient: (id: string) => Effect.Effect<void>
    readonly isRunning: (id: string) => Effect.Effect<boolean>
    readonly running: Effect.Effect<number>
    readonly serverFinished: Effect.Effect<void, ServerExited>
    readonly clientsFinished: Effect.Effect<void>
    /** Lines the demo prints before its last one (`--supervise`: each killed client's restart and rounds after it). */
    readonly summary?: Effect.Effect<ReadonlyArray<string>> | undefined
  }
>()("@fedguard/demo/Federation") {}

const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))
const clientBin = fileURLToPath(import.meta.resolve("@fedguard/fed-client/bin"))

/** Lines of the server's stderr kept to explain its exit. */
const stderrTailLines = 5

const lines = <E>(bytes: Stream.Stream<Uint8Array, E>) => bytes.pipe(Stream.decodeText(), Stream.splitLines)

// Every child gets a stdin pipe the demo never writes: when the demo dies, even by SIGKILL,
// the kernel closes it, and ParentWatch in the child stops the child.
const childOptions = {
  extendEnv: true,
  stdin: "pipe",
} as const

/**
 * fed-server's arguments in a demo run on `port` (the demo's and
 * `--supervise`'s fleet alike); the secret goes through the environment.
 *
 * @since 0.4.0
 * @category models
 */
export const serverArgs = (options: Options, port: number): ReadonlyArray<string> => [
  ...["--port", String(port), "--expected-clients", String(options.clients)],
  ...["--min-clients", String(minClients(options.clients)), "--rounds", String(options.rounds)],
  ...["--model", options.model, "--partition", options.partition, "--seed", String(options.seed)],
  ...["--local-epochs", String(options.localEpochs), "--heartbeat-interval", options.heartbeatInterval],
  ...(options.localSteps === undefined ? [] : ["--local-steps", String(options.localSteps)]),
  ...["--heartbeat-timeout", options.heartbeatTimeout, "--round-timeout", options.roundTimeout],
  ...["--join-timeout", joinTimeout, "--report", options.report, "--state", options.state],
  ...["--report-html", options.reportHtml],
]

const serverCommand = (options: Options, secret: Redacted.Redacted<string>, port: number) =>
  ChildProcess.make(process.execPath, [serverBin, ...serverArgs(options, port)], {
    ...childOptions,
    env: { FED_SERVER_SECRET: secret, [ParentWatch.envVar]: "1" },
    stdout: "pipe",
    stderr: "pipe",
  })

/**
 * fed-client `id`'s arguments in a demo run against the server on
 * `serverPort`; the secret goes through the environment.
 *
 * @since 0.4.0
 * @category models
 */
export const clientArgs = (options: Options, serverPort: number, id: string): ReadonlyArray<string> => [
  ...["--server", `127.0.0.1:${serverPort}`, "--id", id],
  ...["--shard-index", String(Number(id.slice("client-".length))), "--shard-count", String(options.clients)],
  ...["--partition", options.partition, "--seed", String(options.seed)],
  ...options.stall
    .filter((fault) => fault.client === id)
    .flatMap((fault) => ["--fault-stall-upload", String(fault.round)]),
  // A stalled client's retry of its upload (on a fresh stream) waits 5 s, well past the server's
  // stall detection: otherwise, on a loaded machine, the retry could land before the server gave
  // the first stream up, and the round would take the update instead of showing the stall.
  ...(options.stall.some((fault) => fault.client === id) ? ["--retry-base-delay", "5s"] : []),
]

const clientCommand = (options: Options, secret: Redacted.Redacted<string>, serverPort: number, id: string) =>
  ChildProcess.make(process.execPath, [clientBin, ...clientArgs(options, serverPort, id)], {
    ...childOptions,
    env: { FED_CLIENT_SECRET: secret, [ParentWatch.envVar]: "1" },
    // Removing the client's fiber closes its scope, and the spawner ends the
    // process with this signal: a crash, no close frame, no goodbye.
    killSignal: "SIGKILL",
    stdout: "ignore",
    stderr: "inherit",
  })

// One server process: `killed` once the demo killed it to restart it (its end is then not the
// federation's end), `reader` turns its stdout into events, `exited` explains its exit.
interface ServerProcess {
  readonly handle: ChildProcessSpawner.ChildProcessHandle
  readonly scope: Scope.Closeable
  readonly killed: Ref.Ref<boolean>
  readonly reader: Fiber.Fiber<void>
  readonly exited: Effect.Effect<ServerExited>
}

// Starts one server process in a child of `scope`: its events go to `events` (ended when its
// stdout ends, unless the demo killed it), its first `Listening` port to `port`.
const startServerProcess = Effect.fnUntraced(function* (
  command: ChildProcess.Command,
  scope: Scope.Scope,
  events: Queue.Queue<FederationEvent, Cause.Done>,
  port: Deferred.Deferred<number>,
) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const processScope = yield* Scope.fork(scope)
  const handle = yield* spawner.spawn(command).pipe(Scope.provide(processScope))
  const stderrTail = yield* Ref.make<ReadonlyArray<string>>([])
  const stderrReader = yield* lines(handle.stderr).pipe(
    Stream.runForEach((line) => Ref.update(stderrTail, (tail) => [...tail, line].slice(-stderrTailLines))),
    Effect.ignore,
    Effect.forkIn(processScope),
  )
  const killed = yield* Ref.make(false)
  const reader = yield* lines(handle.stdout).pipe(
    Stream.runForEach((line) =>
      Option.match(ServerEvent.fromLine(line), {
        onNone: () => Effect.void,
        onSome: (event) =>
          Queue.offer(events, { _tag: "ServerReported", event }).pipe(
            Effect.andThen(event._tag === "Listening" ? Deferred.succeed(port, event.port) : Effect.void),
          ),
      }),
    ),
    Effect.ignore,
    Effect.ensuring(Effect.flatMap(Ref.get(killed), (byDemo) => (byDemo ? Effect.void : Queue.end(events)))),
    Effect.forkIn(processScope),
  )
  const exited = Effect.gen(function* () {
    const exit = yield* Effect.exit(handle.exitCode)
    // stderr ends with the process; let the reader take its last lines.
    yield* Fiber.await(stderrReader).pipe(Effect.timeoutOption("1 second"))
    return new ServerExited({
      exit: Exit.isSuccess(exit)
        ? `exited with code ${exit.value}`
        : `ended: ${Cause.pretty(exit.cause).split("\n")[0]}`,
      stderr: yield* Ref.get(stderrTail),
    })
  })
  return { handle, scope: processScope, killed, reader, exited } satisfies ServerProcess
})

/**
 * Starts the server in the current Scope on a free port; clients started
 * later, and the server's restarts, live in it too. The secret is random per
 * run and reaches the children through their environment, never their
 * command lines.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const scope = yield* Effect.scope
  const secret = Redacted.make(randomBytes(16).toString("hex"))
  const port = yield* Deferred.make<number>()
  const events = yield* Queue.unbounded<FederationEvent, Cause.Done>()
  // Client lifetimes belong to the run, not to the fiber that starts them: a client
  // restarted while the demo reacts to an event keeps running after it moves on. The fleet
  // is made before the server starts, so that the Scope (last in, first out) stops the server
  // first: clients killed under a running server would fail its round and have an empty round
  // committed to the state file when the demo is interrupted.
  const fleet = yield* FiberMap.make<string, ChildProcessSpawner.ExitCode, unknown>()
  const first = yield* startServerProcess(serverCommand(options, secret, 0), scope, events, port)
  const server = yield* Ref.make<ServerProcess>(first)

  // The same arguments on the port the first process got, so the clients find it again.
  const restartServer = Effect.gen(function* () {
    const serverPort = yield* Deferred.await(port)
    const old = yield* Ref.get(server)
    yield* Ref.set(old.killed, true)
    yield* old.handle.kill({ killSignal: "SIGKILL" }).pipe(Effect.ignore)
    // What it wrote before dying (a round it started) comes before the new process's first event.
    yield* Fiber.await(old.reader)
    yield* Scope.close(old.scope, Exit.void)
    const next = yield* startServerProcess(serverCommand(options, secret, serverPort), scope, events, port).pipe(
      Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner),
      Effect.orDie,
    )
    yield* Ref.set(server, next)
    return serverPort
  })

  const startClient = Effect.fnUntraced(function* (id: string) {
    const serverPort = yield* Deferred.await(port)
    const lifetime = spawner.spawn(clientCommand(options, secret, serverPort, id)).pipe(
      Effect.flatMap((handle) => handle.exitCode),
      Effect.scoped,
    )
    const fiber = yield* FiberMap.run(fleet, id, lifetime)
    yield* Fiber.await(fiber).pipe(
      Effect.flatMap((exit) =>
        Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause)
          ? Effect.void
          : Queue.offer(events, { _tag: "ClientExited", id, exit }),
      ),
      Effect.forkIn(scope),
    )
  })

  return Federation.of({
    expectedClients: options.clients,
    minClients: minClients(options.clients),
    events: Stream.fromQueue(events),
    listening: Effect.raceFirst(Deferred.await(port), Effect.flatMap(first.exited, Effect.fail)),
    restartServer,
    startClient,
    killClient: (id) => FiberMap.remove(fleet, id),
    isRunning: (id) => FiberMap.has(fleet, id),
    running: FiberMap.size(fleet),
    serverFinished: Effect.gen(function* () {
      const last = yield* Ref.get(server)
      const exit = yield* Effect.exit(last.handle.exitCode)
      if (!Exit.isSuccess(exit) || exit.value !== ChildProcessSpawner.ExitCode(0)) return yield* yield* last.exited
    }),
    // Clients exit on their own once the server says training is complete.
    clientsFinished: FiberMap.awaitEmpty(fleet).pipe(Effect.timeoutOption("3 seconds"), Effect.ignore),
  })
})

/**
 * The federation as a Layer: the server starts when the Layer is built, and
 * every process stops when its Scope closes.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options) => Layer.effect(Federation, make(options))
