/**
 * The messages on a task pipe, between a site's `TaskExchanger` and a
 * worker's `TaskAgent`, after NVIDIA FLARE's pipe protocol (task request,
 * reply, heartbeat, end/abort), as Schemas.
 *
 * Every message has an `id`: a positive integer its sender numbers from 1,
 * unique per sender and per pipe. Payload messages (`TaskOffer`,
 * `TaskResult`, `ResultChunk`) are acknowledged by an `Ack` naming that id,
 * resent under the same id until acknowledged, and de-duplicated by id on
 * the receiving side; `Heartbeat`, `Ack`, `Close` and `ProtocolError` are
 * sent once.
 *
 * Messages are plain objects of strings, numbers and `Uint8Array`s, so they
 * travel by structured clone (a `MessagePort`, or a child's IPC channel in
 * `"advanced"` serialization) with no encoding step; a `Uint8Array` payload
 * can be transferred instead of copied.
 *
 * Everything that arrives is untrusted: {@link decode} checks it field by
 * field and fails with `UnknownMessage` (not a message of this protocol) or
 * `MalformedMessage` (naming the field), never with a defect.
 *
 * @since 0.1.0
 */
import { Predicate, Result, Schema, SchemaIssue } from "effect"
import { MalformedMessage, UnknownMessage } from "./AgentError.ts"

/**
 * A message id: a positive safe integer.
 *
 * @since 0.1.0
 * @category schemas
 */
export const MessageId = Schema.Int.check(Schema.isGreaterThan(0))

// Bounded strings: a peer's text never grows without limit in our memory or logs.
const Text = (maxLength: number) => Schema.String.check(Schema.isMaxLength(maxLength))
const TaskId = Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(256))
const ByteCount = Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))

// Set on a resend whose payload left with an earlier copy (transferred, not copied): it only
// matters if that copy was lost, which a MessagePort or IPC channel never does.
const moved = Schema.optionalKey(Schema.Boolean)

/**
 * Site → worker: a task. `taskId` names it (unique per exchanger), `name`
 * says what to do, `data` is its input (a round's model and settings as
 * bytes), `meta` optional JSON settings.
 *
 * @since 0.1.0
 * @category messages
 */
export const TaskOffer = Schema.TaggedStruct("TaskOffer", {
  id: MessageId,
  taskId: TaskId,
  name: Text(256),
  data: Schema.Uint8Array,
  meta: Schema.optionalKey(Schema.Json),
  moved,
})

/**
 * @since 0.1.0
 * @category messages
 */
export type TaskOffer = typeof TaskOffer.Type

/**
 * Worker → site: the one result of a task. `outcome` is `ok` (the result is
 * `totalBytes` long; `data` holds its first part, the rest follows as
 * `ResultChunk`s) or `failed` (`error` says why; no data).
 *
 * @since 0.1.0
 * @category messages
 */
export const TaskResult = Schema.TaggedStruct("TaskResult", {
  id: MessageId,
  taskId: TaskId,
  outcome: Schema.Literals(["ok", "failed"]),
  totalBytes: ByteCount,
  data: Schema.Uint8Array,
  error: Schema.optionalKey(Text(4096)),
  moved,
})

/**
 * @since 0.1.0
 * @category messages
 */
export type TaskResult = typeof TaskResult.Type

/**
 * Worker → site: the bytes of a large result at `offset`, after its
 * `TaskResult`. Sent one at a time, each acknowledged before the next, so
 * they arrive in order.
 *
 * @since 0.1.0
 * @category messages
 */
export const ResultChunk = Schema.TaggedStruct("ResultChunk", {
  id: MessageId,
  taskId: TaskId,
  offset: ByteCount,
  data: Schema.Uint8Array,
  moved,
})

/**
 * @since 0.1.0
 * @category messages
 */
export type ResultChunk = typeof ResultChunk.Type

/**
 * Either way: the payload message `of` arrived (also sent for a duplicate,
 * so a lost ack is made good by the resend).
 *
 * @since 0.1.0
 * @category messages
 */
export const Ack = Schema.TaggedStruct("Ack", { id: MessageId, of: MessageId })

/**
 * @since 0.1.0
 * @category messages
 */
export type Ack = typeof Ack.Type

/**
 * Either way, every heartbeat interval: the sender is alive.
 *
 * @since 0.1.0
 * @category messages
 */
export const Heartbeat = Schema.TaggedStruct("Heartbeat", { id: MessageId })

/**
 * @since 0.1.0
 * @category messages
 */
