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
import { FedAvg, Protocol, Weights } from "@fedguard/federation"
import { NeighborRegistry } from "@fedguard/retry"
import { Connection, PeerId } from "@fedguard/transport"
import { Clock, Context, Duration, Effect, Layer, Option, Queue, Result, type Scope, Stream } from "effect"
import { ClientDirectory } from "./ClientDirectory.ts"
import * as RoundState from "./RoundState.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"
import * as UpdateAdmission from "./UpdateAdmission.ts"

type Input =
  | { readonly _tag: "Candidate"; readonly candidate: UpdateAdmission.Candidate }
  | { readonly _tag: "Unreadable"; readonly refusal: UpdateAdmission.UpdateRefused }
  | { readonly _tag: "Gone"; readonly id: string; readonly reason: RoundState.ExclusionReason }
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
 * waits for updates (later ones are stragglers; default 120 s); and
 * `sendIdleTimeout`, how long a model send may make no ACK progress before it
 * fails as stalled (default 90 s, the heartbeat timeout).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly paramCount: number
  readonly roundTimeout?: Duration.Input | undefined
  readonly sendIdleTimeout?: Duration.Input | undefined
}

const sendFailure = (error: { readonly _tag: string }): RoundState.ExclusionReason => {
  switch (error._tag) {
    case "NeighborOffline":
    case "ConnectionClosed":
      return { _tag: "Offline" }
    case "SendTimeout":
    case "TimeoutError":
      return { _tag: "Stalled" }
    default:
      return { _tag: "SendFailed", error: error._tag }
  }
}

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
  const directory = yield* ClientDirectory
  const events = yield* ServerEvents
  const neighbors = yield* NeighborRegistry.NeighborRegistry
  const roundTimeoutMs = Duration.toMillis(options.roundTimeout ?? "120 seconds")
  const sendIdleTimeout = options.sendIdleTimeout ?? "90 seconds"
  const maxBytes = options.paramCount * 4
  const mailbox = yield* Queue.unbounded<Input>()
  // Stragglers of earlier rounds, by id: their late update is dropped without excluding them
  // from the running round (they are already training its model).
  const stragglers = new Map<string, number>()

  const departures = yield* events.subscribe
  yield* departures.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "ClientWentOffline":
          return Queue.offer(mailbox, { _tag: "Gone", id: event.id, reason: { _tag: "Offline" } })
        case "ClientReplaced":
          return Queue.offer(mailbox, { _tag: "Gone", id: event.id, reason: { _tag: "Replaced" } })
        default:
          return Effect.void
      }
    }),
    Effect.forkScoped,
  )

  const receive = (id: string, transfer: Connection.IncomingTransfer): Effect.Effect<void> =>
    Effect.gen(function* () {
      const meta = yield* Protocol.decodeMeta(Protocol.UpdateMeta, transfer.meta, id).pipe(Effect.result)
      if (Result.isFailure(meta)) {
        yield* transfer.abort("undecodable update metadata")
        return yield* Queue.offer(mailbox, {
          _tag: "Unreadable",
          refusal: UpdateAdmission.undecodable(id, meta.failure.reason),
        })
      }
      const bytes = yield* Connection.collectBytes(transfer, maxBytes).pipe(Effect.result)
      if (Result.isFailure(bytes)) {
        // Too many bytes is the sender's fault; a connection that broke mid-upload is a departure,
        // which the session's end reports.
        if (bytes.failure._tag !== "DecodeError") return
        return yield* Queue.offer(mailbox, {
          _tag: "Unreadable",
          refusal: new UpdateAdmission.UpdateRefused({
            id,
            kind: "wrong-length",
            reason: `wrong length: more than ${maxBytes} bytes (${options.paramCount} float32)`,
          }),
        })
      }
      yield* Queue.offer(mailbox, {
        _tag: "Candidate",
        candidate: { id, round: meta.success.round, samples: meta.success.samples, bytes: bytes.success },
      })
    })

  const run = Effect.fn("RoundCoordinator.run")(function* (
    round: number,
    global: Float32Array,
    participants: ReadonlyArray<string>,
  ) {
    const startedAt = yield* Clock.currentTimeMillis
    const deadline = startedAt + roundTimeoutMs
    const model = Weights.encode(global)
    let state = RoundState.start(round, participants)
    let sent = 0

    const excludeNow = (id: string, reason: RoundState.ExclusionReason) =>
      Effect.gen(function* () {
        if (!state.pending.has(id)) return
        state = RoundState.exclude(state, id, reason)
        if (reason._tag === "Straggler") stragglers.set(id, round)
        yield* events.publish(new ServerEvent.ClientExcluded({ round, id, reason: RoundState.reasonText(reason) }))
      })

    const refuse = (refusal: UpdateAdmission.UpdateRefused, excludes: boolean) =>
      Effect.gen(function* () {
        yield* events.publish(new ServerEvent.UpdateRejected({ round, id: refusal.id, reason: refusal.reason }))
        const wasPending = state.pending.has(refusal.id)
        state = RoundState.reject(state, refusal, false)
        if (excludes && wasPending) yield* excludeNow(refusal.id, { _tag: "Rejected", refusal })
      })

    const admit = (candidate: UpdateAdmission.Candidate) =>
      Effect.gen(function* () {
        const late = candidate.round < round && stragglers.get(candidate.id) === candidate.round
        const session = yield* directory.current(candidate.id)
        const verdict = UpdateAdmission.check(candidate, {
          round,
          paramCount: options.paramCount,
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
          return excludeNow(input.id, input.reason)
        case "SendFailed":
          return input.round === round ? excludeNow(input.id, input.reason) : Effect.void
      }
    }

    yield* Effect.scoped(
      Effect.gen(function* () {
        // Every model send is a fiber of this round: whatever is still sending when the round
        // ends is interrupted with it.
        for (const id of participants) {
          const session = yield* directory.current(id)
          if (Option.isNone(session)) {
            yield* excludeNow(id, { _tag: "Offline" })
            continue
          }
          yield* neighbors
            .send(
              PeerId.make(id),
              session.value.connection.sendBytes(
                { tag: "model", meta: { round, paramCount: options.paramCount }, totalBytes: model.byteLength },
                Stream.make(model),
                { idleTimeout: sendIdleTimeout },
              ),
            )
            .pipe(
              Effect.timeout(roundTimeoutMs),
              Effect.matchEffect({
                onSuccess: () =>
                  Effect.sync(() => {
                    sent++
                  }),
                onFailure: (error) =>
                  Queue.offer(mailbox, { _tag: "SendFailed", round, id, reason: sendFailure(error) }),
              }),
              Effect.forkScoped,
            )
        }
        while (!RoundState.isDone(state)) {
          const remaining = deadline - (yield* Clock.currentTimeMillis)
          const input =
            remaining <= 0 ? Option.none() : yield* Queue.take(mailbox).pipe(Effect.timeoutOption(remaining))
          if (Option.isNone(input)) {
            for (const id of state.pending) yield* excludeNow(id, { _tag: "Straggler" })
            break
          }
          yield* apply(input.value)
        }
      }),
    )
    for (const update of state.accepted) stragglers.delete(update.id)
    const aggregated =
      state.accepted.length === 0
        ? Option.none()
        : Option.some(yield* FedAvg.aggregate(state.accepted).pipe(Effect.orDie))
    const finishedAt = yield* Clock.currentTimeMillis
    return {
      state,
      global: Option.getOrElse(aggregated, () => global),
      modelUpdated: Option.isSome(aggregated),
      bytesIn: state.accepted.reduce((sum, update) => sum + update.bytes, 0),
      bytesOut: model.byteLength * sent,
      durationMs: finishedAt - startedAt,
    } satisfies RoundOutcome
  })

  return RoundCoordinator.of({ receive, run })
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
