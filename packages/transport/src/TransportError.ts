/**
 * The typed failures of a transport, split into retryable and final ones.
 *
 * Policies (retry, stall-guard) decide on the `_tag`, never on the message:
 * `SendTimeout`, `ConnectionClosed` and `PeerUnreachable` are transient and may
 * succeed if tried again; `Rejected`, `DecodeError` and `FrameTooLarge` are
 * final: the same bytes would fail the same way.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

/**
 * A send did not complete within its deadline (the peer's window stayed full,
 * or the socket did not drain). Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class SendTimeout extends Schema.TaggedError<SendTimeout>()("SendTimeout", {
  peer: Schema.String,
  timeoutMs: Schema.Number,
}) {
  override get message(): string {
    return `send to ${this.peer} did not complete within ${this.timeoutMs} ms`
  }
}

/**
 * The connection closed (locally, by the peer, or because the process died)
 * before or while the operation ran. Retryable: a new connection may succeed.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConnectionClosed extends Schema.TaggedError<ConnectionClosed>()("ConnectionClosed", {
  peer: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `connection to ${this.peer} closed: ${this.reason}`
  }
}

/**
 * The peer could not be reached (connection refused, network partition,
 * no route). Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class PeerUnreachable extends Schema.TaggedError<PeerUnreachable>()("PeerUnreachable", {
  peer: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `peer ${this.peer} is unreachable: ${this.reason}`
  }
}

/**
 * The peer refused the request (bad credentials, unknown client, protocol
 * violation). Final: retrying the same request cannot succeed.
 *
 * @since 0.1.0
 * @category errors
 */
export class Rejected extends Schema.TaggedError<Rejected>()("Rejected", {
  peer: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `rejected by ${this.peer}: ${this.reason}`
  }
}

/**
 * Bytes or a message could not be decoded. `path` names the offending field
 * where a Schema said which one. Final.
 *
 * @since 0.1.0
 * @category errors
 */
export class DecodeError extends Schema.TaggedError<DecodeError>()("DecodeError", {
  peer: Schema.String,
  reason: Schema.String,
  path: Schema.optional(Schema.String),
}) {
  override get message(): string {
    return `undecodable input from ${this.peer}${this.path === undefined ? "" : ` at ${this.path}`}: ${this.reason}`
  }
}

/**
 * A frame declared (or would need) more bytes than the configured maximum.
 * Final: the connection that sent it is closed, other connections are not
 * affected.
 *
 * @since 0.1.0
 * @category errors
 */
export class FrameTooLarge extends Schema.TaggedError<FrameTooLarge>()("FrameTooLarge", {
  peer: Schema.String,
  size: Schema.Number,
  maxBytes: Schema.Number,
}) {
  override get message(): string {
    return `frame of ${this.size} bytes from ${this.peer} exceeds the maximum of ${this.maxBytes} bytes`
  }
}

/**
 * Every failure a transport operation can report.
 *
 * @since 0.1.0
 * @category errors
 */
export type TransportError = SendTimeout | ConnectionClosed | PeerUnreachable | Rejected | DecodeError | FrameTooLarge

/**
 * The failures worth another attempt.
 *
 * @since 0.1.0
 * @category errors
 */
export type RetryableError = SendTimeout | ConnectionClosed | PeerUnreachable

/**
 * The failures that another attempt would repeat.
 *
 * @since 0.1.0
 * @category errors
 */
export type FinalError = Rejected | DecodeError | FrameTooLarge

/**
 * The tags of retryable errors. Retry policies consult this set, never the
 * message text.
 *
 * @since 0.1.0
 * @category classification
 */
export const retryableTags: ReadonlySet<string> = new Set(["SendTimeout", "ConnectionClosed", "PeerUnreachable"])

/**
 * The tags of final errors.
 *
 * @since 0.1.0
 * @category classification
 */
export const finalTags: ReadonlySet<string> = new Set(["Rejected", "DecodeError", "FrameTooLarge"])

/**
 * Whether an error (of any type) is a tagged error whose tag is retryable.
 * Unknown errors are not retryable: retrying what we do not understand hides
 * bugs.
 *
 * @since 0.1.0
 * @category classification
 */
export const isRetryable = (error: unknown): error is RetryableError =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" && retryableTags.has(error._tag)

/**
 * Whether an error is one of the transport's final errors.
 *
 * @since 0.1.0
 * @category classification
 */
export const isFinal = (error: unknown): error is FinalError =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" && finalTags.has(error._tag)
