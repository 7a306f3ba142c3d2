/**
 * The client's session: connect, prove the secret, then for every round
 * receive the global model, train on the local shard, and upload the weights.
 *
 * @since 0.1.0
 */
import { Auth, Dataset, Mnist, Model, Partition, Protocol, Training, Weights } from "@fedguard/federation"
import { HeartbeatSender } from "@fedguard/heartbeat"
import { Retry, RetryPolicy } from "@fedguard/retry"
import { Connection, PeerId, Transport, TransportError } from "@fedguard/transport"
import { Clock, Deferred, Effect, Queue, Redacted, Schema, Stream } from "effect"
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

/**
 * The retry policy of this client's sends and connects, from its settings.
 *
 * @since 0.1.0
 * @category session
 */
export const policyOf = (settings: ClientSettings): RetryPolicy.RetryPolicy =>
  RetryPolicy.make({
    maxRetries: settings.maxRetries,
    baseDelay: settings.retryBaseDelay,
    maxDelay: Math.max(settings.retryMaxDelay, settings.retryBaseDelay),
  })

/**
 * Connects, retrying retryable failures (`PeerUnreachable`, …) under the
 * policy: `maxRetries` retries, so `maxRetries + 1` attempts, with capped
 * exponential backoff and jitter. When they run out the client gives up.
 *
 * @since 0.1.0
 * @category session
 */
export const connect = (settings: ClientSettings) =>
  Effect.flatMap(Transport.Transport, (transport) =>
    Retry.retry(
      transport
        .connect(settings.server)
        .pipe(
          Effect.tapError((error) =>
            Effect.logWarning("connect-failed").pipe(
              Effect.annotateLogs({ server: settings.server, reason: error.message }),
            ),
          ),
        ),
      policyOf(settings),
    ).pipe(
      Effect.mapError(
        (error) =>
          new ClientFailed({
            reason: `server ${settings.server} unreachable after ${settings.maxRetries + 1} attempts: ${error.message}`,
          }),
      ),
    ),
  )

type Welcome = Extract<Protocol.Message, { _tag: "welcome" }>
type Completed = Extract<Protocol.Message, { _tag: "training-completed" }>

/**
 * One session on an open connection, until the server completes training
 * (success, with its final word) or the session breaks: the connection ends,
 * or heartbeats go unacknowledged for the peer timeout (`PeerLost`), both as
 * a retryable `ConnectionClosed`. `joined` is set once the server welcomed us.
 *
 * Control messages (welcome, heartbeat acks, completion) are handled as they
 * arrive, while a separate fiber trains: a long local epoch never delays an
 * ack, so it never looks like a lost server.
 *
 * @since 0.1.0
 * @category session
 */
