/**
 * A whole federation in one process, deterministically: the real
 * fed-server (`FedServer.run`: `ClientSession`, `ClientLiveness` over the
 * `LivenessTracker`, `RoundCoordinator` with stall-guard, `UpdateAdmission`,
 * the `TrainingJob` under job-lifecycle on a `:memory:` `JobStore`) and N
 * real fed-clients (`FedClient.participate`: `ServerSession` with its
 * `HeartbeatSender`, `LocalTrainer`, the `ReconnectLoop` on
 * `@fedguard/retry`), over `InMemoryTransport`, on the `TestClock`, with a
 * seeded fault schedule (`FaultSchedule`) and a cheap vector model
 * (`SimWorkload`).
 *
 * Time is virtual and advances only when nothing can run (see `VirtualTime`),
 * so a run's event log is a function of its options: the same seed gives the
 * same log, byte for byte (`eventLogSha256`).
 *
 * @since 0.1.0
 */
import { NodeServices } from "@effect/platform-node"
import * as ClientEvents from "@fedguard/fed-client/ClientEvents"
import { ClientSettings } from "@fedguard/fed-client/ClientSettings"
import * as FedClient from "@fedguard/fed-client/FedClient"
import * as LocalData from "@fedguard/fed-client/LocalData"
import * as FedServer from "@fedguard/fed-server/FedServer"
import { ServerSettings, timeouts } from "@fedguard/fed-server/ServerSettings"
import { UpdateSpill } from "@fedguard/fed-server/UpdateSpill"
import { Workload } from "@fedguard/federation"
import { InMemoryTransport, Transport } from "@fedguard/transport"
import { Clock, Effect, Exit, Fiber, Logger, Random, Schema, type Scope, Stream } from "effect"
import * as EventRecorder from "./EventRecorder.ts"
import * as FaultSchedule from "./FaultSchedule.ts"
import * as Findings from "./Findings.ts"
import * as Prng from "./internal/Prng.ts"
import * as MemorySpill from "./MemorySpill.ts"
import * as SimWorkload from "./SimWorkload.ts"
import * as VirtualTime from "./VirtualTime.ts"

/**
 * Options of a run. Defaults: 1,000 clients, 100 rounds, seed 1, a quorum
 * (`minClients`) of 60 % of the clients, `faultRate` 0.003 faults per
 * client and round (300 for 1,000 × 100), an `outage` partitioning 45 % of
 * the clients at once (0 for none), round timeout 20 s (so heartbeats every
 * 5 s, offline after 15 s of silence, an upload stalled after 10 s without
 * progress), training 0.5–1.5 s of virtual time per round.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly clients: number
  readonly rounds: number
  readonly seed: number
  readonly minClientsFraction?: number | undefined
  readonly faultRate?: number | undefined
  readonly outage?: number | undefined
  readonly roundTimeout?: string | undefined
  readonly trainMs?: { readonly min: number; readonly max: number } | undefined
}

const secret = "simulated-federation-secret"

const serverSettingsOf = (options: Options) =>
  Schema.decodeUnknownSync(ServerSettings)({
    host: "server",
    port: "1",
    state: ":memory:",
    secret,
    seed: String(options.seed),
    expectedClients: String(options.clients),
    minClients: String(Math.max(1, Math.floor(options.clients * (options.minClientsFraction ?? 0.6)))),
    rounds: String(options.rounds),
    roundTimeout: options.roundTimeout ?? "20s",
    jobName: "sim",
  })

const clientSettingsOf = (options: Options, index: number) =>
  Schema.decodeUnknownSync(ClientSettings)({
    server: "server:1",
    id: clientId(index),
    secret,
    seed: String(options.seed),
    shardIndex: String(index),
    shardCount: String(options.clients),
    maxRetries: "100",
    joinTimeout: "10s",
  })

/**
 * The id of client `index`: `c0007` (zero-padded, so id order is index order).
 *
 * @since 0.1.0
 * @category models
 */
