/**
 * One session with the server on one connection: the handshake (the HMAC
 * proof of the secret, then the welcome within `joinTimeout`), heartbeats
 * for as long as it lasts, and the routing of what the server sends: round
 * models to the `LocalTrainer`, heartbeat acks to the `HeartbeatSender`, the
 * final `training-completed`. It ends with `Completed` or a `SessionEnd`
 * error saying why.
 *
 * Every byte from the server is untrusted: an unknown or malformed message,
 * a model of the wrong size, training settings out of range all end the
 * session with `Undecodable`, never with a defect.
 *
 * @since 0.2.0
 */

import { Auth, Protocol } from "@fedguard/app-kit"
import { Weights, Workload } from "@fedguard/federation"
import { Heartbeat, HeartbeatSender } from "@fedguard/heartbeat"
import { Connection, Envelope, PeerId, type TransportError } from "@fedguard/transport"
import { Effect, Option, References, Result, Schema, type Scope, Stream } from "effect"
import * as ClientEvent from "./ClientEvent.ts"
import { ClientEvents } from "./ClientEvents.ts"
import { type ClientSettings, retryPolicy } from "./ClientSettings.ts"
import { LocalData } from "./LocalData.ts"
import * as LocalTrainer from "./LocalTrainer.ts"
import {
  Completed,
  ConnectionEnded,
  fromTransport,
  NotWelcomed,
  PeerLost,
  Refused,
  type SessionError,
  Undecodable,
} from "./SessionEnd.ts"

/**
 * The settings a session uses.
 *
 * @since 0.2.0
 * @category models
 */
export type SessionSettings = Pick<
  ClientSettings,
  | "server"
  | "id"
  | "secret"
  | "seed"
  | "shardIndex"
  | "joinTimeout"
  | "heartbeatInterval"
  | "heartbeatTimeout"
  | "maxRetries"
  | "retryBaseDelay"
  | "retryMaxDelay"
  | "faultStallUpload"
>

/**
 * The server's welcome: the training settings and its heartbeat timing.
 *
 * @since 0.2.0
 * @category models
 */
export type Welcome = typeof Protocol.Welcome.Type

const positiveInt = Schema.Int.check(Schema.isGreaterThan(0))
const positive = Schema.Finite.check(Schema.isGreaterThan(0))

// The protocol's Schema says what a welcome looks like; this one says which values the
// client can work with (a zero batch size or interval would fail later, or spin).
const UsableWelcome = Schema.Struct({
  localEpochs: positiveInt,
  batchSize: positiveInt,
  learningRate: positive,
  heartbeatIntervalMs: positive,
  heartbeatTimeoutMs: positive,
})

const checkWelcome = Schema.decodeUnknownEffect(UsableWelcome)
const encodeHeartbeat = Schema.encodeSync(Heartbeat.Heartbeat)
const decodeAck = Schema.decodeUnknownEffect(Heartbeat.HeartbeatAck)

/**
 * A session's heartbeat timing: the peer timeout is the client's
 * `heartbeatTimeout` if set, else the server's; the interval is the client's
 * `heartbeatInterval` if set, else the server's, but never more than half
 * the peer timeout.
 *
 * Why the bound: the sender declares the server lost `peerTimeout` after the
 * last ack, and acks only answer beats. A client that shortens the timeout
 * (`--heartbeat-timeout 1s`) under the server's interval (30 s by default)
 * would see no ack for a whole interval and lose a healthy server; two beats
 * per timeout keep the last ack at most `peerTimeout / 2` old, so a stalled
 * server is declared lost `peerTimeout` after its last ack, and a single lost
 * ack is tolerated.
 *
 * @example
 * ```ts
 * heartbeatTiming({ heartbeatTimeout: 1000 }, { heartbeatIntervalMs: 30_000, heartbeatTimeoutMs: 90_000 })
 * // { intervalMs: 500, peerTimeoutMs: 1000 }
 * ```
 *
 * @since 0.2.0
 * @category heartbeats
 */
export const heartbeatTiming = (
  settings: Pick<SessionSettings, "heartbeatInterval" | "heartbeatTimeout">,
  welcome: Pick<Welcome, "heartbeatIntervalMs" | "heartbeatTimeoutMs">,
): { readonly intervalMs: number; readonly peerTimeoutMs: number } => {
  const peerTimeoutMs = settings.heartbeatTimeout ?? welcome.heartbeatTimeoutMs
  const intervalMs = Math.max(1, Math.min(settings.heartbeatInterval ?? welcome.heartbeatIntervalMs, peerTimeoutMs / 2))
  return { intervalMs, peerTimeoutMs }
}

