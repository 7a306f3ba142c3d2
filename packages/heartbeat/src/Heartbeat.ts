/**
 * The heartbeat wire messages: the beat a client sends and the ack the server
 * replies with.
 *
 * Both are plain JSON-encodable structs, so they travel as the body of a
 * transport `Envelope` (tags {@link heartbeatTag} and {@link ackTag}) or in any
 * other framing. Decode what arrives from the network with
 * `Schema.decodeUnknownEffect(Heartbeat)`.
 *
 * @since 0.1.0
 */
import { PeerId } from "@fedguard/transport"
import { Schema } from "effect"

/**
 * A beat's sequence number: a non-negative integer. Senders start at 1 and
 * add one per beat, so acks can be matched to beats.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Seq = Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))).annotate({
  description: "heartbeat sequence number (a non-negative integer, +1 per beat)",
})

/**
 * A heartbeat from a client: who claims to send it (`from`, checked by the
 * server against the connection's authenticated identity), its sequence
 * number, and an optional small JSON status (round, progress, load…) that the
 * server may display. Keep `status` small: it is sent every interval.
 *
 * @example
 * ```ts
 * import { PeerId } from "@fedguard/transport"
 * import { Heartbeat } from "@fedguard/heartbeat"
 * const beat: Heartbeat.Heartbeat = { from: PeerId.make("client-1"), seq: 1, status: { round: 3 } }
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const Heartbeat = Schema.Struct({
  from: PeerId.PeerId,
  seq: Seq,
  status: Schema.optionalKey(Schema.Json),
}).annotate({ identifier: "Heartbeat", description: "a client's heartbeat" })

/**
 * @since 0.1.0
 * @category models
 */
export type Heartbeat = typeof Heartbeat.Type

/**
 * The server's reply to a heartbeat: the sequence number it acknowledges.
 * The sender counts any ack as a sign that the server is alive.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HeartbeatAck = Schema.Struct({ seq: Seq }).annotate({
  identifier: "HeartbeatAck",
  description: "the server's acknowledgement of a heartbeat",
})

/**
 * @since 0.1.0
 * @category models
 */
export type HeartbeatAck = typeof HeartbeatAck.Type

/**
 * The `Envelope` tag under which heartbeats travel on a transport's control
 * lane.
 *
 * @since 0.1.0
 * @category constants
 */
export const heartbeatTag = "heartbeat"

/**
 * The `Envelope` tag under which heartbeat acks travel.
 *
 * @since 0.1.0
 * @category constants
 */
export const ackTag = "heartbeat-ack"