export const clientId = (index: number): string => `c${String(index).padStart(4, "0")}`

// The server's address on the in-memory network; faults name the wires by it.
const server = "server:1"

/**
 * What a run found: its figures and invariant violations (see `Findings`),
 * the event log's fingerprint, and the virtual time it took.
 *
 * @since 0.1.0
 * @category models
 */
export interface Result {
  readonly clients: number
  readonly rounds: number
  readonly seed: number
  readonly finished: boolean
  readonly serverOutcome: string
  readonly roundsCompleted: number
  readonly roundsPaused: ReadonlyArray<number>
  readonly finalAccuracy: number
  readonly virtualMs: number
  readonly eventLogSha256: string
  readonly eventLogLines: number
  readonly eventLogBytes: number
  /** The event log itself: one JSON object per line, `t` its virtual time in ms. */
  readonly eventLog: string
  readonly heartbeatTimeoutMs: number
  readonly detection: {
    readonly silenceToOffline: Findings.Summary
    readonly faultToOffline: Readonly<Record<string, Findings.Summary>>
    readonly undetected: Readonly<Record<string, number>>
  }
  readonly exclusions: Readonly<Record<string, number>>
  readonly faults: Readonly<Record<string, number>>
  readonly clientEnds: Readonly<Record<string, number>>
  readonly violations: ReadonlyArray<Findings.Violation>
  readonly spillsLeft: number
}

// Everything the run's fibers share.
interface World {
  readonly options: Options
  readonly network: InMemoryTransport.InMemoryNetwork["Service"]
  readonly scope: Scope.Scope
  readonly clients: Map<number, Fiber.Fiber<unknown, unknown>>
  readonly clientEnds: Record<string, number>
  // Virtual time of the last frame the server received from each client.
  readonly lastInbound: Map<string, number>
  // Faults in progress, by client id, until the server marks the client offline.
  readonly pending: Map<string, { readonly kind: FaultSchedule.Kind; readonly at: number }>
  readonly silences: Array<number>
  readonly latencies: Record<string, Array<number>>
  readonly undetected: Record<string, number>
  readonly violations: Array<Findings.Violation>
  readonly updates: Findings.Updates
  readonly heartbeatTimeoutMs: number
}

// The server's transport, noting when each client's frames reach it (read synchronously from the
// clock: one more effect per frame would be a tenth of the run).
const tapped = (
  w: World,
  transport: Transport.Transport["Service"],
  clock: Clock.Clock,
): Transport.Transport["Service"] => ({
  connect: transport.connect,
  listen: (address) =>
    Effect.map(transport.listen(address), (listener) => ({
      ...listener,
      connections: Stream.map(listener.connections, (connection) => ({
        ...connection,
        inbound: Stream.map(connection.inbound, (item) => {
          w.lastInbound.set(connection.remote, clock.currentTimeMillisUnsafe())
          return item
        }),
      })),
    })),
})

// Invariant 1 and the detection latencies, at the instant each `client-offline` is logged.
const onEntry = (w: World) => (entry: EventRecorder.Entry) => {
  if (entry.event !== "client-offline") return
  const id = String(entry.fields.id)
  const last = w.lastInbound.get(id)
  const silence = last === undefined ? undefined : entry.t - last
  if (entry.fields.reason === "timeout" && silence !== undefined) w.silences.push(silence)
  const violation = Findings.checkOffline(entry, silence, w.heartbeatTimeoutMs)
  if (violation !== undefined) w.violations.push(violation)
  const fault = w.pending.get(id)
  if (fault !== undefined) {
    w.pending.delete(id)
    w.latencies[fault.kind] = [...(w.latencies[fault.kind] ?? []), entry.t - fault.at]
  }
}

