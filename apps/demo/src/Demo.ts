/**
 * Runs a whole demo federation as OS processes: one fed-server and N
 * fed-clients on 127.0.0.1, a live per-round table from the server's JSON
 * events, optional kills and restarts of clients, and the report.
 *
 * @since 0.1.0
 */
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"
import { Clock, Console, Deferred, Effect, Fiber, Option, Ref, Schema, SchemaGetter, Stream } from "effect"
import { ChildProcess, ChildProcessSpawner } from "effect/process"

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
  readonly kill: ReadonlyArray<Fault>
  /** `client-2@5`: start client-2 again when round 5 starts. */
  readonly restart: ReadonlyArray<Fault>
  readonly heartbeatInterval: string
  readonly heartbeatTimeout: string
  readonly roundTimeout: string
}

/**
 * A fault scheduled at the start of a round.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fault {
  readonly client: string
  readonly round: number
}

/**
 * Parses `client-2@3`.
 *
 * @since 0.1.0
 * @category parsing
 */
export const Fault = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[\w.-]+@\d+$/, { message: "expected CLIENT@ROUND, e.g. client-2@3" })),
  Schema.decodeTo(Schema.Struct({ client: Schema.String, round: Schema.Int }), {
    decode: SchemaGetter.transform((text: string) => {
      const at = text.lastIndexOf("@")
      return { client: text.slice(0, at), round: Number(text.slice(at + 1)) }
    }),
    encode: SchemaGetter.transform((fault: Fault) => `${fault.client}@${fault.round}`),
  }),
)

/**
 * The demo failed: the server exited badly or never reported a port.
 *
 * @since 0.1.0
 * @category errors
 */
export class DemoFailed extends Schema.TaggedError<DemoFailed>()("DemoFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

const ServerEvent = Schema.Struct({
  event: Schema.String,
  port: Schema.optional(Schema.Number),
  round: Schema.optional(Schema.Number),
  participants: Schema.optional(Schema.Array(Schema.String)),
  excluded: Schema.optional(Schema.Array(Schema.Struct({ id: Schema.String, reason: Schema.String }))),
  testAccuracy: Schema.optional(Schema.Number),
  testLoss: Schema.optional(Schema.Number),
  durationMs: Schema.optional(Schema.Number),
  finalAccuracy: Schema.optional(Schema.Number),
  id: Schema.optional(Schema.String),
  reason: Schema.optional(Schema.String),
})
const decodeEvent = Schema.decodeUnknownOption(Schema.fromJsonString(ServerEvent))

const bin = (app: string) => fileURLToPath(new URL(`../../${app}/dist/bin.js`, import.meta.url))

const pad = (text: string, width: number) => (text.length >= width ? text : text + " ".repeat(width - text.length))

/**
 * Runs the demo and returns the final accuracy. Every process it starts is
 * stopped when the returned effect ends, fails or is interrupted.
 *
 * @since 0.1.0
 * @category run
 */
export const run = Effect.fnUntraced(function* (options: DemoOptions) {
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const secret = randomBytes(16).toString("hex")
  const node = process.execPath
  const startedAt = yield* Clock.currentTimeMillis

  const server = yield* spawner.spawn(
    ChildProcess.make(
      node,
      [
        bin("fed-server"),
        "--port",
        "0",
        "--secret",
        secret,
        "--expected-clients",
        String(options.clients),
        "--min-clients",
        String(Math.max(1, Math.ceil(options.clients / 2))),
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
      { stderr: "inherit" },
    ),
  )

  const port = yield* Deferred.make<number>()
  const finalAccuracy = yield* Ref.make<Option.Option<number>>(Option.none())
  const clients = new Map<string, Fiber.Fiber<unknown, unknown>>()
  const handles = new Map<string, ChildProcessSpawner.ChildProcessHandle>()

  const startClient = (index: number) =>
    Effect.gen(function* () {
      const id = `client-${index}`
      const serverPort = yield* Deferred.await(port)
      const fiber = yield* Effect.forkChild(
        Effect.scoped(
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
                  "--secret",
                  secret,
                  "--shard-index",
                  String(index),
                  "--shard-count",
                  String(options.clients),
                  "--partition",
                  options.partition,
                  "--seed",
                  String(options.seed),
                ],
                { stdout: "ignore", stderr: "inherit" },
              ),
            )
            handles.set(id, handle)
            return yield* handle.exitCode
          }),
        ),
      )
      clients.set(id, fiber)
    })

  const injectFaults = (round: number) =>
    Effect.gen(function* () {
      for (const fault of options.kill) {
        if (fault.round !== round) continue
        const handle = handles.get(fault.client)
        if (handle === undefined) continue
        yield* Console.log(`  ! killing ${fault.client} (SIGKILL) at the start of round ${round}`)
        // SIGKILL models a crash: no close frame, no goodbye; the server must notice by itself.
        yield* handle.kill({ killSignal: "SIGKILL" }).pipe(Effect.ignore)
        handles.delete(fault.client)
        clients.delete(fault.client)
      }
      for (const fault of options.restart) {
        if (fault.round !== round || clients.has(fault.client)) continue
        const index = Number(fault.client.slice(fault.client.lastIndexOf("-") + 1))
        yield* Console.log(`  ! restarting ${fault.client} at the start of round ${round}`)
        yield* startClient(index)
      }
    })

  yield* Console.log(
    `fedguard demo: 1 server + ${options.clients} clients on 127.0.0.1, ${options.rounds} rounds, ` +
      `${options.model}, ${options.partition}`,
  )
  const header = `${pad("round", 6)}${pad("participants", 14)}${pad("excluded", 28)}${pad("accuracy", 10)}${pad("loss", 8)}time`

  const events = handleEvents(server, {
    onListening: (p) => Deferred.succeed(port, p).pipe(Effect.asVoid),
    onRoundStarted: injectFaults,
    onRoundCompleted: (row) => Console.log(row),
    onHeader: Console.log(header),
    onFinal: (accuracy) => Ref.set(finalAccuracy, Option.some(accuracy)),
    onClientEvent: (line) => Console.log(line),
  })
  const reader = yield* Effect.forkChild(events)
  yield* Deferred.await(port).pipe(
    Effect.timeoutOption("60 seconds"),
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new DemoFailed({ reason: "the server reported no port" })),
        onSome: Effect.succeed,
      }),
    ),
  )
  for (let index = 0; index < options.clients; index++) yield* startClient(index)

  const exitCode = yield* server.exitCode.pipe(Effect.mapError((error) => new DemoFailed({ reason: error.message })))
  yield* Fiber.join(reader).pipe(Effect.ignore)
  if (exitCode !== ChildProcessSpawner.ExitCode(0)) {
    return yield* new DemoFailed({ reason: `fed-server exited with code ${exitCode}` })
  }
  // Clients exit on their own once the server says training is complete.
  yield* Effect.forEach(
    [...clients.values()],
    (fiber) => Fiber.join(fiber).pipe(Effect.timeout("15 seconds"), Effect.ignore),
    {
      discard: true,
    },
  )
  const accuracy = yield* Ref.get(finalAccuracy)
  const seconds = (((yield* Clock.currentTimeMillis) - startedAt) / 1000).toFixed(1)
  if (Option.isNone(accuracy)) return yield* new DemoFailed({ reason: "the server reported no final accuracy" })
  yield* Console.log(
    `final accuracy ${accuracy.value.toFixed(4)} after ${options.rounds} rounds in ${seconds} s; report: ${options.report}`,
  )
  return accuracy.value
})