// What the steps of a session share.
interface Ctx {
  readonly settings: SessionSettings
  readonly connection: Connection.Connection
  readonly local: LocalData["Service"]
}

const decodeMessage = (ctx: Ctx, envelope: Envelope.Envelope) =>
  Protocol.fromEnvelope(envelope, ctx.settings.server).pipe(
    Effect.mapError((error) => new Undecodable({ server: ctx.settings.server, reason: error.reason })),
  )

const transportEnded = (ctx: Ctx, welcomed: boolean) => (error: TransportError.TransportError) =>
  fromTransport(error, ctx.settings.server, welcomed)

// Handshake, one inbound item at a time: answer the challenge, then wait for the welcome.
const greet = (ctx: Ctx) =>
  Effect.fnUntraced(function* (item: Connection.Inbound): Effect.fn.Return<Result.Result<Welcome, void>, SessionError> {
    const { server, id } = ctx.settings
    if (item._tag === "Transfer") {
      yield* item.transfer.abort("no transfer before the welcome")
      return yield* new Undecodable({ server, reason: `transfer "${item.transfer.tag}" before the welcome` })
    }
    const message = yield* decodeMessage(ctx, item.envelope)
    switch (message._tag) {
      case "challenge": {
        const proof = Auth.prove(ctx.settings.secret, message.nonce, id)
        yield* ctx.connection
          .send(Protocol.toEnvelope({ _tag: "join", id, proof, samples: ctx.local.samples }))
          .pipe(Effect.mapError(transportEnded(ctx, false)))
        return Result.failVoid
      }
      case "welcome":
        return Result.succeed(message)
      case "refused":
        return yield* new Refused({ server, reason: message.reason })
      default:
        return yield* new Undecodable({ server, reason: `unexpected "${message._tag}" before the welcome` })
    }
  })

// The welcome within `joinTimeout`, with training settings the client can work with.
const awaitWelcome = (ctx: Ctx) =>
  Effect.gen(function* () {
    const { server, joinTimeout } = ctx.settings
    const welcome = yield* ctx.connection.inbound.pipe(
      Stream.mapError(transportEnded(ctx, false)),
      Stream.mapEffect(greet(ctx)),
      Stream.filterMap((greeted) => greeted),
      Stream.runHead,
      Effect.flatMap(
        Option.match({
          onNone: () => Effect.fail(new NotWelcomed({ server, reason: "the connection ended before the welcome" })),
          onSome: Effect.succeed,
        }),
      ),
      Effect.timeoutOrElse({
        duration: joinTimeout,
        orElse: () => Effect.fail(new NotWelcomed({ server, reason: `no welcome within ${joinTimeout} ms` })),
      }),
    )
    yield* checkWelcome(welcome).pipe(
      Effect.mapError((error) => new Undecodable({ server, reason: `welcome: ${error.message}` })),
    )
    return welcome
  })

// What a welcomed session does with one inbound item; `Completed` ends the session.
const route = (
  ctx: Ctx,
  sender: HeartbeatSender.HeartbeatSender["Service"],
  trainer: LocalTrainer.LocalTrainer["Service"],
  paramCount: number,
) =>
  Effect.fnUntraced(function* (
    item: Connection.Inbound,
  ): Effect.fn.Return<Result.Result<Completed, void>, SessionError> {
    const { server } = ctx.settings
    if (item._tag === "Transfer") {
      const transfer = item.transfer
      if (transfer.tag !== "model") {
        yield* transfer.abort(`unexpected transfer ${transfer.tag}`)
        return Result.failVoid
      }
      const meta = yield* Protocol.decodeMeta(Protocol.ModelMeta, transfer.meta, server).pipe(
        Effect.mapError((error) => new Undecodable({ server, reason: error.reason })),
      )
      // At most one model's worth of bytes is buffered, whatever the server announces.
      const collected = yield* Connection.collectBytes(transfer, paramCount * 4).pipe(Effect.result)
      if (Result.isFailure(collected)) {
        // A model stream that breaks (aborted, or cut by a closing connection) ends this transfer,
        // not the session: what the server sent after it (`refused: replaced …`) or the end of
        // the inbound stream says why the session ends.
        if (collected.failure._tag === "ConnectionClosed") return Result.failVoid
        return yield* transportEnded(ctx, true)(collected.failure)
      }
      const bytes = collected.success
      const params = yield* Weights.decode(bytes, paramCount).pipe(
        Effect.mapError(
          (error) => new Undecodable({ server, reason: `model of round ${meta.round}: ${error.message}` }),
        ),
      )
      yield* trainer.submit({ round: meta.round, params })
      return Result.failVoid
    }
    if (item.envelope.tag === Heartbeat.ackTag) {
      const ack = yield* decodeAck(item.envelope.body).pipe(
        Effect.mapError((error) => new Undecodable({ server, reason: `heartbeat ack: ${error.message}` })),
      )
      yield* sender.acknowledge(ack)
      return Result.failVoid
    }
    const message = yield* decodeMessage(ctx, item.envelope)
    switch (message._tag) {
      case "training-completed":
        return Result.succeed(new Completed({ finalAccuracy: message.finalAccuracy, rounds: message.rounds }))
      case "refused":
        return yield* new Refused({ server, reason: message.reason })
      default:
        return yield* new Undecodable({ server, reason: `unexpected "${message._tag}" after the welcome` })
    }
  })