const startClient = (w: World, index: number) =>
  Effect.gen(function* () {
    const settings = clientSettingsOf(w.options, index)
    const fiber = yield* FedClient.participate(settings).pipe(
      Effect.provide(ClientEvents.layer),
      Effect.provide(LocalData.layer(settings)),
      Effect.provideService(Transport.Transport, w.network.endpoint(settings.id)),
      Effect.onExit((exit) =>
        Effect.sync(() => {
          const end = Exit.isSuccess(exit) ? "completed" : Exit.hasInterrupts(exit) ? "interrupted" : "failed"
          w.clientEnds[end] = (w.clientEnds[end] ?? 0) + 1
        }),
      ),
      Effect.ignore,
      Effect.forkIn(w.scope),
    )
    w.clients.set(index, fiber)
  })

// One fault: applied, held for its duration, undone.
const play = (w: World, fault: FaultSchedule.Fault) =>
  Effect.gen(function* () {
    const id = clientId(fault.client)
    const { network } = w
    w.pending.set(id, { kind: fault.kind, at: fault.at })
    switch (fault.kind) {
      case "drop":
        yield* network.drop(id, server, fault.probability ?? 0.5, Prng.mix(w.options.seed, fault.at, fault.client))
        break
      case "delay":
        yield* network.delay(id, server, fault.delayMs ?? 1_000)
        yield* network.delay(server, id, fault.delayMs ?? 1_000)
        break
      case "partition":
        yield* network.partition(id, server)
        break
      case "stall":
        yield* network.stall(id)
        break
      case "kill": {
        yield* network.kill(id)
        const fiber = w.clients.get(fault.client)
        if (fiber !== undefined) yield* Fiber.interrupt(fiber)
        break
      }
    }
    yield* Effect.sleep(fault.forMs)
    // A fault the server never noticed (a short one, as it should be).
    if (w.pending.get(id)?.at === fault.at) {
      w.pending.delete(id)
      w.undetected[fault.kind] = (w.undetected[fault.kind] ?? 0) + 1
    }
    switch (fault.kind) {
      case "drop":
        return yield* network.drop(id, server, 0, 0)
      case "delay":
        yield* network.delay(id, server, 0)
        return yield* network.delay(server, id, 0)
      case "partition":
        return yield* network.heal(id, server)
      case "stall":
        return yield* network.resume(id)
      case "kill":
        yield* network.revive(id)
        return yield* startClient(w, fault.client)
    }
  })

// Plays the schedule: each fault starts at its time, in a fiber of its own.
const inject = (w: World, faults: ReadonlyArray<FaultSchedule.Fault>) =>
  Effect.forEach(
    faults,
    (fault) =>
      Effect.gen(function* () {
        const now = yield* Clock.currentTimeMillis
        if (fault.at > now) yield* Effect.sleep(fault.at - now)
        yield* Effect.forkIn(play(w, fault), w.scope)
      }),
    { discard: true },
  )

const countBy = <A>(items: ReadonlyArray<A>, key: (a: A) => string) => {
  const counts: Record<string, number> = {}
  for (const item of items) counts[key(item)] = (counts[key(item)] ?? 0) + 1
  return counts
}

// The server, the clients and the fault schedule, started inside the clock's first wake; then
// the clock driven until the server's job ends. The clients started at 10 ms find it listening.
const federate = (w: World, settings: ServerSettings, faults: ReadonlyArray<FaultSchedule.Fault>) =>
  Effect.gen(function* () {
    let outcome: Exit.Exit<{ readonly finalAccuracy: number }, unknown> | undefined
    const clock = yield* Clock.clockWith(Effect.succeed)
    const serverRun = FedServer.run(settings).pipe(
      Effect.provideService(Transport.Transport, tapped(w, w.network.endpoint("server"), clock)),
      Effect.onExit((exit) =>
        Effect.sync(() => {
          outcome = exit
        }),
      ),
      Effect.ignore,
    )
    yield* VirtualTime.startTracked(
      Effect.gen(function* () {
        yield* Effect.forkIn(serverRun, w.scope)
        yield* Effect.sleep(9)
        for (let i = 0; i < w.options.clients; i++) yield* startClient(w, i)
        yield* Effect.forkIn(inject(w, faults), w.scope)
      }),
    )
    const limitMs = w.options.rounds * timeouts(settings).roundTimeout * 3 + 600_000
    const finished = yield* VirtualTime.runUntil(() => outcome !== undefined, { stepMs: 1_000, limitMs })
    yield* Fiber.interruptAll([...w.clients.values()])
    return { finished, outcome }
  })

