/**
 * One chaos run's federation: a fed-server (restartable on the same port and
 * state file) and its fed-clients as real processes, the faults injected
 * into them (each stamped with the `Clock` just before its signal), and the
 * `RunRecord` they add up to.
 *
 * Settings are small and fast by default (softmax, 300 ms beats, a 1.5 s
 * heartbeat timeout, `--local-steps`), so a run takes seconds.
 *
 * @since 0.1.0
 */
import { Effect, Option, Scope } from "effect"
import { ChildProcessSpawner } from "effect/process"
import * as Fleet from "./Fleet.ts"
import type { Fault, ReferenceRound, RunRecord, ServerLife } from "./RunRecord.ts"

/**
 * The federation of a run. Durations are milliseconds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly clients: number
  readonly minClients: number
  readonly rounds: number
  readonly model: string
  readonly localSteps: number
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  readonly roundTimeoutMs: number
  /** The address the server listens on and clients connect to (default 127.0.0.1). */
  readonly host: string
  /** `--client-ids`: ids allowed to join (default: any id that proves the secret). */
  readonly clientIds?: ReadonlyArray<string> | undefined
  /** Ids hostile peers authenticate as (must be in `clientIds` when that is set). */
  readonly hostileIds: ReadonlyArray<string>
  /** `--state` (default `:memory:`). */
  readonly state: string
  /** The longest the whole run may take. */
  readonly boundMs: number
}

/**
 * The defaults: 4 clients, quorum 2, 8 rounds of softmax with 30 local
 * steps, beats every 300 ms, offline after 1.5 s, rounds of at most 15 s,
 * 90 s for the whole run.
 *
 * @since 0.1.0
 * @category models
 */
export const defaults: Settings = {
  clients: 4,
  minClients: 2,
  rounds: 8,
  model: "softmax",
  localSteps: 30,
  heartbeatIntervalMs: 300,
  heartbeatTimeoutMs: 1500,
  roundTimeoutMs: 15_000,
  host: "127.0.0.1",
  hostileIds: [],
  state: ":memory:",
  boundMs: 90_000,
}

/**
 * The honest clients' ids: `c0` … `c(N-1)`.
 *
 * @since 0.1.0
 * @category models
 */
export const honestIds = (settings: Settings): ReadonlyArray<string> =>
  Array.from({ length: settings.clients }, (_, i) => `c${i}`)

/**
 * The server's flags for `settings` (without `--port`).
 *
 * @since 0.1.0
 * @category models
 */
export const serverFlags = (settings: Settings): ReadonlyArray<string> => [
  ...["--host", settings.host, "--expected-clients", String(settings.clients)],
  ...["--min-clients", String(settings.minClients), "--rounds", String(settings.rounds)],
  ...["--model", settings.model, "--local-steps", String(settings.localSteps)],
  ...["--heartbeat-interval", `${settings.heartbeatIntervalMs}ms`],
  ...["--heartbeat-timeout", `${settings.heartbeatTimeoutMs}ms`],
  ...["--round-timeout", `${settings.roundTimeoutMs}ms`, "--join-timeout", "30s", "--state", settings.state],
  ...(settings.clientIds === undefined ? [] : ["--client-ids", settings.clientIds.join(",")]),
]

// Clients retry fast and long enough to outlast a server restart on a loaded machine; a client
// that cannot reach the server (a partition) gives up a connect after 3 s and tries again.
const clientFlags = ["--retry-base-delay", "100ms", "--retry-max-delay", "400ms", "--max-retries", "100"]
const clientJoinTimeout = ["--join-timeout", "3s"]

/**
 * A running federation: the current server, the clients, and the fault log.
 *
 * @since 0.1.0
 * @category models
 */
export interface Run {
  readonly settings: Settings
  readonly secret: string
  readonly server: () => Fleet.Server
  /** Every server process so far, the current one last. */
  readonly servers: () => ReadonlyArray<Fleet.Server>
  readonly client: (id: string) => Option.Option<Fleet.Client>
  readonly startClient: (id: string, netns?: string) => Effect.Effect<void>
  readonly fault: (kind: Fault["kind"], target: string, note?: string) => Effect.Effect<void>
  /** Records a fault injected at a time the scenario took itself (just before its signal). */
  readonly recordFault: (fault: Fault) => Effect.Effect<void>
  readonly killClient: (id: string, note?: string) => Effect.Effect<void>
  readonly signalClient: (id: string, kind: "stop" | "cont", note?: string) => Effect.Effect<void>
  readonly restartServer: (note?: string) => Effect.Effect<void>
  readonly round: (tag: "RoundStarted" | "RoundCompleted", round: number) => Effect.Effect<boolean>
  readonly finish: Effect.Effect<boolean>
  readonly record: (extra: {
    readonly scenario: string
    readonly seed: number
    readonly finished: boolean
    readonly impostorRemotes?: ReadonlyArray<string>
    readonly reference?: ReadonlyArray<ReferenceRound> | undefined
    readonly notes?: Readonly<Record<string, number>>
  }) => Effect.Effect<RunRecord>
}

// SIGKILL, SIGSTOP and SIGCONT of a client, each recorded as a fault just before its signal.
const signals = (
  clients: ReadonlyMap<string, Fleet.Client>,
  fault: (kind: Fault["kind"], target: string, note?: string) => Effect.Effect<void>,
): Pick<Run, "killClient" | "signalClient"> => ({
  killClient: (id, note) =>
    Effect.gen(function* () {
      const client = clients.get(id)
      if (client === undefined) return
      yield* fault("kill", id, note)
      yield* client.kill
    }),
  signalClient: (id, kind, note) =>
    Effect.gen(function* () {
      const client = clients.get(id)
      if (client === undefined) return
      yield* fault(kind, id, note)
      yield* Fleet.signal(client.pid, kind === "stop" ? "SIGSTOP" : "SIGCONT")
    }),
})

