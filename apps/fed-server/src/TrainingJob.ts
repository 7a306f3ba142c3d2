/**
 * A whole training job: wait for the expected clients, then run the rounds
 * while the quorum holds (pausing below it), evaluate the global model after
 * each, say farewell, and return the report.
 *
 * A round starts only with at least one participant, so an empty round never
 * runs and never counts toward `rounds`.
 *
 * @since 0.2.0
 */

import { createHash } from "node:crypto"
import { Protocol, type Report } from "@fedguard/app-kit"
import { type Dataset, Model, Weights } from "@fedguard/federation"
import type { LivenessTracker } from "@fedguard/heartbeat"
import { Context, type Duration, Effect, Layer, Option } from "effect"
import { ClientDirectory } from "./ClientDirectory.ts"
import { ClientLiveness } from "./ClientLiveness.ts"
import { byId } from "./internal/byId.ts"
import { RoundCoordinator } from "./RoundCoordinator.ts"
import * as RoundState from "./RoundState.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * Runs the job on the held-out `test` split and returns the report's rounds,
 * clients and final accuracy (the caller adds the configuration).
 *
 * @since 0.2.0
 * @category services
 */
export class TrainingJob extends Context.Service<
  TrainingJob,
  {
    readonly run: (test: Dataset.Dataset) => Effect.Effect<Omit<Report.Report, "config">>
  }
>()("@fedguard/fed-server/TrainingJob") {}

/**
 * Options: the model, seed of its initialisation, number of rounds, the
 * clients to wait for before round 1 (`expectedClients`, at most
 * `joinTimeout`), and the quorum (`minClients`).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly model: Model.Name
  readonly seed: number
  readonly rounds: number
  readonly expectedClients: number
  readonly minClients: number
  readonly joinTimeout: Duration.Input
}

// Why a known client is not in a round it could have been in.
const absenceReason: Record<LivenessTracker.ClientState, string> = {
  registered: "not-joined",
  "never-joined": "never-joined",
  offline: "offline",
  // Alive but without a session (its join was still in progress when the round started).
  online: "offline",
}

// The model's fingerprint: SHA-256 of its little-endian float32 bytes (the wire form).
const sha256 = (model: Float32Array) => createHash("sha256").update(Weights.encode(model)).digest("hex")

/**
 * Builds the job.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const liveness = yield* ClientLiveness
  const directory = yield* ClientDirectory
  const coordinator = yield* RoundCoordinator
  const events = yield* ServerEvents
  const model = Model.make(options.model)

  // Participants: alive for the tracker and holding a session. Below the quorum, or with no one
  // to train, the round waits (and says so) instead of running empty.
  const participantsOf = Effect.fnUntraced(function* (round: number) {
    while (true) {
      const online = yield* liveness.aliveCount
      if (online < options.minClients) {
        yield* events.publish(new ServerEvent.RoundPaused({ round, online, minClients: options.minClients }))
        yield* liveness.awaitAlive(options.minClients)
        continue
      }
      const alive = new Set(yield* liveness.alive)
      const participants = (yield* directory.sessions).filter((s) => alive.has(s.id)).map((s) => s.id)
      if (participants.length > 0) return participants
      // Alive but not yet admitted (a join in progress): look again shortly.
      yield* Effect.sleep("10 millis")
    }
  })

  const run = Effect.fn("TrainingJob.run")(function* (test: Dataset.Dataset) {
    const joined = yield* liveness
      .awaitAlive(options.expectedClients)
      .pipe(Effect.timeoutOption(options.joinTimeout), Effect.map(Option.isSome))
    if (!joined) {
      yield* events.publish(
        new ServerEvent.JoinTimedOut({ online: yield* liveness.aliveCount, expected: options.expectedClients }),
      )
    }
    let global = model.init(options.seed)
    const rounds: Array<typeof Report.Round.Type> = []
    for (let round = 1; round <= options.rounds; round++) {
      const participants = yield* participantsOf(round)
      // Every known client accounts for the round: those not taking part were offline (or never
      // joined) when it started.
      const absent = (yield* liveness.snapshot)
        .filter((client) => !participants.includes(client.id))
        .map((client) => ({ id: client.id, reason: absenceReason[client.state] }))
      yield* events.publish(new ServerEvent.RoundStarted({ round, participants }))
      const outcome = yield* coordinator.run(round, global, participants)
      global = outcome.global
      const evaluation = model.evaluate(global, test)
      const record: typeof Report.Round.Type = {
        round,
        participants: outcome.state.accepted.map((update) => update.id).sort(),
        excluded: [
          ...absent,
          ...outcome.state.excluded.map(({ id, reason }) => ({ id, reason: RoundState.reasonText(reason) })),
        ].sort(byId),
        rejectedUpdates: outcome.state.rejectedUpdates,
        modelUpdated: outcome.modelUpdated,
        testAccuracy: evaluation.accuracy,
        testLoss: evaluation.loss,
        modelSha256: sha256(global),
        durationMs: outcome.durationMs,
        bytesIn: outcome.bytesIn,
        bytesOut: outcome.bytesOut,
      }
      rounds.push(record)
      yield* events.publish(new ServerEvent.RoundCompleted(record))
    }

    const finalAccuracy = rounds.at(-1)?.testAccuracy ?? model.evaluate(global, test).accuracy
    yield* liveness.complete
    // The farewell, then a graceful close: the close is flushed after the farewell, so the
    // process may exit without cutting either off.
    const farewell: Protocol.Message = { _tag: "training-completed", finalAccuracy, rounds: rounds.length }
    const sessions = yield* directory.sessions
    yield* Effect.forEach(
      sessions,
      (session) =>
        session.connection
          .send(Protocol.toEnvelope(farewell))
          .pipe(Effect.ignore, Effect.andThen(session.connection.close("training completed"))),
      { concurrency: "unbounded", discard: true },
    )
    yield* events.publish(new ServerEvent.TrainingCompleted({ finalAccuracy, rounds: rounds.length }))
    const completed = new Set(sessions.map((session) => session.id))
    const clients = (yield* liveness.snapshot)
      .map((client) => ({
        id: client.id,
        state: completed.has(client.id) ? "completed" : client.state,
        joinedAt: client.joinedAt ?? null,
        lastSeenAt: client.lastSeenAt ?? null,
        ...(client.offlineAt === undefined ? {} : { offlineAt: client.offlineAt }),
        ...(client.reason === undefined ? {} : { reason: client.reason }),
      }))
      .sort(byId)
    return { rounds, clients, finalAccuracy, finalModelSha256: sha256(global) }
  })

  return TrainingJob.of({ run })
})

/**
 * The job as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<TrainingJob, never, ClientLiveness | ClientDirectory | RoundCoordinator | ServerEvents> =>
  Layer.effect(TrainingJob, make(options))
