/**
 * Local training of one session: the global model of each round is trained
 * on this client's shard in a fiber of its own and the update uploaded, one
 * round at a time, the newest round first.
 *
 * @since 0.2.0
 */

import { Progress, Protocol } from "@fedguard/app-kit"
import type { Model } from "@fedguard/federation"
import { Training, Weights } from "@fedguard/federation"
import { Retry, RetryPolicy } from "@fedguard/retry"
import { AckProgressWatchdog } from "@fedguard/stall-guard"
import type { Connection, TransportError } from "@fedguard/transport"
import { Clock, Context, Effect, Fiber, Queue, References, Result, Schema, type Scope, Stream } from "effect"
import * as ClientEvent from "./ClientEvent.ts"
import { ClientEvents } from "./ClientEvents.ts"
import { LocalData } from "./LocalData.ts"

/**
 * The server's model for one round, ready to train.
 *
 * @since 0.2.0
 * @category models
 */
export interface GlobalModel {
  readonly round: number
  readonly params: Float32Array
}

/**
 * How to train, as the server's welcome says: the model, the local epochs
 * and their optional cap on SGD steps (`localSteps`, absent from a server
 * that sets none), the minibatch size and learning rate.
 *
 * @since 0.2.0
 * @category models
 */
export type TrainingSettings = Pick<
  typeof Protocol.Welcome.Type,
  "model" | "localEpochs" | "localSteps" | "batchSize" | "learningRate" | "ackProgressTimeoutMs" | "checkIntervalMs"
>

/**
 * Options of a trainer: this client's `id`, the federation `seed` and its
 * `shardIndex` (which fix each round's training seed, as in the
 * simulation), the server's `training` settings, and the `connection` the
 * updates go to.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly id: string
  readonly seed: number
  readonly shardIndex: number
  readonly training: TrainingSettings
  readonly connection: Pick<Connection.Connection, "sendBytes">
  /** How a stalled upload is retried on a fresh stream (default: `RetryPolicy.defaults`). */
  readonly retry?: RetryPolicy.RetryPolicy | undefined
  /**
   * A fault for tests and the demo: in this round the upload sends half its
   * bytes and then nothing more, while heartbeats go on (NVIDIA FLARE's frozen
   * stream). Only the first attempt stalls; its retry is a fresh stream.
   */
  readonly faultStallUpload?: number | undefined
}

/**
 * Why a trainer stopped: its upload failed (the connection's error), or the
 * server's settings cannot be trained with.
 *
 * @since 0.2.0
 * @category errors
 */
export type TrainerError = TransportError.TransportError | Training.InvalidTrainingOptions | Model.ParamCountMismatch

/**
 * A running trainer:
 *
 * - `submit(model)`: hands over a round's global model; it never waits for
 *   training. A model still queued when a newer one arrives is dropped: a
 *   client that fell behind trains and uploads only the newest round.
 * - `failed`: waits until the trainer stops on an error, and fails with it.
 *
 * @since 0.2.0
 * @category services
 */
export class LocalTrainer extends Context.Service<
  LocalTrainer,
  {
    readonly submit: (model: GlobalModel) => Effect.Effect<void>
    readonly failed: Effect.Effect<never, TrainerError>
  }
>()("@fedguard/fed-client/LocalTrainer") {}

const encodeUpdateMeta = Schema.encodeSync(Protocol.UpdateMeta)

/**
 * Starts a trainer in the current Scope (the session's): its fiber trains
 * round after round and stops when the Scope closes. Training yields to
 * other fibers every few SGD steps, so heartbeat acks are handled while a
 * long epoch runs. Each uploaded round publishes `RoundTrained`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options,
): Effect.fn.Return<LocalTrainer["Service"], never, Scope.Scope | LocalData | ClientEvents> {
  const local = yield* LocalData
  const events = yield* ClientEvents
  // Capacity one, sliding: the newest model replaces a queued older one. The round in
  // training is finished and uploaded (the server may still count it); only stale
  // queued rounds are skipped.
  const pending = yield* Queue.sliding<GlobalModel>(1)

  const trainRound = Effect.fnUntraced(function* (global: GlobalModel) {
    const startedAt = yield* Clock.currentTimeMillis
    const training = local.train(options.training.model, global.params, {
      round: global.round,
      seed: Training.roundSeed(options.seed, global.round, options.shardIndex),
      epochs: options.training.localEpochs,
      maxSteps: options.training.localSteps,
      batchSize: options.training.batchSize,
      learningRate: options.training.learningRate,
    })
    // A training worker lost on every attempt (`--trainer thread`) loses this round only, loudly:
    // the server excludes the client from it at its timeout, and the next round trains again.
    const trained = yield* Effect.catchTag(training, "TrainerLost", (lost) =>
      Effect.as(
        events.publish(new ClientEvent.TrainingFailed({ id: options.id, round: global.round, reason: lost.message })),
        undefined,
      ),
    )
    if (trained === undefined) return
    const upload = Weights.encode(trained.params)
    const header = {
      tag: "update",
      meta: encodeUpdateMeta({ round: global.round, samples: trained.samples, trainLoss: trained.loss }),
      totalBytes: upload.byteLength,
    }
    let attempt = 0
    const data = () =>
      attempt++ === 0 && options.faultStallUpload === global.round
        ? Stream.concat(Stream.make(upload.subarray(0, upload.byteLength >> 1)), Stream.never)
        : Stream.make(upload)
    // FLARE's fix B on the client: an upload whose ACK offset stops moving fails as AckStalled and
    // is retried on a fresh stream under the retry policy; the watchdog's own warning repeats the
    // UploadFailed event below.
    // An update over 1 MiB gets a progress bar when stdout is a terminal (`Progress.layerTerminal`).
    const watched = AckProgressWatchdog.watch(
      (onProgress) =>
        Progress.tracked(`round ${global.round} update → server`, upload.byteLength, (advance) =>
          Effect.suspend(() =>
            options.connection.sendBytes(header, data(), {
              onProgress: (acked) => Effect.andThen(onProgress(acked), advance(acked)),
            }),
          ),
        ),
      { ackProgressTimeout: options.training.ackProgressTimeoutMs, checkInterval: options.training.checkIntervalMs },
    ).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
    const delivered = yield* Retry.retry(watched, options.retry ?? RetryPolicy.defaults, {
      isRetryable: (error) => error._tag === "AckStalled",
    }).pipe(Effect.result)
    if (Result.isFailure(delivered)) {
      const error = delivered.failure
      // A stalled upload, or one the server gave up on (it aborts the stream), fails this round
      // only: the session and its heartbeats go on, and the next round is trained as usual.
      if (error._tag !== "AckStalled" && error._tag !== "Rejected") return yield* Effect.fail(error)
      return yield* events.publish(
        new ClientEvent.UploadFailed({ id: options.id, round: global.round, reason: error.message }),
      )
    }
    const finishedAt = yield* Clock.currentTimeMillis
    yield* events.publish(
      new ClientEvent.RoundTrained({
        id: options.id,
        round: global.round,
        samples: trained.samples,
        trainLoss: trained.loss,
        durationMs: finishedAt - startedAt,
      }),
    )
  })

  const fiber = yield* Effect.forkScoped(Effect.forever(Effect.flatMap(Queue.take(pending), trainRound)))
  return LocalTrainer.of({
    submit: (global) => Effect.asVoid(Queue.offer(pending, global)),
    failed: Fiber.join(fiber),
  })
})
