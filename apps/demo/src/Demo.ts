/**
 * Runs a whole demo federation as OS processes: one fed-server and N
 * fed-clients on 127.0.0.1, a live per-round table from the server's typed
 * events, optional kills and restarts of clients, and the report.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import * as ParentWatch from "@fedguard/federation/ParentWatch"
import {
  Cause,
  Clock,
  Console,
  Deferred,
  Effect,
  Exit,
  Fiber,
  FiberMap,
  Option,
  Queue,
  Redacted,
  Ref,
  Schema,
  Stream,
} from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"
import * as FaultPlan from "./FaultPlan.ts"
import * as RoundTable from "./RoundTable.ts"

/**
 * What the demo runs.
 *
 * @since 0.1.0
 * @category models
 */
export interface DemoOptions {
  readonly clients: number
  readonly rounds: number
  readonly model: "softmax" | "2nn"
  readonly partition: "iid" | "noniid"
  readonly seed: number
  readonly localEpochs: number
  readonly report: string
  /** `client-2@3`: SIGKILL client-2 when round 3 starts. */
  readonly kill: ReadonlyArray<FaultPlan.Fault>
  /** `client-2@5`: start client-2 again when round 5 starts. */
  readonly restart: ReadonlyArray<FaultPlan.Fault>
  readonly heartbeatInterval: string
  readonly heartbeatTimeout: string
  readonly roundTimeout: string
}

/**
 * The server exited before training completed (bad settings, a crash): its
 * exit code (or the signal that ended it) and the last lines it wrote to
 * stderr.
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
 * The server paused for quorum and nothing the demo will do can bring enough
 * clients back: fewer clients are running than the quorum needs, even with
 * every restart still scheduled.
 *
 * @since 0.2.0
 * @category errors
 */
export class QuorumUnreachable extends Schema.TaggedError<QuorumUnreachable>()("QuorumUnreachable", {
  round: Schema.Int,
  running: Schema.Int,
  minClients: Schema.Int,
}) {
  override get message(): string {
    return (
      `the federation cannot go on: the server paused before round ${this.round} for quorum ` +
      `(it needs ${this.minClients} online), only ${this.running} client processes are running, ` +
      `and no scheduled restart can bring the quorum back`
    )
  }
}

/**
 * The server completed without reporting its final accuracy.
 *
 * @since 0.1.0
 * @category errors
 */