export type Heartbeat = typeof Heartbeat.Type

/**
 * Either way: the sender closes (FLARE's END / ABORT); the receiver's calls
 * fail with `AgentClosed { by: "peer" }` from then on.
 *
 * @since 0.1.0
 * @category messages
 */
export const Close = Schema.TaggedStruct("Close", { id: MessageId, reason: Text(1024) })

/**
 * @since 0.1.0
 * @category messages
 */
export type Close = typeof Close.Type

/**
 * Either way: a message the sender received could not be decoded (`of`,
 * when its id could be read; `path` and `reason` from the decoder). For
 * diagnosis only; never answered.
 *
 * @since 0.1.0
 * @category messages
 */
export const ProtocolError = Schema.TaggedStruct("ProtocolError", {
  id: MessageId,
  of: Schema.optionalKey(MessageId),
  tag: Text(64),
  path: Schema.optionalKey(Text(256)),
  reason: Text(1024),
})

/**
 * @since 0.1.0
 * @category messages
 */
export type ProtocolError = typeof ProtocolError.Type

/**
 * Any message of the protocol.
 *
 * @since 0.1.0
 * @category messages
 */
export const Message = Schema.Union([TaskOffer, TaskResult, ResultChunk, Ack, Heartbeat, Close, ProtocolError])

/**
 * @since 0.1.0
 * @category messages
 */
export type Message = typeof Message.Type

/**
 * The kinds of message, as their tags.
 *
 * @since 0.1.0
 * @category messages
 */
export type Kind = Message["_tag"]

/**
 * The messages that are acknowledged, resent and de-duplicated.
 *
 * @since 0.1.0
 * @category messages
 */
export type PayloadMessage = TaskOffer | TaskResult | ResultChunk

/**
 * Whether a message is acknowledged, resent and de-duplicated.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isPayload = (message: Message): message is PayloadMessage =>
  message._tag === "TaskOffer" || message._tag === "TaskResult" || message._tag === "ResultChunk"

const members = {
  TaskOffer,
  TaskResult,
  ResultChunk,
  Ack,
  Heartbeat,
  Close,
  ProtocolError,
} as const

const decoders = Object.fromEntries(
  Object.entries(members).map(([tag, schema]) => [
    tag,
    Schema.decodeUnknownResult(schema as unknown as Schema.Decoder<Message>, { onExcessProperty: "ignore" }),
  ]),
) as Record<Kind, (input: unknown) => Result.Result<Message, Schema.SchemaError>>

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

const describe = (tag: string, error: Schema.SchemaError): MalformedMessage => {
  const first = formatIssues(error.issue).issues[0]
  if (first === undefined) return new MalformedMessage({ tag, reason: error.message })
  const path = (first.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment))
  return path.length === 0
    ? new MalformedMessage({ tag, reason: first.message })
    : new MalformedMessage({ tag, path: path.join("."), reason: first.message })
}

/**
 * Decodes one inbound value. The tag is read first, so an error names the
 * field of the kind the peer meant (`TaskOffer` at `taskId`: expected a
 * string) rather than every member of the union. Never throws.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (input: unknown): Result.Result<Message, MalformedMessage | UnknownMessage> => {
  if (!Predicate.isObject(input)) return Result.fail(new UnknownMessage({ tag: "<not an object>" }))
  const tag = Predicate.hasProperty(input, "_tag") ? input._tag : undefined
  if (!Predicate.isString(tag)) return Result.fail(new UnknownMessage({ tag: "<missing>" }))
  if (!Object.hasOwn(decoders, tag)) return Result.fail(new UnknownMessage({ tag: tag.slice(0, 64) }))
  return Result.mapError(decoders[tag as Kind](input), (error) => describe(tag, error))
}

/**
 * The id of an undecodable value, when it has a valid one: quoted in the
 * `ProtocolError` sent back.
 *
 * @since 0.1.0
 * @category decoding
 */
export const idOf = (input: unknown): number | undefined => {
  if (!Predicate.hasProperty(input, "id")) return undefined
  const id = input.id
  return Predicate.isNumber(id) && Number.isSafeInteger(id) && id > 0 ? id : undefined
}

/**
 * Whether an undecodable value claims to be a `ProtocolError`: such a value
 * is never answered with another, so two confused peers cannot ping-pong.
 *
 * @since 0.1.0
 * @category decoding
 */
export const claimsProtocolError = (input: unknown): boolean =>
  Predicate.hasProperty(input, "_tag") && input._tag === "ProtocolError"