/**
 * Runs one simulation and returns what it found (see {@link Result}). It
 * provides everything it needs: the TestClock, the in-memory network, the
 * sim's workload and in-memory spills, a `Random` seeded with `seed`, and a
 * logger that records the event log instead of printing it.
 *
 * @since 0.1.0
 * @category running
 */
export const run = (options: Options): Effect.Effect<Result> => {
  const settings = serverSettingsOf(options)
  const heartbeatTimeoutMs = timeouts(settings).heartbeatTimeout
  const faults = FaultSchedule.make({
    seed: options.seed,
    clients: options.clients,
    horizonMs: options.rounds * 2_500,
    faults: Math.round(options.clients * options.rounds * (options.faultRate ?? 0.003)),
    heartbeatTimeoutMs,
    outage: options.outage ?? 0.45,
  })
  const updates: Findings.Updates = new Map()
  const workload = SimWorkload.make({
    seed: options.seed,
    trainMs: options.trainMs,
    onTrained: (shardIndex, round, weights, samples) => {
      const byClient = updates.get(round) ?? new Map()
      updates.set(round, byClient.set(clientId(shardIndex), { weights, samples }))
    },
  })
  const spill = MemorySpill.make()
  let world: World | undefined
  const recorder = EventRecorder.make((entry) => world !== undefined && onEntry(world)(entry))
  return Effect.gen(function* () {
    const w: World = {
      options,
      network: yield* InMemoryTransport.InMemoryNetwork,
      scope: yield* Effect.scope,
      clients: new Map(),
      clientEnds: {},
      lastInbound: new Map(),
      pending: new Map(),
      silences: [],
      latencies: {},
      undetected: {},
      violations: [],
      updates,
      heartbeatTimeoutMs,
    }
    world = w
    const { finished, outcome } = yield* federate(w, settings, faults)
    const virtualMs = yield* Clock.currentTimeMillis
    const rounds = yield* Findings.checkRounds(recorder.entries, updates, settings.minClients)
    return {
      clients: options.clients,
      rounds: options.rounds,
      seed: options.seed,
      finished,
      serverOutcome: outcome === undefined ? "running" : Exit.isSuccess(outcome) ? "completed" : "failed",
      roundsCompleted: rounds.completed,
      roundsPaused: rounds.paused,
      finalAccuracy: outcome !== undefined && Exit.isSuccess(outcome) ? outcome.value.finalAccuracy : 0,
      virtualMs,
      eventLogSha256: recorder.sha256(),
      eventLogLines: recorder.lines(),
      eventLogBytes: recorder.bytes(),
      eventLog: recorder.text(),
      heartbeatTimeoutMs,
      detection: {
        silenceToOffline: Findings.summary(w.silences),
        faultToOffline: Object.fromEntries(
          Object.entries(w.latencies).map(([kind, samples]) => [kind, Findings.summary(samples)]),
        ),
        undetected: w.undetected,
      },
      exclusions: rounds.exclusions,
      faults: countBy(faults, (fault) => fault.kind),
      clientEnds: w.clientEnds,
      violations: [...w.violations, ...rounds.violations],
      spillsLeft: spill.held(),
    } satisfies Result
  }).pipe(
    Effect.scoped,
    Effect.provide(InMemoryTransport.layerNetwork),
    Effect.provideService(Workload.Workload, workload),
    Effect.provideService(UpdateSpill, spill),
    Random.withSeed(options.seed),
    Effect.provide(Logger.layer([recorder.logger])),
    Effect.provide(VirtualTime.layer),
    Effect.provide(NodeServices.layer),
  )
}
