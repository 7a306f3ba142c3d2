/**
 * How one session with the server ends: `Completed` (the server finished
 * training), or one tagged error per reason, classified retryable or final by
 * its tag, as `TransportError` does. The reconnect loop decides on the tag,
 * never on the message.
 *
 * | tag                 | when                                                   | kind      | welcomed |
 * | ------------------- | ------------------------------------------------------ | --------- | -------- |
 * | `ServerUnreachable` | the connection could not be opened                     | retryable | no       |
 * | `NotWelcomed`       | no welcome within `joinTimeout`, or the connection ended first | retryable | no |
 * | `PeerLost`          | no heartbeat ack for the peer timeout                  | retryable | yes      |
 * | `ConnectionEnded`   | the connection ended after the welcome                 | retryable | yes      |
 * | `Refused`           | wrong secret, unknown id, duplicate id                 | final     | —        |
 * | `Undecodable`       | the server sent bytes or settings the client cannot use | final    | —        |
 *
 * @since 0.2.0
 */
import type { TransportError } from "@fedguard/transport"
import { Predicate, Schema } from "effect"

/**
 * The server said training is complete: its final test accuracy and the
 * number of rounds it ran.
 *
 * @since 0.2.0
 * @category models
 */
export class Completed extends Schema.TaggedClass<Completed>()("Completed", {
  finalAccuracy: Schema.Number,
  rounds: Schema.Int,
}) {}

/**
 * The connection to the server could not be opened (refused, no route, no
 * listener). Retryable.
 *
 * @since 0.2.0
 * @category errors
 */
export class ServerUnreachable extends Schema.TaggedError<ServerUnreachable>()("ServerUnreachable", {
  server: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `server ${this.server} is unreachable: ${this.reason}`
  }
}

/**
 * The server did not welcome this client: no welcome within `joinTimeout`
 * of connecting, or the connection ended during the handshake. Retryable;
 * counts against `maxRetries`.
 *
 * @since 0.2.0
 * @category errors
 */
export class NotWelcomed extends Schema.TaggedError<NotWelcomed>()("NotWelcomed", {
  server: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `not welcomed by ${this.server}: ${this.reason}`
  }
}

/**
 * The server stopped acknowledging heartbeats for the peer timeout (it is
 * stalled, or the path to it is): the session is abandoned. Retryable.
 *
 * @since 0.2.0
 * @category errors
 */
export class PeerLost extends Schema.TaggedError<PeerLost>()("PeerLost", {
  server: Schema.String,
  silentMs: Schema.Number,
  peerTimeoutMs: Schema.Number,
}) {
  override get message(): string {
    return `no heartbeat ack from ${this.server} for ${this.silentMs} ms (peer timeout ${this.peerTimeoutMs} ms)`
  }
}

/**
 * The connection ended after the welcome, before training completed (the
 * server restarted or closed it, the network broke). Retryable.
 *
 * @since 0.2.0
 * @category errors
 */
export class ConnectionEnded extends Schema.TaggedError<ConnectionEnded>()("ConnectionEnded", {
  server: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `connection to ${this.server} ended before training completed: ${this.reason}`
  }
}

/**
 * The server refused this client (wrong secret, unknown id, duplicate id).
 * Final: the same join would be refused again.
 *
 * @since 0.2.0
 * @category errors
 */
export class Refused extends Schema.TaggedError<Refused>()("Refused", {
  server: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `refused by ${this.server}: ${this.reason}`
  }
}

/**
 * The server sent something the client cannot use: an undecodable or
 * unexpected message, a malformed model, training settings out of range.
 * Final: the same bytes would fail the same way.
 *
 * @since 0.2.0
 * @category errors
 */
export class Undecodable extends Schema.TaggedError<Undecodable>()("Undecodable", {
  server: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `unusable input from ${this.server}: ${this.reason}`
  }
}

/**
 * Every way a session fails.
 *
 * @since 0.2.0
 * @category errors
 */
export type SessionError = ServerUnreachable | NotWelcomed | PeerLost | ConnectionEnded | Refused | Undecodable

/**
 * The failures a new session may cure.
 *
 * @since 0.2.0
 * @category classification
 */
export type RetryableError = ServerUnreachable | NotWelcomed | PeerLost | ConnectionEnded

/**
 * The failures a new session would repeat.
 *
 * @since 0.2.0
 * @category classification
 */
export type FinalError = Refused | Undecodable

const retryableTags: ReadonlySet<string> = new Set(["ServerUnreachable", "NotWelcomed", "PeerLost", "ConnectionEnded"])

// Only a welcomed session can lose its server by heartbeat or see its connection end
// "after the welcome": these tags say the failure run since the last welcome is over.
const welcomedTags: ReadonlySet<string> = new Set(["PeerLost", "ConnectionEnded"])

const tagIn = (tags: ReadonlySet<string>, error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && Predicate.isString(error._tag) && tags.has(error._tag)

/**
 * Whether a session error is worth a new session. Unknown values are not.
 *
 * @since 0.2.0
 * @category classification
 */
export const isRetryable = (error: unknown): error is RetryableError => tagIn(retryableTags, error)

/**
 * Whether the session that failed with `error` had been welcomed: such a
 * failure resets the reconnect policy's count.
 *
 * @since 0.2.0
 * @category classification
 */
export const wasWelcomed = (error: SessionError): boolean => tagIn(welcomedTags, error)

/**
 * The session error for a transport failure: a final transport error stays
 * final (`DecodeError`, `FrameTooLarge` → `Undecodable`; `Rejected` →
 * `Refused`); a retryable one ends the session as `NotWelcomed` before the
 * welcome and `ConnectionEnded` after it.
 *
 * @since 0.2.0
 * @category constructors
 */
export const fromTransport = (
  error: TransportError.TransportError,
  server: string,
  welcomed: boolean,
): SessionError => {
  switch (error._tag) {
    case "DecodeError":
    case "FrameTooLarge":
      return new Undecodable({ server, reason: error.message })
    case "Rejected":
      return new Refused({ server, reason: error.reason })
    default:
      return welcomed
        ? new ConnectionEnded({ server, reason: error.message })
        : new NotWelcomed({ server, reason: error.message })
  }
}
