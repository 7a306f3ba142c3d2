/**
 * The FedAvg coordinator: accepts and authenticates clients, runs the rounds,
 * excludes the clients that die or straggle while the quorum holds, and
 * returns the report.
 *
 * @since 0.1.0
 */
import { Auth, Dataset, FedAvg, Mnist, Model, Protocol, type Report, Weights } from "@fedguard/federation"
import { LivenessTracker } from "@fedguard/heartbeat"
import { NeighborRegistry, RetryPolicy } from "@fedguard/retry"
import { Connection, PeerId, Transport, TransportError } from "@fedguard/transport"
import { Clock, Effect, Fiber, Option, Queue, Redacted, Schema, Stream } from "effect"
import * as ClientRegistry from "./ClientRegistry.ts"
import type { ServerSettings } from "./ServerSettings.ts"

/**
 * The server could not run: its data failed to load, its port could not be
 * bound, or training could not proceed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerFailed extends Schema.TaggedError<ServerFailed>()("ServerFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

const handshakeTimeout = "10 seconds"

const send = (connection: Connection.Connection, message: Protocol.Message) =>
  connection.send(Protocol.toEnvelope(message))

/**
 * Runs a whole training job with `settings` on the `Transport` in context
 * and returns its report. `onListening` sees the bound address first.
 *
 * @since 0.1.0
 * @category run
 */
