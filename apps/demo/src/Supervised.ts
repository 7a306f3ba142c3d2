/**
 * `--supervise`: the demo's federation run under `fed-supervisor`
 * (`@fedguard/supervisor`'s `WorkerSupervisor` as a command) instead of by
 * the demo itself. It is a `Federation` like the default one, so the table,
 * the fault injector and the report check work unchanged; what differs is
 * who keeps the processes alive: a client the demo kills (`--kill
 * client-N@R`) is started again by the supervisor after its backoff, with no
 * `--restart`, rejoins, and takes part in the rounds after. The summary says
 * when each killed client came back and in which rounds it took part again.
 *
 * - The fleet is a JSON file in a fresh temporary directory: fed-server as
 *   the `significant` worker (its exit with code 0 completes the run: the
 *   supervisor stops the clients and exits 0) on a port chosen up front, so
 *   the clients' arguments can name it, and one worker per client; every
 *   worker runs in the demo's working directory (the report's relative path).
 * - The secret is random per run and reaches the workers through
 *   fed-supervisor's environment, which they inherit; never the fleet file
 *   or a command line.
 * - What happens is read from fed-supervisor's stdout, where its own event
 *   lines (`--output json`) and the server's (its workers inherit its
 *   stdout) arrive: each line is decoded as a `ServerEvent`, else as a
 *   supervisor event (`SupervisorLines`). The clients' own lines would
 *   decode as server events too (both apps print `training-completed`), so
 *   each client runs under `/bin/sh -c 'exec … >/dev/null'`: the shell
 *   replaces itself with node, and the supervised pid is the client's.
 *
 * `--restart` (the supervisor restarts) and `--kill-server` (the demo's
 * server restart owns the port and the process) are refused with it.
 *
 * @since 0.4.0
 */
