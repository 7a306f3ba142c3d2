/**
 * The client's session: connect, prove the secret, then for every round
 * receive the global model, train on the local shard, and upload the weights.
 *
 * @since 0.1.0
 */
import { Auth, Dataset, Mnist, Model, Partition, Protocol, Training, Weights } from "@fedguard/federation"
import { Connection, Transport, TransportError } from "@fedguard/transport"
import { Clock, Effect, Redacted, Schedule, Schema, Stream } from "effect"
import type { ClientSettings } from "./ClientSettings.ts"

/**
 * The client stopped before the server said training was complete.
 *
 * @since 0.1.0
 * @category errors
 */
export class ClientFailed extends Schema.TaggedError<ClientFailed>()("ClientFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/**
 * The local data a client trains on.
 *
 * @since 0.1.0
 * @category models
 */
export interface LocalData {
  readonly train: Dataset.Dataset
  readonly shard: Uint32Array
}

/**
 * Loads MNIST and cuts out this client's shard, exactly as every other
 * process with the same seed cuts it.
 *
 * @since 0.1.0
 * @category data
 */
export const loadShard = (settings: ClientSettings): Effect.Effect<LocalData, ClientFailed> =>
  Effect.gen(function* () {
    const data = yield* Mnist.load
    const { train } = yield* Dataset.split(data, { seed: settings.seed })
    const shard = yield* Partition.shard(train, {
      kind: settings.partition,
      clients: settings.shardCount,
      seed: settings.seed,
      index: settings.shardIndex,
    })
    return { train, shard }
  }).pipe(Effect.mapError((error) => new ClientFailed({ reason: error.message })))

const send = (connection: Connection.Connection, message: Protocol.Message) =>
  connection.send(Protocol.toEnvelope(message))

/**
 * Connects with capped exponential backoff on retryable errors: `maxRetries`
 * retries (so `maxRetries + 1` attempts), delays from `retryBaseDelay`
 * doubling up to `retryMaxDelay`.
 *
 * @since 0.1.0
 * @category session
 */
export const connect = (settings: ClientSettings) =>
  Effect.flatMap(Transport.Transport, (transport) =>
    transport.connect(settings.server).pipe(
      Effect.tapError((error) =>
        Effect.logWarning("connect-failed").pipe(
          Effect.annotateLogs({ server: settings.server, reason: error.message }),
        ),
      ),
      Effect.retry({
        schedule: Schedule.min([
          Schedule.exponential(settings.retryBaseDelay),
          Schedule.spaced(settings.retryMaxDelay),
        ]),
        times: settings.maxRetries,
        while: TransportError.isRetryable,
      }),
    ),
  )

/**
 * One session on an open connection, until the server completes training
 * (success, with its final accuracy) or the connection ends (failure).
 *
 * @since 0.1.0
 * @category session
 */
export const session = Effect.fnUntraced(function* (
  settings: ClientSettings,
  local: LocalData,
  connection: Connection.Connection,
) {
  const secret = Redacted.make(settings.secret)
  let welcome: Extract<Protocol.Message, { _tag: "welcome" }> | undefined
  let completed: Extract<Protocol.Message, { _tag: "training-completed" }> | undefined

  const train = (transfer: Connection.IncomingTransfer) =>
    Effect.gen(function* () {
      if (welcome === undefined) {
        return yield* new TransportError.Rejected({ peer: settings.server, reason: "model sent before welcome" })
      }
      const model = Model.make(welcome.model)
      const meta = yield* Protocol.decodeMeta(Protocol.ModelMeta, transfer.meta, settings.server)
      const bytes = yield* Connection.collectBytes(transfer, model.paramCount * 4)
      const params = yield* Weights.decode(bytes, model.paramCount).pipe(
        Effect.mapError((error) => new TransportError.DecodeError({ peer: settings.server, reason: error.message })),
      )
      const startedAt = yield* Clock.currentTimeMillis
      const trained = yield* Training.train(model, params, local.train, {
        seed: Training.roundSeed(settings.seed, meta.round, settings.shardIndex),
        epochs: welcome.localEpochs,
        batchSize: welcome.batchSize,
        learningRate: welcome.learningRate,
        indices: local.shard,
      }).pipe(Effect.mapError((error) => new ClientFailed({ reason: error.message })))
      const upload = Weights.encode(trained.params)
      yield* connection.sendBytes(
        {
          tag: "update",
          meta: { round: meta.round, samples: trained.samples, trainLoss: trained.loss },
          totalBytes: upload.byteLength,
        },
        Stream.make(upload),
      )
      const finishedAt = yield* Clock.currentTimeMillis
      yield* Effect.logInfo("round-trained").pipe(
        Effect.annotateLogs({
          id: settings.id,
          round: meta.round,
          samples: trained.samples,
          trainLoss: trained.loss,
          durationMs: finishedAt - startedAt,
        }),
      )
    })

  const handle = (item: Connection.Inbound) =>
    Effect.gen(function* () {
      if (item._tag === "Transfer") {
        if (item.transfer.tag === "model") return yield* train(item.transfer)
        return yield* item.transfer.abort(`unexpected transfer ${item.transfer.tag}`)
      }
      const message = yield* Protocol.fromEnvelope(item.envelope, settings.server)
      switch (message._tag) {
        case "challenge":
          return yield* send(connection, {
            _tag: "join",
            id: settings.id,
            proof: Auth.prove(secret, message.nonce, settings.id),
          })
        case "welcome":
          welcome = message
          return yield* Effect.logInfo("joined").pipe(
            Effect.annotateLogs({ id: settings.id, server: settings.server, model: message.model }),
          )
        case "refused":
          return yield* new TransportError.Rejected({ peer: settings.server, reason: message.reason })
        case "training-completed":
          completed = message
          return yield* connection.close("training completed")
        default:
          return
      }
    })

  yield* connection.inbound.pipe(Stream.runForEach(handle))
  if (completed === undefined) {
    return yield* new TransportError.ConnectionClosed({ peer: settings.server, reason: "server closed the session" })
  }
  yield* Effect.logInfo("training-completed").pipe(
    Effect.annotateLogs({ id: settings.id, finalAccuracy: completed.finalAccuracy, rounds: completed.rounds }),
  )
  return completed
})

/**
 * Connects, joins, trains every round, and returns the server's final word.
 *
 * @since 0.1.0
 * @category run
 */
export const run = (settings: ClientSettings) =>
  Effect.gen(function* () {
    const local = yield* loadShard(settings)
    const connection = yield* connect(settings)
    return yield* session(settings, local, connection)
  }).pipe(Effect.scoped)
