/**
 * The messages fed-server and fed-client exchange. Each is a tagged Schema
 * carried in a transport `Envelope`; weights travel as byte streams whose
 * metadata is also a Schema here.
 *
 * Handshake: the server sends `challenge` with a fresh nonce; the client
 * answers `join` with its id and an HMAC of the nonce keyed by the federation
 * secret (the secret itself never crosses the wire); the server answers
 * `welcome` (with the training settings) or `refused`, then closes.
 * Rounds: the server streams the global model (`model` transfer); the client
 * trains and streams back its weights (`update` transfer); at the end the
 * server sends `training-completed`.
 * Liveness: heartbeats and their acks are `@fedguard/heartbeat`'s own
 * messages (`Heartbeat.Heartbeat` under the envelope tag
 * `Heartbeat.heartbeatTag`, `Heartbeat.HeartbeatAck` under `Heartbeat.ackTag`),
 * not part of this union.
 *
 * @since 0.1.0
 */

import { Model } from "@fedguard/federation"
import { Envelope, TransportError } from "@fedguard/transport"
import { Effect, Schema } from "effect"

/**
 * @since 0.1.0
 * @category messages
 */
export const Challenge = Schema.TaggedStruct("challenge", { nonce: Schema.String })

/**
 * A client's answer to the challenge: its id, the HMAC proof that it holds
 * the secret, and how many training samples it holds (its shard size), the
 * most any of its updates may claim.
 *
 * @since 0.1.0
 * @category messages
 */
export const Join = Schema.TaggedStruct("join", {
  id: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(128))),
  proof: Schema.String,
  /** The size of the client's shard: no update of its may claim more samples than this. */
  samples: Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0))),
})

/**
 * The settings a client trains with, decided by the server: the model (any
 * `Model.Name`, `mlp:W1,W2,…` included), the local epochs, and
 * `localSteps`, the most SGD steps (minibatches) a client takes per round
 * (absent: the epochs run in full; a welcome from a server that predates it
 * has none, and decodes unchanged).
 *
 * @since 0.1.0
 * @category messages
 */
export const Welcome = Schema.TaggedStruct("welcome", {
  id: Schema.String,
  model: Model.Name,
  localEpochs: Schema.Int,
  /** Cap on SGD steps per round (`--local-steps`); absent = every step of the local epochs. */
  localSteps: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThan(0))),
  batchSize: Schema.Int,
  learningRate: Schema.Number,
  heartbeatIntervalMs: Schema.Number,
  heartbeatTimeoutMs: Schema.Number,
  /** An upload whose acknowledged offset does not move for this long is given up (the stall guard). */
  ackProgressTimeoutMs: Schema.Number,
  checkIntervalMs: Schema.Number,
})

/**
 * @since 0.1.0
 * @category messages
 */
export const Refused = Schema.TaggedStruct("refused", { reason: Schema.String })

/**
 * @since 0.1.0
 * @category messages
 */
export const TrainingCompleted = Schema.TaggedStruct("training-completed", {
  finalAccuracy: Schema.Number,
  rounds: Schema.Int,
})

/**
 * Every control message of the protocol.
 *
 * @since 0.1.0
 * @category messages
 */
export const Message = Schema.Union([Challenge, Join, Welcome, Refused, TrainingCompleted])

/**
 * @since 0.1.0
 * @category messages
 */
export type Message = typeof Message.Type

/**
 * Metadata of the `model` byte stream: the round it opens.
 *
 * @since 0.1.0
 * @category transfers
 */
export const ModelMeta = Schema.Struct({ round: Schema.Int, paramCount: Schema.Int })

/**
 * Metadata of the `update` byte stream: the round, how many samples the
 * client trained on (FedAvg's weight) and its last training loss.
 *
 * @since 0.1.0
 * @category transfers
 */
export const UpdateMeta = Schema.Struct({
  round: Schema.Int,
  // Checked by the server's update admission (positive integer, at most the shard size).
  samples: Schema.Number,
  trainLoss: Schema.Number,
})

const encodeMessage = Schema.encodeSync(Message)
const decodeMessage = Schema.decodeUnknownEffect(Message)

/**
 * Wraps a message in an envelope whose tag is the message's `_tag`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toEnvelope = (message: Message): Envelope.Envelope =>
  Envelope.make(message._tag, encodeMessage(message) as Schema.Json)

/**
 * Decodes an envelope into a protocol message; an unknown tag or a body that
 * fails its Schema is a `DecodeError` naming the peer and the field.
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromEnvelope = (
  envelope: Envelope.Envelope,
  peer: string,
): Effect.Effect<Message, TransportError.DecodeError> =>
  decodeMessage(envelope.body).pipe(
    Effect.flatMap((message) =>
      message._tag === envelope.tag
        ? Effect.succeed(message)
        : Effect.fail(
            new TransportError.DecodeError({ peer, reason: `envelope tag ${envelope.tag} carries ${message._tag}` }),
          ),
    ),
    Effect.mapError((error) =>
      error._tag === "DecodeError"
        ? error
        : new TransportError.DecodeError({ peer, reason: `message "${envelope.tag}": ${error.message}` }),
    ),
  )

/**
 * Decodes transfer metadata with `schema`, as a `DecodeError` on failure.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeMeta = <S extends Schema.Decoder<unknown>>(
  schema: S,
  meta: unknown,
  peer: string,
): Effect.Effect<S["Type"], TransportError.DecodeError> =>
  Schema.decodeUnknownEffect(schema)(meta).pipe(
    Effect.mapError((error) => new TransportError.DecodeError({ peer, reason: `transfer metadata: ${error.message}` })),
  ) as Effect.Effect<S["Type"], TransportError.DecodeError>