export class DemoFailed extends Schema.TaggedError<DemoFailed>()("DemoFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/**
 * The fewest clients a round may run with: half the clients, rounded up.
 *
 * @since 0.2.0
 * @category models
 */
export const minClients = (clients: number): number => Math.max(1, Math.ceil(clients / 2))

/** What the event loop reacts to: a line of the server's log, or a client process that ended. */
type Input =
  | { readonly _tag: "Server"; readonly event: ServerEvent.ServerEvent }
  | { readonly _tag: "ClientEnded"; readonly id: string; readonly exit: Exit.Exit<unknown, unknown> }

const bin = (app: string) => fileURLToPath(new URL(`../../${app}/dist/bin.js`, import.meta.url))

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
 * Runs the demo and returns the final accuracy. Every process it starts is
 * stopped when the returned effect ends, fails or is interrupted. Fails with
 * `InvalidFault` before starting anything when a fault cannot happen in this
 * run.
 *
 * While the server is paused for quorum, restarts scheduled for later rounds
 * are brought forward (those rounds cannot start without them); when even
 * they cannot restore the quorum, the run fails with `QuorumUnreachable`
 * instead of waiting forever.
 *
 * @since 0.1.0
 * @category run
 */
export const run = Effect.fnUntraced(function* (options: DemoOptions) {
  const plan = yield* FaultPlan.make(options)
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const secret = Redacted.make(randomBytes(16).toString("hex"))
  const node = process.execPath
  const needed = minClients(options.clients)
  const startedAt = yield* Clock.currentTimeMillis

  const server = yield* spawner.spawn(
    ChildProcess.make(
      node,
      [
        bin("fed-server"),
        "--port",
        "0",
        "--expected-clients",
        String(options.clients),
        "--min-clients",
        String(needed),
        "--rounds",
        String(options.rounds),
        "--model",
        options.model,
        "--partition",
        options.partition,
        "--seed",
        String(options.seed),
        "--local-epochs",
        String(options.localEpochs),
        "--heartbeat-interval",
        options.heartbeatInterval,
        "--heartbeat-timeout",
        options.heartbeatTimeout,
        "--round-timeout",
        options.roundTimeout,
        "--join-timeout",
        "120s",
        "--report",
        options.report,
      ],
      {
        ...childOptions,
        env: { FED_SERVER_SECRET: secret, [ParentWatch.envVar]: "1" },
        stdout: "pipe",
        stderr: "pipe",
      },
    ),
  )

  const stderrTail = yield* Ref.make<ReadonlyArray<string>>([])
  const stderrReader = yield* lines(server.stderr).pipe(
    Stream.runForEach((line) => Ref.update(stderrTail, (tail) => [...tail, line].slice(-stderrTailLines))),
    Effect.ignore,
    Effect.forkScoped,
  )
  const serverExited = Effect.gen(function* () {
    const exit = yield* Effect.exit(server.exitCode)
    // stderr ends with the process; let the reader take its last lines.
    yield* Fiber.await(stderrReader).pipe(Effect.timeoutOption("1 second"))
    return new ServerExited({
      exit: Exit.isSuccess(exit)
        ? `exited with code ${exit.value}`
        : `ended: ${Cause.pretty(exit.cause).split("\n")[0]}`,
      stderr: yield* Ref.get(stderrTail),
    })
  })

  const port = yield* Deferred.make<number>()
  const inputs = yield* Queue.unbounded<Input, Cause.Done>()
  const finalAccuracy = yield* Ref.make<Option.Option<number>>(Option.none())
  const pending = yield* Ref.make<ReadonlyArray<FaultPlan.Action>>(plan.actions)
  const paused = yield* Ref.make<Option.Option<number>>(Option.none())
  // Client lifetimes belong to the run, not to the loop that starts them: a client
  // restarted by the event loop keeps running after the loop moves on.
  const fleet = yield* FiberMap.make<string, ChildProcessSpawner.ExitCode, unknown>()

  const startClient = Effect.fnUntraced(function* (id: string) {
    const serverPort = yield* Deferred.await(port)
    const index = Number(id.slice("client-".length))
    const lifetime = Effect.scoped(
      Effect.gen(function* () {
        const handle = yield* spawner.spawn(
          ChildProcess.make(
            node,
            [
              bin("fed-client"),
              "--server",
              `127.0.0.1:${serverPort}`,
              "--id",
              id,
              "--shard-index",
              String(index),
              "--shard-count",
              String(options.clients),
              "--partition",
              options.partition,
              "--seed",
              String(options.seed),
            ],
            {
              ...childOptions,
              env: { FED_CLIENT_SECRET: secret, [ParentWatch.envVar]: "1" },
              // Removing the client's fiber closes its scope, and the spawner ends the
              // process with this signal: a crash, no close frame, no goodbye.
              killSignal: "SIGKILL",
              stdout: "ignore",
              stderr: "inherit",
            },
          ),
        )
        return yield* handle.exitCode
      }),
    )
    const fiber = yield* FiberMap.run(fleet, id, lifetime)
    yield* Fiber.await(fiber).pipe(
      Effect.flatMap((exit) => Queue.offer(inputs, { _tag: "ClientEnded", id, exit })),
      Effect.forkScoped,
    )
  })

  const killClient = Effect.fnUntraced(function* (id: string, round: number) {
    yield* Console.log(`  ! killing ${id} (SIGKILL) at the start of round ${round}`)
    yield* FiberMap.remove(fleet, id)
  })

  const takePending = (take: (action: FaultPlan.Action) => boolean) =>
    Ref.modify(pending, (actions) => [actions.filter(take), actions.filter((action) => !take(action))])

  const onRoundStarted = Effect.fnUntraced(function* (round: number) {
    yield* Ref.set(paused, Option.none())
    for (const action of yield* takePending((action) => action.round <= round)) {
      const running = yield* FiberMap.has(fleet, action.client)
      if (action.kind === "kill" && running) yield* killClient(action.client, round)
      else if (action.kind === "restart" && !running) {
        yield* Console.log(`  ! restarting ${action.client} at the start of round ${round}`)
        yield* startClient(action.client)
      } else
        yield* Console.log(`  ! ${action.kind} ${action.client}@${action.round} skipped: nothing to ${action.kind}`)
    }
  })

  // While paused, bring restarts forward (in schedule order) until enough clients run;
  // fail when even all of them would not be enough.
  const checkQuorum = Effect.fnUntraced(function* (round: number) {
    const running = yield* FiberMap.size(fleet)
    if (running >= needed) return
    const restarts: Array<FaultPlan.Action> = []
    for (const action of yield* Ref.get(pending)) {
      if (running + restarts.length >= needed) break
      if (action.kind === "restart" && !(yield* FiberMap.has(fleet, action.client))) restarts.push(action)
    }
    if (running + restarts.length < needed) {
      return yield* new QuorumUnreachable({ round, running, minClients: needed })
    }
    yield* takePending((action) => restarts.includes(action))
    for (const action of restarts) {
      yield* Console.log(
        `  ! restarting ${action.client} now (scheduled for round ${action.round}): the server is paused for quorum`,
      )
      yield* startClient(action.client)
    }
  })

  const show = (event: ServerEvent.ServerEvent) =>
    Option.match(RoundTable.render(event), { onNone: () => Effect.void, onSome: Console.log })

  const handle = Effect.fnUntraced(function* (input: Input) {
    if (input._tag === "ClientEnded") {
      if (Exit.isFailure(input.exit) && Cause.hasInterruptsOnly(input.exit.cause)) return
      const how = Exit.isSuccess(input.exit) ? `with code ${input.exit.value}` : "abnormally"
      if (Option.isNone(yield* Ref.get(finalAccuracy))) yield* Console.log(`  · ${input.id} exited ${how}`)
      const round = yield* Ref.get(paused)
      if (Option.isSome(round)) yield* checkQuorum(round.value)
      return
    }
    const event = input.event
    yield* show(event)
    switch (event._tag) {
      case "Listening":
        yield* Console.log(RoundTable.header)
        yield* Deferred.succeed(port, event.port)
        return
      case "RoundStarted":
        return yield* onRoundStarted(event.round)
      case "RoundPaused":
        yield* Ref.set(paused, Option.some(event.round))
        return yield* checkQuorum(event.round)
      case "QuorumRestored":
        return yield* Ref.set(paused, Option.none())
      case "TrainingCompleted":
        return yield* Ref.set(finalAccuracy, Option.some(event.finalAccuracy))
      default:
        return
    }
  })

  yield* lines(server.stdout).pipe(
    Stream.runForEach((line) =>
      Option.match(ServerEvent.fromLine(line), {
        onNone: () => Effect.void,
        onSome: (event) => Queue.offer(inputs, { _tag: "Server", event }),
      }),
    ),
    Effect.ignore,
    Effect.ensuring(Queue.end(inputs)),
    Effect.forkScoped,
  )
  const loop = yield* Stream.fromQueue(inputs).pipe(Stream.runForEach(handle), Effect.forkScoped)

  yield* Console.log(
    `fedguard demo: 1 server + ${options.clients} clients on 127.0.0.1, ${options.rounds} rounds, ` +
      `${options.model}, ${options.partition}`,
  )
  // A server that exits before reporting its port (a bad setting) fails the run at once.
  yield* Effect.raceFirst(Deferred.await(port), serverExited.pipe(Effect.flatMap((exited) => Effect.fail(exited))))
  for (let index = 0; index < options.clients; index++) yield* startClient(`client-${index}`)

  // The loop ends when the server's stdout does (it exited), or fails when the quorum is gone.
  yield* Fiber.join(loop)
  const exit = yield* Effect.exit(server.exitCode)
  if (!Exit.isSuccess(exit) || exit.value !== ChildProcessSpawner.ExitCode(0)) return yield* yield* serverExited
  // Clients exit on their own once the server says training is complete.
  yield* FiberMap.awaitEmpty(fleet).pipe(Effect.timeoutOption("3 seconds"), Effect.ignore)
  const accuracy = yield* Ref.get(finalAccuracy)
  if (Option.isNone(accuracy)) return yield* new DemoFailed({ reason: "the server reported no final accuracy" })
  const seconds = (((yield* Clock.currentTimeMillis) - startedAt) / 1000).toFixed(1)
  yield* Console.log(
    `final accuracy ${accuracy.value.toFixed(4)} after ${options.rounds} rounds in ${seconds} s; report: ${options.report}`,
  )
  return accuracy.value
})
