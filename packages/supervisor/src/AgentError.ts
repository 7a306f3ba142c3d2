/**
 * The typed failures of the task agent and its pipe, after NVIDIA FLARE's
 * FlareAgent (`AgentClosed`, `CallStateError`, the peer-gone status of its
 * `PipeHandler`) plus the ones a typed protocol adds: an undecodable or
 * unknown message, a message never acknowledged, a timed-out `getTask`.
 *
 * Classified by tag, never by message text: `TaskTimeout` and
 * `DeliveryFailed` are retryable (the peer may still answer later, or a new
 * worker will); `AgentClosed`, `PeerGone` and `PipeClosed` end the endpoint
 * (a new worker and pipe are needed); `CallStateError`, `MalformedMessage`,
 * `UnknownMessage` and `TaskFailed` are final.
 *
 * @since 0.1.0
 */
import { Predicate, Schema } from "effect"

/**
 * `getTask` waited `waitedMs` milliseconds and no task came. The agent is
 * still open: call `getTask` again.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskTimeout extends Schema.TaggedError<TaskTimeout>()("TaskTimeout", {
  waitedMs: Schema.Number,
}) {
  override get message(): string {
    return `no task within ${this.waitedMs} ms`
  }
}

/**
 * A call made in the wrong state (FlareAgent's `CallStateError`):
 * `submitResult` / `failTask` a second time for the same task or for a task
 * that is not the current one, `getTask` while the current task has no
 * result yet, or `run` with a task id already in use. `call` names the
 * call, `taskId` the task, `reason` what is wrong.
 *
 * @since 0.1.0
 * @category errors
 */
export class CallStateError extends Schema.TaggedError<CallStateError>()("CallStateError", {
  call: Schema.String,
  taskId: Schema.optional(Schema.String),
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.call}${this.taskId === undefined ? "" : ` (task ${this.taskId})`}: ${this.reason}`
  }
}

/**
 * The endpoint is closed: by its owner (`by: "local"`, `close` or the end
 * of its Scope) or by the peer's `Close` message (`by: "peer"`). Every call
 * after close fails with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class AgentClosed extends Schema.TaggedError<AgentClosed>()("AgentClosed", {
  by: Schema.Literals(["local", "peer"]),
  reason: Schema.String,
}) {
  override get message(): string {
    return `closed by the ${this.by === "local" ? "owner" : "peer"}: ${this.reason}`
  }
}

/**
 * The peer is gone: nothing (no heartbeat, no message) arrived for
 * `silentMs` milliseconds, at least the peer timeout, or the start timeout
 * when the peer never sent anything (`reason: "silent"`), or the pipe
 * under it closed (`reason: "pipe-closed"`: the
 * worker exited, the child process died). `lastHeardAt` is the epoch
 * millisecond of the last inbound message (or of the endpoint's start),
 * `detail` says more when known (an exit code). Every call after it fails
 * with it.
 *
 * @since 0.1.0
 * @category errors
 */
export class PeerGone extends Schema.TaggedError<PeerGone>()("PeerGone", {
  reason: Schema.Literals(["silent", "pipe-closed"]),
  lastHeardAt: Schema.Number,
  silentMs: Schema.Number,
  detail: Schema.optional(Schema.String),
}) {
  override get message(): string {
    return this.reason === "silent"
      ? `peer silent for ${this.silentMs} ms`
      : `pipe closed${this.detail === undefined ? "" : `: ${this.detail}`}`
  }
}

/**
 * A message (`messageId`, of `kind`) was sent, then resent `resends` times
 * every resend interval, and never acknowledged (FlareAgent: every 2 s, at
 * most 3 resends).
 *
 * @since 0.1.0
 * @category errors
 */
export class DeliveryFailed extends Schema.TaggedError<DeliveryFailed>()("DeliveryFailed", {
  messageId: Schema.Number,
  kind: Schema.String,
  resends: Schema.Number,
}) {
  override get message(): string {
    return `${this.kind} ${this.messageId} not acknowledged after ${this.resends} resends`
  }
}

/**
 * The pipe cannot carry messages any more (`send` on a closed port, a child
 * that exited, no IPC channel in this process). `reason` says which.
 *
 * @since 0.1.0
 * @category errors
 */
export class PipeClosed extends Schema.TaggedError<PipeClosed>()("PipeClosed", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `pipe closed: ${this.reason}`
  }
}

/**
 * An inbound message of a known kind (`tag`) that does not decode: `path`
 * names the offending field (`taskId`, `data`, `id`), `reason` says why.
 * The message is dropped and the endpoint keeps serving.
 *
 * @since 0.1.0
 * @category errors
 */
export class MalformedMessage extends Schema.TaggedError<MalformedMessage>()("MalformedMessage", {
  tag: Schema.String,
  path: Schema.optional(Schema.String),
  reason: Schema.String,
}) {
  override get message(): string {
    return `malformed ${this.tag}${this.path === undefined ? "" : ` at ${this.path}`}: ${this.reason}`
  }
}

/**
 * An inbound value that is not a protocol message at all: not an object,
 * no string `_tag`, or a `_tag` this protocol does not have. `tag` is what
 * was found (`"<missing>"`, `"<not an object>"` or the unknown tag, cut at
 * 64 characters). The value is dropped and the endpoint keeps serving.
 *
 * @since 0.1.0
 * @category errors
 */
export class UnknownMessage extends Schema.TaggedError<UnknownMessage>()("UnknownMessage", {
  tag: Schema.String,
}) {
  override get message(): string {
    return `unknown message: ${this.tag}`
  }
}

/**
 * The worker reported that it could not do the task (`TaskAgent.failTask`):
 * `reason` is its text.
 *
 * @since 0.1.0
 * @category errors
 */
export class TaskFailed extends Schema.TaggedError<TaskFailed>()("TaskFailed", {
  taskId: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `task ${this.taskId} failed in the worker: ${this.reason}`
  }
}

/**
 * What ends an endpoint: every call after it fails with it.
 *
 * @since 0.1.0
 * @category models
 */
export type EndError = AgentClosed | PeerGone

/**
 * An inbound value that could not be decoded.
 *
 * @since 0.1.0
 * @category models
 */
export type DecodeFailure = MalformedMessage | UnknownMessage

/**
 * The tags of retryable errors: the same call (or the same task on a new
 * worker) may succeed.
 *
 * @since 0.1.0
 * @category classification
 */
export const retryableTags: ReadonlySet<string> = new Set(["TaskTimeout", "DeliveryFailed"])

/**
 * The tags of errors that end the endpoint: a new worker and pipe are needed.
 *
 * @since 0.1.0
 * @category classification
 */
export const endTags: ReadonlySet<string> = new Set(["AgentClosed", "PeerGone", "PipeClosed"])

/**
 * Whether an error (of any type) is a tagged error whose tag is retryable.
 *
 * @since 0.1.0
 * @category classification
 */
export const isRetryable = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" && retryableTags.has(error._tag)

/**
 * Whether an error (of any type) ends the endpoint.
 *
 * @since 0.1.0
 * @category classification
 */
export const isEnd = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && typeof error._tag === "string" && endTags.has(error._tag)