import { randomBytes } from "node:crypto"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import * as SupervisorLines from "@fedguard/fed-supervisor/SupervisorLines"
import { Cause, Console, Deferred, Effect, Exit, FileSystem, Layer, Option, Path, Queue, Ref, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as FaultPlan from "./FaultPlan.ts"
import {
  clientArgs,
  Federation,
  type FederationEvent,
  minClients,
  type Options,
  ServerExited,
  serverArgs,
} from "./Federation.ts"

const serverBin = fileURLToPath(import.meta.resolve("@fedguard/fed-server/bin"))
const clientBin = fileURLToPath(import.meta.resolve("@fedguard/fed-client/bin"))
const supervisorBin = fileURLToPath(import.meta.resolve("@fedguard/fed-supervisor/bin"))

/**
 * The options of a supervised run: the federation's, plus the client
 * restarts and server kills the demo was asked for (refused here).
 *
 * @since 0.4.0
 * @category models
 */
export interface SupervisedOptions extends Options {
  readonly restart: ReadonlyArray<FaultPlan.Fault>
  readonly killServer: ReadonlyArray<number>
}

/**
 * The fleet file of a run: the server (significant) on `port` and one
 * worker per client, all in `cwd`. A client's restarts wait 500 ms, then
 * double up to 5 s; more than 5 failures in 60 s escalate (the run fails);
 * a stop gives each worker 5 s after SIGTERM.
 *
 * @since 0.4.0
 * @category models
 */
export const fleet = (options: Options, port: number, cwd: string) => ({
  workers: [
    {
      id: "fed-server",
      command: process.execPath,
      args: [serverBin, ...serverArgs(options, port)],
      cwd,
      significant: true,
    },
    ...Array.from({ length: options.clients }, (_, index) => {
      const id = `client-${index}`
      return {
        id,
        command: "/bin/sh",
        // `exec` replaces the shell with node (same pid); the client's event lines are dropped.
        args: ["-c", 'exec "$0" "$@" >/dev/null', process.execPath, clientBin, ...clientArgs(options, port, id)],
        cwd,
      }
    }),
  ],
  monitoring: { interval: "1 second" },
  recovery: {
    strategy: "restart-one",
    maxRestarts: 5,
    restartPeriod: "60 seconds",
    backoffBase: "500 millis",
    backoffCap: "5 seconds",
    stopGrace: "5 seconds",
  },
})

// A free port on 127.0.0.1 for the server, chosen before the fleet file names it.
const freePort = Effect.callback<number>((resume) => {
  const probe = createServer()
  probe.listen(0, "127.0.0.1", () => {
    const address = probe.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    probe.close(() => resume(Effect.succeed(port)))
  })
})

const refuse = (flag: "--restart" | "--kill-server", fault: string, problem: string) =>
  new FaultPlan.InvalidFault({ flag, fault, problem })

// What the run keeps from fed-supervisor's lines: each worker's pid while it runs, the round
// running now, each client's kill and restarts, and each round's participants.
interface Seen {
  readonly pids: ReadonlyMap<string, number>
  readonly round: number
  readonly kills: ReadonlyArray<{ readonly id: string; readonly round: number }>
  readonly restarts: ReadonlyArray<{ readonly id: string; readonly round: number; readonly delayMillis: number }>
  readonly participants: ReadonlyArray<{ readonly round: number; readonly ids: ReadonlyArray<string> }>
}

const withPid = (seen: Seen, id: string, pid: number | undefined): Seen => {
  const pids = new Map(seen.pids)
  if (pid === undefined) pids.delete(id)
  else pids.set(id, pid)
  return { ...seen, pids }
}

// One server event: the round it starts or completes.
const onServerEvent = (seen: Seen, event: ServerEvent.ServerEvent): Seen =>
  event._tag === "RoundStarted"
    ? { ...seen, round: event.round }
    : event._tag === "RoundCompleted"
      ? { ...seen, participants: [...seen.participants, { round: event.round, ids: event.participants }] }
      : seen

// One supervisor event: the pid table, the restarts, and a note under the table.
const onSupervisorEvent = Effect.fnUntraced(function* (state: Ref.Ref<Seen>, event: typeof SupervisorLines.Event.Type) {
  switch (event._tag) {
    case "WorkerStarted":
    case "WorkerAdopted":
      return yield* Ref.update(state, (seen) => withPid(seen, event.workerId, event.pid))
    case "WorkerRestarted": {
      const seen = yield* Ref.updateAndGet(state, (seen) => ({
        ...withPid(seen, event.workerId, event.pid),
        restarts: [...seen.restarts, { id: event.workerId, round: seen.round, delayMillis: event.delayMillis }],
      }))
      return yield* Console.log(
        `  ↻ fed-supervisor restarted ${event.workerId} (pid ${event.pid}, restart ${event.restarts}, ` +
          `after ${(event.delayMillis / 1000).toFixed(1)} s) during round ${seen.round}: ${event.reason}`,
      )
    }
    case "WorkerExited":
      return yield* Ref.update(state, (seen) => withPid(seen, event.workerId, undefined))
    case "SupervisorEscalated":
      return yield* Console.log(
        `  ! fed-supervisor escalated after ${event.history.length} restarts in its window: it stops every worker`,
      )
    default:
      return
  }
})

// "client-1: killed (SIGKILL) at the start of round 2; fed-supervisor restarted it 0.5 s later, during round 2;
// it took part again in 6 rounds (3–8)"
const summaryOf = (seen: Seen): ReadonlyArray<string> =>
  seen.kills.map((kill) => {
    const restart = seen.restarts.find((r) => r.id === kill.id && r.round >= kill.round)
    const again = seen.participants.filter((p) => p.round > kill.round && p.ids.includes(kill.id)).map((p) => p.round)
    const killed = `${kill.id}: killed (SIGKILL) at the start of round ${kill.round}`
    if (restart === undefined) return `${killed}; fed-supervisor did not restart it before the end`
    const restarted = `fed-supervisor restarted it ${(restart.delayMillis / 1000).toFixed(1)} s later, during round ${restart.round}`
    return again.length === 0
      ? `${killed}; ${restarted}; it took part in no later round (training ended first)`
      : `${killed}; ${restarted}; it took part again in ${again.length} round${again.length === 1 ? "" : "s"} (${again[0]}–${again.at(-1)})`
  })

// Reads fed-supervisor's stdout into `events` (server events) and `state` (supervisor events);
// the server's `Listening` port goes to `port`. Ends `events` when the stdout ends.
const readLines = (
  stdout: Stream.Stream<Uint8Array, unknown>,
  events: Queue.Queue<FederationEvent, Cause.Done>,
  state: Ref.Ref<Seen>,
  port: Deferred.Deferred<number>,
) =>
  stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) =>
      Option.match(ServerEvent.fromLine(line), {
        onSome: (event) =>
          Ref.update(state, (seen) => onServerEvent(seen, event)).pipe(
            Effect.andThen(Queue.offer(events, { _tag: "ServerReported", event })),
            Effect.andThen(event._tag === "Listening" ? Deferred.succeed(port, event.port) : Effect.void),
          ),
        onNone: () =>
          Option.match(SupervisorLines.lines.fromLine(line), {
            onSome: (event) => onSupervisorEvent(state, event),
            onNone: () => Effect.void,
          }),
      }),
    ),
    Effect.ignore,
    Effect.ensuring(Queue.end(events)),
  )

