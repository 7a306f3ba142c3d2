/**
 * Runs one federated round: streams the global model to every participant,
 * collects their updates through `UpdateAdmission`, excludes whoever dies,
 * stalls, straggles or sends a refused update, and averages what was admitted
 * (FedAvg, McMahan et al. 2017).
 *
 * Its inputs arrive on one mailbox (updates from sessions, departures from
 * the `ServerEvents` hub, outcomes of its own model sends) and are folded into
 * the round's `RoundState`, a value. A participant leaves `pending` the moment
 * anything decides its fate, so the round ends as soon as the last pending
 * participant is decided: a rejected, dead or replaced client never holds it.
 *
 * Memory does not grow with the number of clients: the global model is
 * encoded once per round and the same bytes are streamed to every
 * participant; each upload streams through admission's checks into a spill
 * file of the round (`UpdateIntake`, `UpdateSpill`), and the round ends by
 * reducing the spills chunk by chunk in client-id order
 * (`CanonicalFedAvg.aggregateSpilled`). The server holds the model it sends,
 * the model it builds and a few chunk buffers, whatever the number of
 * clients; the round's spills are deleted when it ends, however it ends.
 *
 * @since 0.2.0
 */

import { Progress, Protocol } from "@fedguard/app-kit"
import { Weights } from "@fedguard/federation"
import { NeighborRegistry } from "@fedguard/retry"
import { AckProgressWatchdog } from "@fedguard/stall-guard"
import type { Connection } from "@fedguard/transport"
import { PeerId } from "@fedguard/transport"
import {
  Clock,
  Context,
  Duration,
  Effect,
  Layer,
  Option,
  Queue,
  Ref,
  References,
  Result,
  type Scope,
  Stream,
} from "effect"
import { aggregateSpilled, defaultAggregationChunk } from "./CanonicalFedAvg.ts"
import { ClientDirectory } from "./ClientDirectory.ts"
import * as RoundState from "./RoundState.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"
import * as UpdateAdmission from "./UpdateAdmission.ts"
import * as UpdateIntake from "./UpdateIntake.ts"
import { UpdateSpill, type UpdateSpillService } from "./UpdateSpill.ts"

type Input =
  | { readonly _tag: "Candidate"; readonly candidate: UpdateAdmission.Candidate }
  | { readonly _tag: "Unreadable"; readonly refusal: UpdateAdmission.UpdateRefused }
  | { readonly _tag: "Gone"; readonly id: string; readonly reason: RoundState.ExclusionReason }
  | { readonly _tag: "UploadStalled"; readonly id: string; readonly round: number }
  | {
      readonly _tag: "SendFailed"
      readonly round: number
      readonly id: string
      readonly reason: RoundState.ExclusionReason
    }

/**
 * A finished round: its final state, the new global model (the previous one
 * when no update was admitted, `modelUpdated: false`), the weight bytes
 * received and sent, and its duration in milliseconds.
 *
 * @since 0.2.0
 * @category models
 */
export interface RoundOutcome {
  readonly state: RoundState.RoundState
  readonly global: Float32Array
  readonly modelUpdated: boolean
  readonly bytesIn: number
  readonly bytesOut: number
  readonly durationMs: number
}

/**
 * The coordinator:
 *
 * - `receive(id, transfer)`: an `update` byte stream from `id`'s session. Its
 *   metadata is read, then its bytes (at most the model's size) stream
 *   through admission's checks into a spill of the running round, in the
 *   caller's fiber; the candidate is then handed to the round.
 * - `run(round, global, participants)`: runs one round to its end.
 *
 * @since 0.2.0
 * @category services
 */
export class RoundCoordinator extends Context.Service<
  RoundCoordinator,
  {
    readonly receive: (id: string, transfer: Connection.IncomingTransfer) => Effect.Effect<void>
    readonly run: (
      round: number,
      global: Float32Array,
      participants: ReadonlyArray<string>,
    ) => Effect.Effect<RoundOutcome>
  }
>()("@fedguard/fed-server/RoundCoordinator") {}