const handleEvents = (
  server: ChildProcessSpawner.ChildProcessHandle,
  on: {
    readonly onListening: (port: number) => Effect.Effect<void>
    readonly onRoundStarted: (round: number) => Effect.Effect<void>
    readonly onRoundCompleted: (row: string) => Effect.Effect<void>
    readonly onHeader: Effect.Effect<void>
    readonly onFinal: (accuracy: number) => Effect.Effect<void>
    readonly onClientEvent: (line: string) => Effect.Effect<void>
  },
) =>
  server.stdout.pipe(
    Stream.decodeText(),
    Stream.splitLines,
    Stream.runForEach((line) => {
      const parsed = decodeEvent(line)
      if (Option.isNone(parsed)) return Effect.void
      const event = parsed.value
      switch (event.event) {
        case "listening":
          return event.port === undefined ? Effect.void : on.onListening(event.port).pipe(Effect.andThen(on.onHeader))
        case "round-started":
          return event.round === undefined ? Effect.void : on.onRoundStarted(event.round)
        case "round-completed": {
          const excluded = (event.excluded ?? []).map((e) => `${e.id}:${e.reason}`).join(",") || "-"
          return on.onRoundCompleted(
            `${pad(String(event.round), 6)}${pad(String(event.participants?.length ?? 0), 14)}${pad(excluded, 28)}` +
              `${pad((event.testAccuracy ?? 0).toFixed(4), 10)}${pad((event.testLoss ?? 0).toFixed(3), 8)}` +
              `${((event.durationMs ?? 0) / 1000).toFixed(1)} s`,
          )
        }
        case "client-offline":
        case "client-online":
        case "client-rejected":
        case "quorum-lost":
        case "quorum-restored":
          return on.onClientEvent(`  · ${event.event} ${event.id ?? ""} ${event.reason ?? ""}`.trimEnd())
        case "training-completed":
          return event.finalAccuracy === undefined ? Effect.void : on.onFinal(event.finalAccuracy)
        default:
          return Effect.void
      }
    }),
  )
