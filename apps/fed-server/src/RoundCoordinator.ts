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
 * @since 0.2.0
 */

import { Protocol } from "@fedguard/app-kit"
import { FedAvg, Weights } from "@fedguard/federation"
import { NeighborRegistry } from "@fedguard/retry"
import { AckProgressWatchdog, TransferTracker } from "@fedguard/stall-guard"
import type { Connection } from "@fedguard/transport"
import { PeerId } from "@fedguard/transport"
import { Clock, Context, Duration, Effect, Layer, Option, Queue, References, Result, type Scope, Stream } from "effect"
import { ClientDirectory } from "./ClientDirectory.ts"
import { byId } from "./internal/byId.ts"
import * as RoundState from "./RoundState.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"
import * as UpdateAdmission from "./UpdateAdmission.ts"

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
 *   metadata and bytes are read (at most the model's size) in the caller's
 *   fiber, then handed to the round for admission.
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
 * (default 5 s).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly paramCount: number
  readonly roundTimeout?: Duration.Input | undefined
  readonly ackProgressTimeout?: Duration.Input | undefined
  readonly checkInterval?: Duration.Input | undefined
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

/**
 * FedAvg of the admitted updates in a canonical order (by client id), not in
 * arrival order: float sums depend on their order, so the same participants
 * give a bit-identical model whatever the timing, and two runs with the same
 * seed can be proved to have trained the same model (`modelSha256`).
 *
 * @since 0.2.0
 * @category aggregation
 */
export const aggregateCanonical = (updates: ReadonlyArray<UpdateAdmission.Admitted>) =>
  FedAvg.aggregate(updates.toSorted(byId))

// What the round functions below share: the services, the mailbox, and the options.
interface Deps {
  readonly directory: ClientDirectory["Service"]
  readonly events: ServerEvents["Service"]
  readonly neighbors: NeighborRegistry.NeighborRegistry["Service"]
  readonly mailbox: Queue.Queue<Input>
  // Stragglers of earlier rounds, by id: their late update is dropped without excluding them
  // from the running round (they are already training its model).
  readonly stragglers: Map<string, number>
  readonly paramCount: number
  readonly roundTimeoutMs: number
  readonly ackProgressTimeout: Duration.Input
  readonly checkInterval: Duration.Input
}

// Reads an update's metadata and bytes (at most the model's size) and hands it to the round.
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
      // Under FlareAgent's progress tracker: an upload that does not start, or stops moving, for
      // the ack-progress timeout is given up (the sender is told), whatever its heartbeats say.
      const bytes = yield* TransferTracker.collect(transfer.bytes, {
        idleTimeout: deps.ackProgressTimeout,
        maxBytes,
        abort: transfer.abort,
      }).pipe(Effect.provideService(References.MinimumLogLevel, "Error"), Effect.result)
      if (Result.isFailure(bytes)) {
        const failure = bytes.failure
        if (failure._tag === "TransferIdle" || failure._tag === "TransferDidNotStart") {
          return yield* Queue.offer(deps.mailbox, { _tag: "UploadStalled", id, round: meta.success.round })
        }
        // Too many bytes is the sender's fault; a connection that broke mid-upload is a departure,
        // which the session's end reports.
        if (failure._tag !== "TransferTooLarge") return
        const reason = `wrong length: more than ${maxBytes} bytes (${deps.paramCount} float32)`
        const refusal = new UpdateAdmission.UpdateRefused({ id, kind: "wrong-length", reason })
        return yield* Queue.offer(deps.mailbox, { _tag: "Unreadable", refusal })
      }
      const { round, samples } = meta.success
      yield* Queue.offer(deps.mailbox, { _tag: "Candidate", candidate: { id, round, samples, bytes: bytes.success } })
    })

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
      const session = yield* deps.directory.current(candidate.id)
      const verdict = UpdateAdmission.check(candidate, {
        round,
        paramCount: deps.paramCount,
        isParticipant: state.pending.has(candidate.id) || state.submitted.has(candidate.id),
        alreadySubmitted: state.submitted.has(candidate.id),
        declaredSamples: Option.match(session, { onNone: () => 0, onSome: (s) => s.declaredSamples }),
      })
      if (Result.isFailure(verdict)) return yield* refuse(verdict.failure, !late)
      state = RoundState.accept(state, verdict.success)
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
    const send = AckProgressWatchdog.watch(
      (onProgress) => connection.sendBytes(header, Stream.make(model), { onProgress }),
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
    const startedAt = yield* Clock.currentTimeMillis
    const deadline = startedAt + deps.roundTimeoutMs
    const model = Weights.encode(global)
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
        : Option.some(yield* aggregateCanonical(state.accepted).pipe(Effect.orDie))
    return {
      state,
      global: Option.getOrElse(aggregated, () => global),
      modelUpdated: Option.isSome(aggregated),
      bytesIn: state.accepted.reduce((sum, update) => sum + update.bytes, 0),
      bytesOut: model.byteLength * sent,
      durationMs: (yield* Clock.currentTimeMillis) - startedAt,
    } satisfies RoundOutcome
  })

/**
 * Builds the coordinator in the current Scope (its subscription to the
 * departures lives there).
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
    mailbox: yield* Queue.unbounded<Input>(),
    stragglers: new Map(),
    paramCount: options.paramCount,
    roundTimeoutMs: Duration.toMillis(options.roundTimeout ?? "120 seconds"),
    ackProgressTimeout: options.ackProgressTimeout ?? "60 seconds",
    checkInterval: options.checkInterval ?? "5 seconds",
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