// Writes the fleet file into a fresh temporary directory and returns its path.
const writeFleet = Effect.fnUntraced(function* (options: Options, port: number) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const directory = yield* fs.makeTempDirectory({ prefix: "fedguard-demo-fleet-" })
  const file = path.join(directory, "fleet.json")
  yield* fs.writeFileString(file, `${JSON.stringify(fleet(options, port, process.cwd()), null, 2)}\n`)
  return file
})

/**
 * Starts fed-supervisor on a fleet of the server and `options.clients`
 * clients in the current Scope (closing it sends fed-supervisor SIGTERM: it
 * stops every worker, the server first) and returns the `Federation`. Fails
 * with `InvalidFault` before starting anything for `--restart` or
 * `--kill-server`.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: SupervisedOptions) {
  const [restart] = options.restart
  if (restart !== undefined) {
    return yield* refuse(
      "--restart",
      `${restart.client}@${restart.round}`,
      "with --supervise, fed-supervisor restarts a killed client itself",
    )
  }
  const [killServer] = options.killServer
  if (killServer !== undefined) {
    return yield* refuse(
      "--kill-server",
      String(killServer),
      "not available with --supervise (fed-supervisor owns the server's process)",
    )
  }
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const fleetFile = yield* writeFleet(options, yield* freePort)
  yield* Console.log(`supervised by fed-supervisor; fleet file ${fleetFile}`)
  const secret = randomBytes(16).toString("hex")
  const handle = yield* spawner.spawn(
    ChildProcess.make(process.execPath, [supervisorBin, fleetFile, "--output", "json"], {
      extendEnv: true,
      // The workers inherit fed-supervisor's environment: the secret never appears in a file or argv.
      env: { FED_SERVER_SECRET: secret, FED_CLIENT_SECRET: secret },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "inherit",
      // fed-supervisor stops its workers gracefully on SIGTERM.
      killSignal: "SIGTERM",
    }),
  )
  const events = yield* Queue.unbounded<FederationEvent, Cause.Done>()
  const state = yield* Ref.make<Seen>({ pids: new Map(), round: 0, kills: [], restarts: [], participants: [] })
  const port = yield* Deferred.make<number>()
  yield* Effect.forkScoped(readLines(handle.stdout, events, state, port))
  return federationOf(options, handle, events, state, port)
})

const exitedWith = (exit: Exit.Exit<ChildProcessSpawner.ExitCode, unknown>) =>
  new ServerExited({
    exit: Exit.isSuccess(exit)
      ? `fed-supervisor exited with code ${exit.value}`
      : `fed-supervisor ended: ${Cause.pretty(exit.cause).split("\n")[0]}`,
    stderr: [],
  })

const federationOf = (
  options: Options,
  handle: ChildProcessSpawner.ChildProcessHandle,
  events: Queue.Queue<FederationEvent, Cause.Done>,
  state: Ref.Ref<Seen>,
  port: Deferred.Deferred<number>,
) => {
  const pidOf = (id: string) => Effect.map(Ref.get(state), (seen) => seen.pids.get(id))
  return Federation.of({
    expectedClients: options.clients,
    minClients: minClients(options.clients),
    events: Stream.fromQueue(events),
    listening: Effect.raceFirst(
      Deferred.await(port),
      Effect.flatMap(Effect.exit(handle.exitCode), (exit) => Effect.fail(exitedWith(exit))),
    ),
    restartServer: Effect.die(new Error("--kill-server is refused with --supervise")),
    // fed-supervisor starts every client with the server (they retry until it listens).
    startClient: () => Effect.void,
    killClient: (id) =>
      Effect.gen(function* () {
        const pid = yield* pidOf(id)
        if (pid === undefined) return
        yield* Ref.update(state, (seen) => ({ ...seen, kills: [...seen.kills, { id, round: seen.round }] }))
        yield* Effect.sync(() => process.kill(pid, "SIGKILL")).pipe(Effect.ignore)
      }),
    isRunning: (id) => Effect.map(pidOf(id), (pid) => pid !== undefined),
    // The supervisor brings every client back: for the quorum, all of them count.
    running: Effect.succeed(options.clients),
    serverFinished: Effect.gen(function* () {
      const exit = yield* Effect.exit(handle.exitCode)
      if (!Exit.isSuccess(exit) || exit.value !== ChildProcessSpawner.ExitCode(0)) return yield* exitedWith(exit)
    }),
    // fed-supervisor stopped the clients before it exited.
    clientsFinished: Effect.void,
    summary: Effect.map(Ref.get(state), summaryOf),
  })
}

/**
 * {@link make} as the run's `Federation` Layer.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: SupervisedOptions) => Layer.effect(Federation, make(options))