export const session = Effect.fnUntraced(function* (
  settings: ClientSettings,
  local: LocalData,
  connection: Connection.Connection,
  joined: { value: boolean },
) {
  const secret = Redacted.make(settings.secret)
  const policy = policyOf(settings)
  const send = (message: Protocol.Message) =>
    Retry.retry(connection.send(Protocol.toEnvelope(message)), policy, { peer: PeerId.make(settings.server) })
  let welcome: Welcome | undefined
  let completed: Completed | undefined
  const work = yield* Queue.unbounded<{ readonly round: number; readonly params: Float32Array }>()
  const lost = yield* Deferred.make<never, TransportError.ConnectionClosed>()
  let sender: HeartbeatSender.HeartbeatSender["Service"] | undefined

  const train = (job: { readonly round: number; readonly params: Float32Array }) =>
    Effect.gen(function* () {
      const settled = welcome!
      const model = Model.make(settled.model)
      const startedAt = yield* Clock.currentTimeMillis
      const trained = yield* Training.train(model, job.params, local.train, {
        seed: Training.roundSeed(settings.seed, job.round, settings.shardIndex),
        epochs: settled.localEpochs,
        batchSize: settled.batchSize,
        learningRate: settled.learningRate,
        indices: local.shard,
      }).pipe(Effect.mapError((error) => new ClientFailed({ reason: error.message })))
      const upload = Weights.encode(trained.params)
      yield* Retry.retry(
        connection.sendBytes(
          {
            tag: "update",
            meta: { round: job.round, samples: trained.samples, trainLoss: trained.loss },
            totalBytes: upload.byteLength,
          },
          Stream.make(upload),
        ),
        policy,
        { peer: PeerId.make(settings.server) },
      )
      const finishedAt = yield* Clock.currentTimeMillis
      yield* Effect.logInfo("round-trained").pipe(
        Effect.annotateLogs({
          id: settings.id,
          round: job.round,
          samples: trained.samples,
          trainLoss: trained.loss,
          durationMs: finishedAt - startedAt,
        }),
      )
    })

  const startHeartbeats = (settled: Welcome) =>
    Effect.gen(function* () {
      const interval = settings.heartbeatInterval ?? settled.heartbeatIntervalMs
      const peerTimeout = settings.heartbeatTimeout ?? settled.heartbeatTimeoutMs
      const started = yield* HeartbeatSender.make({
        from: PeerId.make(settings.id),
        interval,
        peerTimeout,
        send: (beat) => connection.send(Protocol.toEnvelope({ _tag: "heartbeat", ...beat })),
      })
      sender = started
      yield* Effect.forkScoped(
        started.lost.pipe(
          Effect.flatMap((event) =>
            Deferred.fail(
              lost,
              new TransportError.ConnectionClosed({
                peer: settings.server,
                reason: `no heartbeat ack for ${event.at - event.lastAckAt} ms (peer timeout ${peerTimeout} ms)`,
              }),
            ),
          ),
        ),
      )
    })

  const dispatch = (item: Connection.Inbound) =>
    Effect.gen(function* () {
      if (item._tag === "Transfer") {
        if (item.transfer.tag !== "model") return yield* item.transfer.abort(`unexpected transfer ${item.transfer.tag}`)
        if (welcome === undefined) {
          return yield* new TransportError.Rejected({ peer: settings.server, reason: "model sent before welcome" })
        }
        const model = Model.make(welcome.model)
        const meta = yield* Protocol.decodeMeta(Protocol.ModelMeta, item.transfer.meta, settings.server)
        const bytes = yield* Connection.collectBytes(item.transfer, model.paramCount * 4)
        const params = yield* Weights.decode(bytes, model.paramCount).pipe(
          Effect.mapError((error) => new TransportError.DecodeError({ peer: settings.server, reason: error.message })),
        )
        return yield* Queue.offer(work, { round: meta.round, params })
      }
      const message = yield* Protocol.fromEnvelope(item.envelope, settings.server)
      switch (message._tag) {
        case "challenge":
          return yield* send({ _tag: "join", id: settings.id, proof: Auth.prove(secret, message.nonce, settings.id) })
        case "welcome":
          welcome = message
          joined.value = true
          yield* startHeartbeats(message)
          return yield* Effect.logInfo("joined").pipe(
            Effect.annotateLogs({ id: settings.id, server: settings.server, model: message.model }),
          )
        case "heartbeat-ack":
          return sender === undefined ? undefined : yield* sender.acknowledge({ seq: message.seq })
        case "refused":
          return yield* new TransportError.Rejected({ peer: settings.server, reason: message.reason })
        case "training-completed":
          completed = message
          return yield* connection.close("training completed")
        default:
          return
      }
    })

  // Rounds are trained one at a time; a newer model supersedes any queued older one.
  const trainer = Effect.gen(function* () {
    while (true) {
      let job = yield* Queue.take(work)
      let newer = yield* Queue.poll(work)
      while (newer._tag === "Some") {
        job = newer.value
        newer = yield* Queue.poll(work)
      }
      yield* train(job)
    }
  })

  const inbound = connection.inbound.pipe(Stream.runForEach(dispatch))
  // A server that accepts the connection but never welcomes us is as good as lost.
  yield* Effect.forkScoped(
    Effect.sleep(settings.joinTimeout).pipe(
      Effect.andThen(
        Effect.suspend(() =>
          welcome !== undefined
            ? Effect.void
            : Deferred.fail(
                lost,
                new TransportError.ConnectionClosed({
                  peer: settings.server,
                  reason: `no welcome within ${settings.joinTimeout} ms of connecting`,
                }),
              ),
        ),
      ),
    ),
  )
  yield* Effect.raceFirst(Effect.raceFirst(inbound, Deferred.await(lost)), trainer.pipe(Effect.andThen(Effect.never)))
  if (completed === undefined) {
    return yield* new TransportError.ConnectionClosed({ peer: settings.server, reason: "server closed the session" })
  }
  yield* Effect.logInfo("training-completed").pipe(
    Effect.annotateLogs({ id: settings.id, finalAccuracy: completed.finalAccuracy, rounds: completed.rounds }),
  )
  return completed
})

/**
 * Loads the shard, then joins and trains until the server completes
 * training. A session that breaks for a retryable reason (connection lost,
 * heartbeats unacknowledged) is followed by a reconnect with backoff and a
 * fresh join; a session that breaks before being welcomed counts against
 * `maxRetries`, one that was welcomed resets the count. Final errors
 * (refused, undecodable) end the client at once.
 *
 * @since 0.1.0
 * @category run
 */
export const run = (settings: ClientSettings) =>
  Effect.gen(function* () {
    const local = yield* loadShard(settings)
    let failures = 0
    while (true) {
      const joined = { value: false }
      const outcome = yield* Effect.scoped(
        Effect.flatMap(connect(settings), (connection) => session(settings, local, connection, joined)),
      ).pipe(Effect.result)
      if (outcome._tag === "Success") return outcome.success
      const error = outcome.failure
      if (!TransportError.isRetryable(error)) return yield* Effect.fail(error)
      failures = joined.value ? 0 : failures + 1
      if (failures > settings.maxRetries) {
        return yield* new ClientFailed({ reason: `gave up after ${failures} failed sessions: ${error.message}` })
      }
      const delay = Math.min(settings.retryMaxDelay, settings.retryBaseDelay * 2 ** failures)
      yield* Effect.logWarning("server-lost").pipe(
        Effect.annotateLogs({ id: settings.id, reason: error.message, reconnectInMs: delay }),
      )
      yield* Effect.sleep(delay)
    }
  })