// The run's record from what it saw.
const toRecord = (
  settings: Settings,
  extra: Parameters<Run["record"]>[0],
  seen: {
    readonly lives: ReadonlyArray<Fleet.Server>
    readonly clients: ReadonlyArray<Fleet.Client>
    readonly faults: ReadonlyArray<Fault>
    readonly durationMs: number
  },
): RunRecord => ({
  scenario: extra.scenario,
  seed: extra.seed,
  settings: {
    rounds: settings.rounds,
    minClients: settings.minClients,
    heartbeatIntervalMs: settings.heartbeatIntervalMs,
    heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
    honest: honestIds(settings),
    hostileIds: settings.hostileIds,
  },
  servers: seen.lives.map((life): ServerLife => life.life()),
  faults: [...seen.faults].sort((a, b) => a.at - b.at),
  impostorRemotes: [...(extra.impostorRemotes ?? [])],
  peakRssBytes: Math.max(0, ...seen.lives.map((life) => life.peakRss())),
  finished: extra.finished,
  durationMs: seen.durationMs,
  reference: extra.reference,
  notes: extra.notes,
  clients: seen.clients.map((client) => client.life()),
})

/**
 * Starts the server for `settings` on a free port (it does not start the
 * clients: `startClient` does, so a scenario may place one in a namespace).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  settings: Settings,
  secret: string,
): Effect.fn.Return<Run, never, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner> {
  const startedAt = yield* Fleet.now
  const spawner = yield* ChildProcessSpawner.ChildProcessSpawner
  const scope = yield* Effect.scope
  // Processes started later (restarts) live in the run's Scope too.
  const inRun = <A>(effect: Effect.Effect<A, never, Scope.Scope | ChildProcessSpawner.ChildProcessSpawner>) =>
    effect.pipe(Scope.provide(scope), Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner))
  const flags = serverFlags(settings)
  const lives: Array<Fleet.Server> = [yield* Fleet.startServer({ port: 0, secret, flags })]
  const port = lives[0]!.port
  const clients = new Map<string, Fleet.Client>()
  // Every client process started, restarts included, for the record.
  const started: Array<Fleet.Client> = []
  const faults: Array<Fault> = []
  const ids = honestIds(settings)

  const fault = (kind: Fault["kind"], target: string, note?: string) =>
    Effect.map(Fleet.now, (at) => {
      faults.push({ kind, target, at, note })
    })

  const startClient = (id: string, netns?: string) =>
    inRun(
      Effect.gen(function* () {
        const previous = clients.get(id)
        if (previous !== undefined) yield* previous.release
        const client = yield* Fleet.startClient({
          id,
          index: ids.indexOf(id),
          count: settings.clients,
          server: `${settings.host}:${port}`,
          secret,
          flags: [...clientFlags, ...clientJoinTimeout],
          netns,
        })
        clients.set(id, client)
        started.push(client)
      }),
    )

  const server = () => lives.at(-1)!
  const round = (tag: "RoundStarted" | "RoundCompleted", n: number) =>
    server()
      .waitFor(`${tag} ${n}`, (event) => event._tag === tag && event.round >= n, settings.boundMs)
      .pipe(
        Effect.as(true),
        Effect.orElseSucceed(() => false),
      )

  const run: Run = {
    settings,
    secret,
    server,
    servers: () => [...lives],
    client: (id) => Option.fromNullishOr(clients.get(id)),
    // Starting a client that ran before is a restart: the end of its fault.
    startClient: (id, netns) =>
      Effect.gen(function* () {
        const again = clients.has(id)
        yield* startClient(id, netns)
        if (again) yield* fault("restart", id)
      }),
    fault,
    recordFault: (f) =>
      Effect.sync(() => {
        faults.push(f)
      }),
    ...signals(clients, fault),
    restartServer: (note) =>
      Effect.gen(function* () {
        const old = server()
        yield* fault("kill-server", "server", note)
        yield* old.kill
        yield* fault("restart-server", "server")
        lives.push(yield* inRun(Fleet.startServer({ port, secret, flags })))
      }),
    round,
    // Training completed and the server exited by itself, within the run's bound.
    finish: Effect.gen(function* () {
      const elapsed = (yield* Fleet.now) - startedAt
      const left = Math.max(1, settings.boundMs - elapsed)
      const done = yield* server()
        .waitFor("training-completed", (event) => event._tag === "TrainingCompleted", left)
        .pipe(Effect.andThen(server().ended.pipe(Effect.timeoutOption(10_000))), Effect.option)
      return Option.isSome(done) && Option.isSome(done.value)
    }),
    record: (extra) =>
      Effect.map(Fleet.now, (finishedAt) =>
        toRecord(settings, extra, {
          lives,
          clients: started,
          faults,
          durationMs: finishedAt - startedAt,
        }),
      ),
  }
  return run
})

/**
 * Starts every honest client that is not running yet.
 *
 * @since 0.1.0
 * @category constructors
 */
export const startAll = (run: Run, except: ReadonlyArray<string> = []) =>
  Effect.forEach(
    honestIds(run.settings).filter((id) => !except.includes(id)),
    (id) => run.startClient(id),
    { discard: true },
  )