/**
 * Options: the model's `paramCount`; `roundTimeout`, the longest a round
 * waits for updates (later ones are stragglers; default 120 s);
 * `ackProgressTimeout`, how long a model send may make no ACK progress, and
 * an upload no progress, before the participant is excluded as `stalled`
 * (default 60 s, NVIDIA FLARE's fix B), checked every `checkInterval`
 * (default 5 s); `aggregationChunk`, the parameters reduced at a time at
 * the end of a round (default 262 144: 1 MiB read per update, a 2 MiB
 * float64 accumulator).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly paramCount: number
  readonly roundTimeout?: Duration.Input | undefined
  readonly ackProgressTimeout?: Duration.Input | undefined
  readonly checkInterval?: Duration.Input | undefined
  readonly aggregationChunk?: number | undefined
}

const sendFailure = (error: { readonly _tag: string }): RoundState.ExclusionReason => {
  switch (error._tag) {
    case "NeighborOffline":
    case "ConnectionClosed":
      return { _tag: "Offline" }
    case "SendTimeout":
    case "AckStalled":
    case "TimeoutError":
      return { _tag: "Stalled" }
    default:
      return { _tag: "SendFailed", error: error._tag }
  }
}

// The round that is running, and where its updates spill. An upload for any other round is not
// stored: it can only be refused.
interface RunningRound {
  readonly round: number
  readonly directory: string
}

// What the round functions below share: the services, the mailbox, and the options.
interface Deps {
  readonly directory: ClientDirectory["Service"]
  readonly events: ServerEvents["Service"]
  readonly neighbors: NeighborRegistry.NeighborRegistry["Service"]
  readonly spills: UpdateSpillService
  readonly mailbox: Queue.Queue<Input>
  readonly running: Ref.Ref<Option.Option<RunningRound>>
  // Stragglers of earlier rounds, by id: their late update is dropped without excluding them
  // from the running round (they are already training its model).
  readonly stragglers: Map<string, number>
  readonly paramCount: number
  readonly roundTimeoutMs: number
  readonly ackProgressTimeout: Duration.Input
  readonly checkInterval: Duration.Input
  readonly aggregationChunk: number
}

const declaredSamples = (deps: Deps, id: string) =>
  Effect.map(deps.directory.current(id), Option.match({ onNone: () => 0, onSome: (s) => s.declaredSamples }))

// Reads an update's metadata, streams its bytes through admission's checks into a spill of the
// running round, and hands the candidate to the round.
const receive =
  (deps: Deps) =>
  (id: string, transfer: Connection.IncomingTransfer): Effect.Effect<void> =>
    Effect.gen(function* () {
      const maxBytes = deps.paramCount * 4
      const meta = yield* Protocol.decodeMeta(Protocol.UpdateMeta, transfer.meta, id).pipe(Effect.result)
      if (Result.isFailure(meta)) {
        yield* transfer.abort("undecodable update metadata")
        const refusal = UpdateAdmission.undecodable(id, meta.failure.reason)
        return yield* Queue.offer(deps.mailbox, { _tag: "Unreadable", refusal })
      }
      const { round, samples } = meta.success
      const running = yield* Ref.get(deps.running)
      // What the metadata already refuses is read to its end (the sender finishes normally) but
      // not stored.
      const destination: UpdateIntake.Destination =
        Option.isNone(running) || running.value.round !== round
          ? { _tag: "Drop", refusal: UpdateAdmission.notRunning(id, round) }
          : Option.match(UpdateAdmission.refuseSamples(id, samples, yield* declaredSamples(deps, id)), {
              onNone: () => ({ _tag: "Spill", directory: running.value.directory }),
              onSome: (refusal) => ({ _tag: "Drop", refusal }),
            })
      const content = yield* UpdateIntake.read(transfer, {
        id,
        paramCount: deps.paramCount,
        destination,
        idleTimeout: deps.ackProgressTimeout,
      }).pipe(Effect.provideService(UpdateSpill, deps.spills), Effect.result)
      if (Result.isSuccess(content)) {
        const candidate = { id, round, samples, content: content.success }
        return yield* Queue.offer(deps.mailbox, { _tag: "Candidate", candidate })
      }
      const failure = content.failure
      switch (failure._tag) {
        case "TransferIdle":
        case "TransferDidNotStart":
          return yield* Queue.offer(deps.mailbox, { _tag: "UploadStalled", id, round })
        case "TransferTooLarge": {
          // Too many bytes is the sender's fault.
          const reason = `wrong length: more than ${maxBytes} bytes (${deps.paramCount} float32)`
          const refusal = new UpdateAdmission.UpdateRefused({ id, kind: "wrong-length", reason })
          return yield* Queue.offer(deps.mailbox, { _tag: "Unreadable", refusal })
        }
        case "UpdateSpillError": {
          yield* Effect.logWarning(failure.message)
          const refused = { _tag: "Refused", refusal: UpdateAdmission.unstored(id, failure.reason) } as const
          return yield* Queue.offer(deps.mailbox, {
            _tag: "Candidate",
            candidate: { id, round, samples, content: refused },
          })
        }
        default:
          // A connection that broke mid-upload is a departure, which the session's end reports.
          return
      }
    }).pipe(Effect.withSpan("RoundCoordinator.receive", { attributes: { "fedguard.client.id": id } }))

// One round's bookkeeping: its RoundState, folded over the mailbox's inputs, and the events
// that say what happened.
const ledger = (deps: Deps, round: number, participants: ReadonlyArray<string>) => {
  let state = RoundState.start(round, participants)

  const exclude = (id: string, reason: RoundState.ExclusionReason) =>
    Effect.gen(function* () {
      if (!state.pending.has(id)) return
      state = RoundState.exclude(state, id, reason)
      // Its update for this round may still come (late, or retried on a fresh stream).
      if (reason._tag === "Straggler" || reason._tag === "Stalled") deps.stragglers.set(id, round)
      const text = RoundState.reasonText(reason)
      yield* deps.events.publish(new ServerEvent.ClientExcluded({ round, id, reason: text }))
    })

  const refuse = (refusal: UpdateAdmission.UpdateRefused, excludes: boolean) =>
    Effect.gen(function* () {
      yield* deps.events.publish(new ServerEvent.UpdateRejected({ round, id: refusal.id, reason: refusal.reason }))
      const wasPending = state.pending.has(refusal.id)
      state = RoundState.reject(state, refusal, false)
      if (excludes && wasPending) yield* exclude(refusal.id, { _tag: "Rejected", refusal })
    })

  const admit = (candidate: UpdateAdmission.Candidate) =>
    Effect.gen(function* () {
      const late = candidate.round < round && deps.stragglers.get(candidate.id) === candidate.round
      const verdict = UpdateAdmission.check(candidate, {
        round,
        isParticipant: state.pending.has(candidate.id) || state.submitted.has(candidate.id),
        alreadySubmitted: state.submitted.has(candidate.id),
        declaredSamples: yield* declaredSamples(deps, candidate.id),
      })
      if (Result.isFailure(verdict)) {
        // A refused update's spill goes at once, not with the round's directory at the end.
        if (candidate.content._tag === "Spilled") yield* deps.spills.remove(candidate.content.spill)
        return yield* refuse(verdict.failure, !late)
      }
      state = RoundState.accept(state, verdict.success)
      const { id, samples } = verdict.success
      yield* deps.events.publish(new ServerEvent.UpdateAccepted({ round, id, samples }))
    })

  const apply = (input: Input): Effect.Effect<void> => {
    switch (input._tag) {
      case "Candidate":
        return admit(input.candidate)
      case "Unreadable":
        return refuse(input.refusal, true)
      case "Gone":
        // An offline notice for an id that holds a session again (it rejoined before the notice
        // arrived) is about the old session, not this participant.
        return input.reason._tag === "Offline"
          ? Effect.flatMap(deps.directory.current(input.id), (session) =>
              Option.isSome(session) ? Effect.void : exclude(input.id, input.reason),
            )
          : exclude(input.id, input.reason)
      case "SendFailed":
        return input.round === round ? exclude(input.id, input.reason) : Effect.void
      case "UploadStalled":
        return input.round === round ? exclude(input.id, { _tag: "Stalled" }) : Effect.void
    }
  }

  return { state: () => state, exclude, apply }
}

// Streams the model to one participant in a fiber of the caller's Scope (the round's): what is
// still sending when the round ends is interrupted with it. A failure goes to the mailbox.
const sendModel = (deps: Deps, round: number, model: Uint8Array, id: string, onSent: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const session = yield* deps.directory.current(id)
    if (Option.isNone(session)) {
      return yield* Queue.offer(deps.mailbox, { _tag: "SendFailed", round, id, reason: { _tag: "Offline" } })
    }
    const header = { tag: "model", meta: { round, paramCount: deps.paramCount }, totalBytes: model.byteLength }
    const { connection, guard } = session.value
    // FLARE's fixes B and C: the send fails as stalled when its ACK offset stops moving, and the
    // session's monitor counts it as pending while it runs.
    // A model over 1 MiB gets a progress bar when stdout is a terminal (`Progress.layerTerminal`).
    const send = AckProgressWatchdog.watch(
      (onProgress) =>
        Progress.tracked(`round ${round} model → ${id}`, model.byteLength, (advance) =>
          connection.sendBytes(header, Stream.make(model), {
            onProgress: (acked) => Effect.andThen(onProgress(acked), advance(acked)),
          }),
        ),
      { ackProgressTimeout: deps.ackProgressTimeout, checkInterval: deps.checkInterval },
    ).pipe(guard, Effect.provideService(References.MinimumLogLevel, "Error"))
    yield* deps.neighbors.send(PeerId.make(id), send).pipe(
      Effect.timeout(deps.roundTimeoutMs),
      Effect.matchEffect({
        onSuccess: () => onSent,
        onFailure: (error) => Queue.offer(deps.mailbox, { _tag: "SendFailed", round, id, reason: sendFailure(error) }),
      }),
      Effect.forkScoped,
    )
  })

const runRound = (deps: Deps) =>
  Effect.fn("RoundCoordinator.run")(function* (
    round: number,
    global: Float32Array,
    participants: ReadonlyArray<string>,
  ) {
    yield* Effect.annotateCurrentSpan({ "fedguard.round": round, "fedguard.participants": participants.length })
    const startedAt = yield* Clock.currentTimeMillis
    const deadline = startedAt + deps.roundTimeoutMs
    // Encoded once (a view of `global` on little-endian hosts): every participant is sent these
    // same bytes, so the round holds one copy of the model however many it sends to.
    const model = Weights.encode(global)
    // The round's spills live in their own directory, removed with this run's Scope: when the
    // round returns, fails or is interrupted, no update of it is left on disk.
    const directory = yield* deps.spills.directory(round).pipe(Effect.orDie)
    const book = ledger(deps, round, participants)
    // Departures and send failures from before this round concern sessions that are gone; the
    // participants were chosen after them. Updates stay: they are judged (and counted) here.
    const leftovers = yield* Queue.clear(deps.mailbox)
    for (const input of leftovers)
      if (input._tag === "Candidate" || input._tag === "Unreadable") yield* book.apply(input)
    let sent = 0
    const onSent = Effect.sync(() => {
      sent++
    })
    yield* Effect.scoped(
      Effect.gen(function* () {
        // Uploads for this round are stored while it takes updates, not once it reduces.
        yield* Effect.acquireRelease(Ref.set(deps.running, Option.some({ round, directory })), () =>
          Ref.set(deps.running, Option.none()),
        )
        for (const id of participants) yield* sendModel(deps, round, model, id, onSent)
        while (!RoundState.isDone(book.state())) {
          const remaining = deadline - (yield* Clock.currentTimeMillis)
          const input =
            remaining <= 0 ? Option.none() : yield* Queue.take(deps.mailbox).pipe(Effect.timeoutOption(remaining))
          if (Option.isNone(input)) {
            for (const id of book.state().pending) yield* book.exclude(id, { _tag: "Straggler" })
            break
          }
          yield* book.apply(input.value)
        }
      }),
    )
    const state = book.state()
    for (const update of state.accepted) deps.stragglers.delete(update.id)
    const aggregated =
      state.accepted.length === 0
        ? Option.none()
        : Option.some(
            yield* aggregateSpilled(state.accepted, { chunk: deps.aggregationChunk }).pipe(
              Effect.provideService(UpdateSpill, deps.spills),
              Effect.orDie,
              Effect.withSpan("RoundCoordinator.aggregate", {
                attributes: { "fedguard.round": round, "fedguard.updates": state.accepted.length },
              }),
            ),
          )
    return {
      state,
      global: Option.getOrElse(aggregated, () => global),
      modelUpdated: Option.isSome(aggregated),
      bytesIn: state.accepted.reduce((sum, update) => sum + update.bytes, 0),
      bytesOut: model.byteLength * sent,
      durationMs: (yield* Clock.currentTimeMillis) - startedAt,
    } satisfies RoundOutcome
  }, Effect.scoped)

/**
 * Builds the coordinator in the current Scope (its subscription to the
 * departures lives there), spilling updates to the `UpdateSpill` in context
 * (temporary files under `os.tmpdir()` unless one is provided).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options,
): Effect.fn.Return<
  RoundCoordinator["Service"],
  never,
  Scope.Scope | ClientDirectory | ServerEvents | NeighborRegistry.NeighborRegistry
> {
  const deps: Deps = {
    directory: yield* ClientDirectory,
    events: yield* ServerEvents,
    neighbors: yield* NeighborRegistry.NeighborRegistry,
    spills: yield* UpdateSpill,
    mailbox: yield* Queue.unbounded<Input>(),
    running: yield* Ref.make(Option.none<RunningRound>()),
    stragglers: new Map(),
    paramCount: options.paramCount,
    roundTimeoutMs: Duration.toMillis(options.roundTimeout ?? "120 seconds"),
    ackProgressTimeout: options.ackProgressTimeout ?? "60 seconds",
    checkInterval: options.checkInterval ?? "5 seconds",
    aggregationChunk: options.aggregationChunk ?? defaultAggregationChunk,
  }
  // Departures reach the round through the same mailbox as updates, in the order they happened.
  const departures = yield* deps.events.subscribe
  yield* departures.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "ClientWentOffline":
          return Queue.offer(deps.mailbox, { _tag: "Gone", id: event.id, reason: { _tag: "Offline" } })
        case "ClientReplaced":
          return Queue.offer(deps.mailbox, { _tag: "Gone", id: event.id, reason: { _tag: "Replaced" } })
        default:
          return Effect.void
      }
    }),
    Effect.forkScoped,
  )
  return RoundCoordinator.of({ receive: receive(deps), run: runRound(deps) })
})

/**
 * The coordinator as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<RoundCoordinator, never, ClientDirectory | ServerEvents | NeighborRegistry.NeighborRegistry> =>
  Layer.effect(RoundCoordinator, make(options))
