/**
 * Human-readable reasons for socket failures, so that `PeerUnreachable` and
 * `ConnectionClosed` name what the operating system said (`ECONNREFUSED`,
 * `ECONNRESET`, `EPIPE`, …).
 */
import { Predicate } from "effect"
import type * as Socket from "effect/socket/Socket"
import type * as SocketServer from "effect/socket/SocketServer"

/** `"ECONNREFUSED: connect ECONNREFUSED 127.0.0.1:7070"`-style text for a Node error (or anything thrown). */
export const cause = (value: unknown): string => {
  const code = Predicate.hasProperty(value, "code") && Predicate.isString(value.code) ? value.code : undefined
  const message =
    Predicate.hasProperty(value, "message") && Predicate.isString(value.message) && value.message.length > 0
      ? value.message
      : undefined
  if (code !== undefined && message !== undefined) return message.includes(code) ? message : `${code}: ${message}`
  // AggregateError (a name resolving to several addresses) has no message of its own.
  if (Predicate.hasProperty(value, "errors") && Array.isArray(value.errors) && value.errors.length > 0) {
    return value.errors.map(cause).join("; ")
  }
  return code ?? message ?? String(value)
}

/** The reason a socket operation failed. */
export const socketError = (error: Socket.SocketError): string => {
  const reason = error.reason
  switch (reason._tag) {
    case "SocketCloseError":
      return reason.code === 1000 ? "the socket closed" : `the socket closed abruptly (code ${reason.code})`
    case "SocketOpenError":
      return reason.kind === "Timeout" ? "connect timed out" : cause(reason.cause)
    case "SocketUpgradeError":
      return reason.cause === undefined ? reason.message : cause(reason.cause)
    case "SocketReadError":
    case "SocketWriteError":
      return cause(reason.cause)
  }
}

/** The reason a server could not listen (`EADDRINUSE`, `EACCES`, …). */
export const serverError = (error: SocketServer.SocketServerError): string => cause(error.reason.cause)