/**
 * Runs one session on `connection` until the server completes training
 * (`Completed`, after publishing `TrainingCompleted`) or the session ends with a `SessionEnd` error:
 *
 * - before the welcome: `NotWelcomed` (none within `joinTimeout` of
 *   starting, or the connection ended), `Refused`, `Undecodable`;
 * - after it: `PeerLost` (no heartbeat ack for the peer timeout),
 *   `ConnectionEnded`, `Refused`, `Undecodable`.
 *
 * The heartbeat sender and the trainer are fibers in the caller's Scope:
 * close it to stop them and the connection. Publishes `Joined` and
 * `TrainingCompleted`; the trainer publishes `RoundTrained`.
 *
 * @since 0.2.0
 * @category sessions
 */
export const run = Effect.fnUntraced(function* (
  settings: SessionSettings,
  connection: Connection.Connection,
): Effect.fn.Return<Completed, SessionError, Scope.Scope | ClientEvents | LocalData> {
  const { server, id } = settings
  const events = yield* ClientEvents
  const ctx: Ctx = { settings, connection, local: yield* LocalData }
  const welcome = yield* awaitWelcome(ctx)
  yield* events.publish(new ClientEvent.Joined({ id, server, model: welcome.model }))

  // Welcomed: beat, train, and route what arrives until the server completes training.
  const { intervalMs, peerTimeoutMs } = heartbeatTiming(settings, welcome)
  // The sender's own warnings (peer lost, a beat that could not be sent) repeat what this
  // session reports as events (ServerLost, ConnectionEnded): the client's log is its events.
  const sender = yield* HeartbeatSender.make({
    from: PeerId.make(id),
    interval: intervalMs,
    peerTimeout: peerTimeoutMs,
    send: (beat) => connection.send(Envelope.make(Heartbeat.heartbeatTag, encodeHeartbeat(beat))),
  }).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))
  const trainer = yield* LocalTrainer.make({
    id,
    seed: settings.seed,
    shardIndex: settings.shardIndex,
    training: welcome,
    connection,
    retry: retryPolicy(settings),
    faultStallUpload: settings.faultStallUpload,
  })
  const routed = connection.inbound.pipe(
    Stream.mapError(transportEnded(ctx, true)),
    Stream.mapEffect(route(ctx, sender, trainer, (yield* Workload.Workload).paramCount(welcome.model))),
    Stream.filterMap((done) => done),
    Stream.runHead,
    Effect.flatMap(
      Option.match({
        onNone: () => Effect.fail(new ConnectionEnded({ server, reason: "the server closed the connection" })),
        onSome: Effect.succeed,
      }),
    ),
  )
  const lost = Effect.flatMap(sender.lost, (event) =>
    Effect.fail(new PeerLost({ server, silentMs: event.at - event.lastAckAt, peerTimeoutMs })),
  )
  const trainerFailed = Effect.mapError(trainer.failed, (error) =>
    error._tag === "InvalidTrainingOptions" || error._tag === "ParamCountMismatch"
      ? new Undecodable({ server, reason: `the welcome's training settings: ${error.message}` })
      : fromTransport(error, server, true),
  )
  const completed = yield* routed.pipe(Effect.raceFirst(lost), Effect.raceFirst(trainerFailed))
  yield* events.publish(
    new ClientEvent.TrainingCompleted({ id, finalAccuracy: completed.finalAccuracy, rounds: completed.rounds }),
  )
  // No farewell `close` here: the server closes its side after `training-completed`, and a
  // close that waits to flush its frame to a peer already gone held the exit for 1 s. The
  // caller's Scope closes the connection.
  return completed
})
