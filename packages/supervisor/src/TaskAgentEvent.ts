/**
 * What happened on one end of a task pipe, as typed events: every message
 * sent, resent, received, dropped as a duplicate or as undecodable, every
 * delivery given up, the peer gone, the end closed. A `TaskAgent` and a
 * `TaskExchanger` publish them on `events` / `subscribe`; logs, a status
 * page and tests read them (never the log lines).
 *
 * `side` is the end that saw it (`agent`: the worker; `exchanger`: the
 * site), `kind` the message's tag, `messageId` its id, `at` epoch
 * milliseconds from the Effect `Clock`.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The end of the pipe that reports an event.
 *
 * @since 0.1.0
 * @category models
 */
export const Side = Schema.Literals(["agent", "exchanger"])

/**
 * @since 0.1.0
 * @category models
 */
export type Side = typeof Side.Type

/**
 * A message left (the first send).
 *
 * @since 0.1.0
 * @category events
 */
export class MessageSent extends Schema.TaggedClass<MessageSent>()("MessageSent", {
  side: Side,
  kind: Schema.String,
  messageId: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * An unacknowledged message left again; `resend` counts from 1.
 *
 * @since 0.1.0
 * @category events
 */
export class MessageResent extends Schema.TaggedClass<MessageResent>()("MessageResent", {
  side: Side,
  kind: Schema.String,
  messageId: Schema.Number,
  resend: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * A message arrived and decoded (duplicates included; see
 * `DuplicateDropped`).
 *
 * @since 0.1.0
 * @category events
 */
export class MessageReceived extends Schema.TaggedClass<MessageReceived>()("MessageReceived", {
  side: Side,
  kind: Schema.String,
  messageId: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * A payload message arrived again (a resend after a lost or late ack): it
 * was acknowledged again and not delivered a second time.
 *
 * @since 0.1.0
 * @category events
 */
export class DuplicateDropped extends Schema.TaggedClass<DuplicateDropped>()("DuplicateDropped", {
  side: Side,
  kind: Schema.String,
  messageId: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * A value arrived that could not be decoded (`error` is `MalformedMessage`
 * or `UnknownMessage`, naming the tag and the field), or decoded but broke
 * the protocol (a chunk at the wrong offset). It was dropped; the end keeps
 * serving.
 *
 * @since 0.1.0
 * @category events
 */
export class MessageRejected extends Schema.TaggedClass<MessageRejected>()("MessageRejected", {
  side: Side,
  tag: Schema.String,
  path: Schema.optionalKey(Schema.String),
  reason: Schema.String,
  at: Schema.Number,
}) {}

/**
 * The peer reported that it could not decode one of our messages (its
 * `ProtocolError`).
 *
 * @since 0.1.0
 * @category events
 */
export class PeerRejectedMessage extends Schema.TaggedClass<PeerRejectedMessage>()("PeerRejectedMessage", {
  side: Side,
  of: Schema.optionalKey(Schema.Number),
  tag: Schema.String,
  path: Schema.optionalKey(Schema.String),
  reason: Schema.String,
  at: Schema.Number,
}) {}

/**
 * A message was never acknowledged: sent, resent `resends` times, given up
 * (the caller failed with `DeliveryFailed`).
 *
 * @since 0.1.0
 * @category events
 */
export class DeliveryGaveUp extends Schema.TaggedClass<DeliveryGaveUp>()("DeliveryGaveUp", {
  side: Side,
  kind: Schema.String,
  messageId: Schema.Number,
  resends: Schema.Number,
  at: Schema.Number,
}) {}

/**
 * The peer is gone: silent since `lastHeardAt` (`reason: "silent"`), or the
 * pipe closed under it (`reason: "pipe-closed"`, `detail` e.g. the exit
 * code).
 *
 * @since 0.1.0
 * @category events
 */
export class PeerWentAway extends Schema.TaggedClass<PeerWentAway>()("PeerWentAway", {
  side: Side,
  reason: Schema.Literals(["silent", "pipe-closed"]),
  lastHeardAt: Schema.Number,
  silentMs: Schema.Number,
  detail: Schema.optionalKey(Schema.String),
  at: Schema.Number,
}) {}

/**
 * The end closed: by its owner (`by: "local"`) or by the peer's `Close`.
 *
 * @since 0.1.0
 * @category events
 */
export class EndClosed extends Schema.TaggedClass<EndClosed>()("EndClosed", {
  side: Side,
  by: Schema.Literals(["local", "peer"]),
  reason: Schema.String,
  at: Schema.Number,
}) {}

/**
 * Any task-pipe event, as a Schema (to encode events for logs or export)
 * and as a type.
 *
 * @since 0.1.0
 * @category events
 */
export const TaskAgentEvent = Schema.Union([
  MessageSent,
  MessageResent,
  MessageReceived,
  DuplicateDropped,
  MessageRejected,
  PeerRejectedMessage,
  DeliveryGaveUp,
  PeerWentAway,
  EndClosed,
])

/**
 * @since 0.1.0
 * @category events
 */
export type TaskAgentEvent = typeof TaskAgentEvent.Type