export const run = Effect.fnUntraced(function* (
  settings: ServerSettings,
  onListening: (host: string, port: number) => Effect.Effect<void> = () => Effect.void,
) {
  const transport = yield* Transport.Transport
  const secret = Redacted.make(settings.secret)
  const allowed =
    settings.clientIds === undefined ? undefined : new Set(settings.clientIds.split(",").map((id) => id.trim()))
  const model = Model.make(settings.model)
  const registry = yield* ClientRegistry.make
  // After training completes, clients leaving is the plan, not a fault.
  let finished = false
  // Liveness: per-client deadlines (heartbeat timeout), never-joined debounce, quorum.
  const tracker = yield* LivenessTracker.make({
    timeout: settings.heartbeatTimeout,
    joinTimeout: settings.joinTimeout,
    minClients: settings.minClients,
  })
  if (allowed !== undefined) for (const id of allowed) yield* tracker.register(PeerId.make(id))
  // Sends to clients: offline ones are skipped at once; a send that keeps timing out takes
  // its client offline. Only timeouts are retried: a closed connection stays closed, the
  // client must rejoin.
  const neighbors = yield* NeighborRegistry.make({
    policy: RetryPolicy.make({
      maxRetries: settings.maxRetries,
      baseDelay: settings.retryBaseDelay,
      maxDelay: Math.max(settings.retryMaxDelay, settings.retryBaseDelay),
    }),
    isRetryable: (error) => TransportError.isRetryable(error) && error._tag === "SendTimeout",
  })
  const takeOffline = (id: string, generation: number | undefined, reason: string) =>
    Effect.gen(function* () {
      const departed = yield* registry.depart(id, generation, reason)
      if (!departed) return false
      yield* neighbors.markOffline(PeerId.make(id), reason)
      yield* Effect.logWarning("client-offline").pipe(Effect.annotateLogs({ id, reason }))
      return true
    })

  const listener = yield* transport
    .listen(`${settings.host}:${settings.port}`)
    .pipe(Effect.mapError((error) => new ServerFailed({ reason: `cannot listen: ${error.message}` })))
  const port = Number(listener.address.slice(listener.address.lastIndexOf(":") + 1))
  yield* onListening(settings.host, port)
  yield* Effect.logInfo("listening").pipe(Effect.annotateLogs({ host: settings.host, port }))
  // Data loads after the listening line so that clients can connect (and the
  // demo learn the port) while it loads.
  const data = yield* Mnist.load.pipe(Effect.mapError((error) => new ServerFailed({ reason: error.message })))
  const { test } = yield* Dataset.split(data, { seed: settings.seed }).pipe(
    Effect.mapError((error) => new ServerFailed({ reason: error.message })),
  )

  const welcome = (id: string): Protocol.Message => ({
    _tag: "welcome",
    id,
    model: settings.model,
    localEpochs: settings.localEpochs,
    batchSize: settings.batchSize,
    learningRate: settings.learningRate,
    heartbeatIntervalMs: settings.heartbeatInterval,
    heartbeatTimeoutMs: settings.heartbeatTimeout,
  })

  const refuse = (connection: Connection.Connection, id: string, reason: string) =>
    Effect.logWarning("client-rejected").pipe(
      Effect.annotateLogs({ id, reason, remote: connection.remote }),
      Effect.andThen(send(connection, { _tag: "refused", reason }).pipe(Effect.ignore)),
      Effect.andThen(connection.close(reason)),
      Effect.andThen(Effect.fail(new TransportError.Rejected({ peer: id, reason }))),
    )

  const receiveUpdate = (id: string, transfer: Connection.IncomingTransfer) =>
    Effect.gen(function* () {
      const meta = yield* Protocol.decodeMeta(Protocol.UpdateMeta, transfer.meta, id)
      const bytes = yield* Connection.collectBytes(transfer, model.paramCount * 4)
      const weights = yield* Weights.decode(bytes, model.paramCount).pipe(
        Effect.mapError((error) => new TransportError.DecodeError({ peer: id, reason: error.message })),
      )
      yield* Queue.offer(registry.mailbox, {
        _tag: "Update",
        id,
        round: meta.round,
        weights,
        samples: meta.samples,
        trainLoss: meta.trainLoss,
        bytes: bytes.byteLength,
      })
    }).pipe(
      Effect.catchTag("DecodeError", (error) =>
        Effect.logWarning("update-rejected").pipe(Effect.annotateLogs({ id, reason: error.message })),
      ),
    )

  // One connection, from challenge to close. Its failure ends only itself.
  const serve = (connection: Connection.Connection) =>
    Effect.gen(function* () {
      const nonce = yield* Auth.nonce
      yield* send(connection, { _tag: "challenge", nonce })
      let session: { readonly id: string; readonly generation: number } | undefined
      const handshake = (item: Connection.Inbound) =>
        Effect.gen(function* () {
          if (item._tag !== "Message") return yield* refuse(connection, "?", "expected join, got a byte stream")
          const message = yield* Protocol.fromEnvelope(item.envelope, connection.remote)
          if (message._tag !== "join") return yield* refuse(connection, "?", `expected join, got ${message._tag}`)
          if (!Auth.verify(secret, nonce, message.id, message.proof)) {
            return yield* refuse(connection, message.id, "unauthenticated: wrong proof of the federation secret")
          }
          if (allowed !== undefined && !allowed.has(message.id)) {
            return yield* refuse(connection, message.id, "unknown client id")
          }
          // Welcome goes out before the client is registered: once registered, a round may
          // stream the model to it, and the model must not overtake the welcome.
          yield* send(connection, welcome(message.id))
          // Alive for the tracker and the neighbours before the registry counts it: a round
          // that starts the moment the count is reached must find it alive everywhere.
          yield* tracker.register(PeerId.make(message.id))
          yield* tracker.touch(PeerId.make(message.id)).pipe(Effect.ignore)
          yield* neighbors.markOnline(PeerId.make(message.id))
          // Logged before the registry counts it, so the log tells events in causal order
          // (a round may start the moment it is counted).
          yield* Effect.logInfo((yield* registry.isKnown(message.id)) ? "client-online" : "client-joined").pipe(
            Effect.annotateLogs({ id: message.id, remote: connection.remote, reason: "joined" }),
          )
          const joined = yield* registry.join(message.id, connection)
          session = { id: message.id, generation: joined.generation }
          if (joined.replaced !== undefined) yield* joined.replaced.close("replaced by a new session")
        })
      const handle = (id: string, item: Connection.Inbound) =>
        Effect.gen(function* () {
          // Any inbound traffic is a sign of life.
          yield* registry.touch(id)
          yield* tracker.touch(PeerId.make(id)).pipe(Effect.ignore)
          yield* neighbors.observeInbound(PeerId.make(id))
          if (item._tag === "Transfer") {
            if (item.transfer.tag === "update") return yield* receiveUpdate(id, item.transfer)
            return yield* item.transfer.abort(`unexpected transfer ${item.transfer.tag}`)
          }
          const message = yield* Protocol.fromEnvelope(item.envelope, id)
          if (message._tag === "heartbeat") {
            const beat =
              message.status === undefined
                ? { from: PeerId.make(message.from), seq: message.seq }
                : { from: PeerId.make(message.from), seq: message.seq, status: message.status }
            const ack = yield* tracker.beat(PeerId.make(id), beat).pipe(
              Effect.tapError((error) =>
                Effect.logWarning("heartbeat-rejected").pipe(
                  Effect.annotateLogs({ id, claimed: message.from, reason: error.message }),
                ),
              ),
              Effect.option,
            )
            if (ack._tag === "Some") yield* send(connection, { _tag: "heartbeat-ack", seq: ack.value.seq })
          }
        })
      const guard = yield* Effect.forkChild(
        Effect.sleep(handshakeTimeout).pipe(
          Effect.andThen(
            Effect.suspend(() =>
              session === undefined ? refuse(connection, "?", "no join within 10 s") : Effect.void,
            ),
          ),
          Effect.ignore,
        ),
      )
      const outcome = yield* connection.inbound.pipe(
        Stream.runForEach((item) => (session === undefined ? handshake(item) : handle(session.id, item))),
        Effect.result,
      )
      yield* Fiber.interrupt(guard)
      const current = session
      if (current !== undefined && finished) {
        yield* registry.depart(current.id, current.generation, "completed")
        yield* Effect.logInfo("client-left").pipe(Effect.annotateLogs({ id: current.id, reason: "completed" }))
      } else if (current !== undefined) {
        const reason = outcome._tag === "Failure" ? `disconnected: ${outcome.failure.message}` : "disconnected"
        if (yield* takeOffline(current.id, current.generation, reason)) {
          yield* tracker.markOffline(PeerId.make(current.id), reason).pipe(Effect.ignore)
        }
      } else if (outcome._tag === "Failure" && outcome.failure._tag !== "Rejected") {
        yield* Effect.logWarning("connection-failed").pipe(
          Effect.annotateLogs({ remote: connection.remote, reason: outcome.failure.message }),
        )
      }
    }).pipe(Effect.ignore, Effect.ensuring(connection.close("session ended")))

  const trackerEvents = yield* tracker.subscribe
  yield* trackerEvents.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "ClientWentOffline":
          // Silence past the heartbeat timeout: the connection may still be open (a stalled
          // or partitioned client). Take the client out and close it; it must rejoin.
          return Effect.gen(function* () {
            const connection = yield* registry.connectionOf(event.id)
            if (yield* takeOffline(event.id, undefined, event.reason)) {
              if (connection !== undefined) yield* connection.close(`offline: ${event.reason}`)
            }
          })
        case "ClientNeverJoined":
          return Effect.logWarning("client-never-joined").pipe(
            Effect.annotateLogs({ id: event.id, reason: "never-joined" }),
          )
        case "QuorumLost":
          return Effect.logWarning("quorum-lost").pipe(
            Effect.annotateLogs({ alive: event.alive, minClients: event.minClients }),
          )
        case "QuorumRestored":
          return Effect.logInfo("quorum-restored").pipe(
            Effect.annotateLogs({ alive: event.alive, minClients: event.minClients }),
          )
        default:
          return Effect.void
      }
    }),
    Effect.forkScoped,
  )

  yield* listener.connections.pipe(
    Stream.runForEach((connection) => Effect.forkChild(serve(connection))),
    Effect.forkScoped,
  )

  // Rounds.
  let global = model.init(settings.seed)
  const rounds: Array<typeof Report.Round.Type> = []
  // While fewer than --min-clients are alive the server starts no round (the tracker logs
  // quorum-lost / quorum-restored); it resumes as soon as enough are back.
  const waitForQuorum = Effect.gen(function* () {
    if ((yield* registry.onlineCount) >= settings.minClients) return
    yield* Effect.logInfo("round-paused").pipe(
      Effect.annotateLogs({ online: yield* registry.onlineCount, minClients: settings.minClients }),
    )
    yield* registry.awaitOnline(settings.minClients)
  })

  const joinedInTime = yield* registry
    .awaitOnline(settings.expectedClients)
    .pipe(Effect.timeoutOption(settings.joinTimeout), Effect.map(Option.isSome))
  if (!joinedInTime) {
    yield* Effect.logWarning("join-timeout").pipe(
      Effect.annotateLogs({ online: yield* registry.onlineCount, expected: settings.expectedClients }),
    )
  }

  for (let round = 1; round <= settings.rounds; round++) {
    yield* waitForQuorum
    const startedAt = yield* Clock.currentTimeMillis
    const alive = new Set<string>(yield* tracker.aliveClients)
    const reachable = new Set<string>(yield* neighbors.online)
    const sampled = (yield* registry.onlineClients).filter((client) => alive.has(client.id) && reachable.has(client.id))
    yield* Effect.logInfo("round-started").pipe(Effect.annotateLogs({ round, participants: sampled.map((c) => c.id) }))
    // Updates and departures from before this round are stale.
    yield* Queue.clear(registry.mailbox)
    const bytes = Weights.encode(global)
    // Every known client that is not sampled is accounted for: it is offline (dead, silent,
    // or not reachable for sends) at the start of the round.
    const sampledIds = new Set(sampled.map((client) => client.id))
    const excluded: Array<{ id: string; reason: string }> = (yield* registry.snapshot)
      .filter((client) => !sampledIds.has(client.id))
      .map((client) => ({ id: client.id, reason: "offline" }))
    const sentTo = new Set<string>()
    yield* Effect.forEach(
      sampled,
      (client) => {
        const connection = client.connection
        if (connection === undefined) return Effect.sync(() => excluded.push({ id: client.id, reason: "offline" }))
        return neighbors
          .send(
            PeerId.make(client.id),
            connection.sendBytes(
              { tag: "model", meta: { round, paramCount: model.paramCount }, totalBytes: bytes.byteLength },
              Stream.make(bytes),
              { idleTimeout: settings.heartbeatTimeout },
            ),
          )
          .pipe(
            Effect.timeout(settings.roundTimeout),
            Effect.matchEffect({
              onSuccess: () => Effect.sync(() => sentTo.add(client.id)),
              onFailure: (error) =>
                Effect.sync(() =>
                  excluded.push({
                    id: client.id,
                    reason:
                      error._tag === "NeighborOffline" || error._tag === "ConnectionClosed"
                        ? "offline"
                        : error._tag === "SendTimeout" || error._tag === "TimeoutError"
                          ? "stalled"
                          : `send-failed: ${error._tag}`,
                  }),
                ),
            }),
          )
      },
      { concurrency: "unbounded", discard: true },
    )
    const pending = new Set(sentTo)
    const updates: Array<FedAvg.Update & { readonly id: string }> = []
    let bytesIn = 0
    const deadline = startedAt + settings.roundTimeout
    while (pending.size > 0) {
      const now = yield* Clock.currentTimeMillis
      const next = yield* Queue.take(registry.mailbox).pipe(Effect.timeoutOption(Math.max(0, deadline - now)))
      if (Option.isNone(next)) {
        for (const id of pending) excluded.push({ id, reason: "straggler" })
        pending.clear()
        break
      }
      const input = next.value
      if (!pending.has(input.id)) continue
      if (input._tag === "Gone") {
        // Died or went silent mid-round: excluded as offline (the cause is in clients[].reason).
        excluded.push({ id: input.id, reason: "offline" })
        pending.delete(input.id)
      } else if (input.round === round) {
        updates.push({ id: input.id, weights: input.weights, samples: input.samples })
        bytesIn += input.bytes
        pending.delete(input.id)
      }
    }
    if (updates.length > 0) {
      global = yield* FedAvg.aggregate(updates).pipe(
        Effect.mapError((error) => new ServerFailed({ reason: error.message })),
      )
    }
    const evaluation = model.evaluate(global, test)
    const finishedAt = yield* Clock.currentTimeMillis
    const record = {
      round,
      participants: updates.map((u) => u.id).sort(),
      excluded: excluded.sort((a, b) => (a.id < b.id ? -1 : 1)),
      testAccuracy: evaluation.accuracy,
      testLoss: evaluation.loss,
      durationMs: finishedAt - startedAt,
      bytesIn,
      bytesOut: bytes.byteLength * sentTo.size,
    }
    rounds.push(record)
    yield* Effect.logInfo("round-completed").pipe(Effect.annotateLogs(record))
  }

  const finalAccuracy = rounds.at(-1)?.testAccuracy ?? model.evaluate(global, test).accuracy
  finished = true
  const farewell: Protocol.Message = { _tag: "training-completed", finalAccuracy, rounds: rounds.length }
  // The farewell, then a graceful close: the close is flushed after the farewell, so the
  // process may exit without cutting either off.
  yield* Effect.forEach(
    yield* registry.onlineClients,
    (client) =>
      client.connection === undefined
        ? Effect.void
        : send(client.connection, farewell).pipe(
            Effect.ignore,
            Effect.andThen(client.connection.close("training completed")),
          ),
    { concurrency: "unbounded", discard: true },
  )
  yield* Effect.logInfo("training-completed").pipe(Effect.annotateLogs({ finalAccuracy, rounds: rounds.length }))
  const report: Report.Report = {
    config: { ...settings, secret: "<redacted>" } as unknown as Report.Report["config"],
    rounds,
    clients: yield* registry.snapshot,
    finalAccuracy,
  }
  return report
})
