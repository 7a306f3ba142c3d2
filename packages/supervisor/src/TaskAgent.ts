/**
 * The worker's end of a task pipe: what training code calls to get its
 * task and hand back the result, after NVIDIA FLARE's `FlareAgent`. Its
 * counterpart on the site is `TaskExchanger`.
 *
 * - `getTask(timeout?)`: the next task the site sent; `TaskTimeout` when
 *   none came in time (the agent stays open); `CallStateError` while the
 *   previous task has no result yet, as in FLARE.
 * - `submitResult(taskId, bytes)` / `failTask(taskId, reason)`: exactly one
 *   per task, whether or not it gets through (FLARE: "the call can only be
 *   made a single time regardless whether the submission is successful");
 *   a second one is a `CallStateError`. A result larger than `chunkBytes`
 *   travels in acknowledged chunks, so the site waits on progress, not on
 *   one deadline.
 * - Under them, the pipe protocol: heartbeats both ways every
 *   `heartbeatInterval`; `PeerGone` after `peerTimeout` without a message
 *   from the site, or at once when the pipe closes; each task, result and
 *   chunk resent every `resendInterval` until acknowledged, at most
 *   `maxResends` times, then `DeliveryFailed`; duplicates from resends
 *   acknowledged again and dropped by message id; undecodable messages
 *   rejected with a typed error naming the field, never a crash.
 * - After `close` (or the end of the agent's Scope, or the site's `Close`)
 *   every call fails with `AgentClosed`; after the peer is gone, with
 *   `PeerGone`.
 *
 * The agent's fibers (inbound loop, heartbeats, peer watchdog) live in the
 * Scope it is made in. Because a worker thread has its own event loop, a
 * training step that blocks it silences the agent's heartbeats only for the
 * site's view of that worker, never the site's own heartbeats to its server.
 *
 * @since 0.1.0
 */
import { Context, Duration, Effect, Layer, Queue, type Schema, type Scope, type Stream } from "effect"
import {
  type AgentClosed,
  CallStateError,
  type DeliveryFailed,
  type EndError,
  MalformedMessage,
  type PeerGone,
  TaskTimeout,
} from "./AgentError.ts"
import { ownBytes, transferList } from "./internal/taskBytes.ts"
import * as TaskEndpoint from "./internal/taskEndpoint.ts"
import * as TaskAgentConfig from "./TaskAgentConfig.ts"
import type { TaskAgentEvent } from "./TaskAgentEvent.ts"
import { TaskPipe } from "./TaskPipe.ts"
import type * as TaskProtocol from "./TaskProtocol.ts"

/**
 * A task as the worker receives it: `taskId` (quote it in `submitResult`),
 * `name` (what to do), `data` (its input bytes: a round's model and
 * settings) and `meta` (optional JSON settings).
 *
 * @since 0.1.0
 * @category models
 */
export interface Task {
  readonly taskId: string
  readonly name: string
  readonly data: Uint8Array
  readonly meta: Schema.Json | undefined
}

/**
 * Options of `submitResult`: with `transfer: true` the result's buffer is
 * moved to the site instead of copied when the pipe can (a `MessagePort`)
 * and the result fits one message; the caller's `Uint8Array` is then
 * detached (length 0).
 *
 * @since 0.1.0
 * @category models
 */
export interface SubmitOptions {
  readonly transfer?: boolean | undefined
}

/**
 * The worker's agent. See the module documentation for the rules.
 *
 * - `getTask(timeout?)`: waits for the next task (forever without
 *   `timeout`).
 * - `submitResult(taskId, result, options?)`: sends the one result of the
 *   current task; succeeds once the site acknowledged every part.
 * - `failTask(taskId, reason)`: reports instead that the task could not be
 *   done (the site's `run` fails with `TaskFailed`).
 * - `close(reason?)`: closes the agent and tells the site.
 * - `ended`: waits until the agent ends and fails with why (`AgentClosed`
 *   or `PeerGone`).
 * - `events` / `subscribe`: `TaskAgentEvent`s, `side: "agent"`.
 *
 * @since 0.1.0
 * @category services
 */
export class TaskAgent extends Context.Service<
  TaskAgent,
  {
    readonly getTask: (timeout?: Duration.Input) => Effect.Effect<Task, TaskTimeout | CallStateError | EndError>
    readonly submitResult: (
      taskId: string,
      result: Uint8Array,
      options?: SubmitOptions,
    ) => Effect.Effect<void, CallStateError | DeliveryFailed | EndError>
    readonly failTask: (
      taskId: string,
      reason: string,
    ) => Effect.Effect<void, CallStateError | DeliveryFailed | EndError>
    readonly close: (reason?: string) => Effect.Effect<void>
    readonly ended: Effect.Effect<never, AgentClosed | PeerGone>
    readonly events: Stream.Stream<TaskAgentEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<TaskAgentEvent>, never, Scope.Scope>
  }
>()("@fedguard/supervisor/TaskAgent") {}

// Task ids whose result went out, kept to answer a second submit with CallStateError.
const submittedCapacity = 1024

/**
 * Starts an agent on `pipe` in the current Scope with `options` (any subset
 * of `TaskAgentConfig`, defaults from FlareAgent: 5 s heartbeats, 30 s peer
 * timeout, resends every 2 s at most 3 times). Fails with a
 * `Schema.SchemaError` naming a wrong option. When the Scope closes, the
 * agent closes and tells the site.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TaskAgent, TaskPipe } from "@fedguard/supervisor"
 *
 * // Inside a worker thread: serve tasks until the site closes.
 * const serve = Effect.gen(function* () {
 *   const pipe = yield* TaskPipe.TaskPipe
 *   const agent = yield* TaskAgent.make(pipe)
 *   while (true) {
 *     const task = yield* agent.getTask()
 *     yield* agent.submitResult(task.taskId, task.data.map((b) => b * 2))
 *   }
 * }).pipe(Effect.scoped, Effect.provide(TaskPipe.layerParentPort))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  pipe: TaskPipe["Service"],
  options: TaskAgentConfig.Input = {},
): Effect.fn.Return<TaskAgent["Service"], Schema.SchemaError, Scope.Scope> {
  const config = yield* TaskAgentConfig.decode(options)
  const offers = yield* Queue.unbounded<TaskProtocol.TaskOffer>()
  let current: string | undefined
  let waiting = false
  const submitted = new Set<string>()

  const endpoint = yield* TaskEndpoint.make({
    side: "agent",
    pipe,
    config,
    deliver: (message) =>
      message._tag === "TaskOffer"
        ? Effect.sync(() => void Queue.offerUnsafe(offers, message))
        : Effect.fail(
            new MalformedMessage({ tag: message._tag, reason: "a worker's agent accepts tasks, not results" }),
          ),
    onEnd: () => Effect.void,
  })

  const getTask = Effect.fn("TaskAgent.getTask")(function* (
    timeout?: Duration.Input,
  ): Effect.fn.Return<Task, TaskTimeout | CallStateError | EndError> {
    yield* endpoint.ensureOpen
    if (current !== undefined) {
      return yield* new CallStateError({
        call: "getTask",
        taskId: current,
        reason: "the current task has no result yet: call submitResult or failTask first",
      })
    }
    if (waiting) return yield* new CallStateError({ call: "getTask", reason: "another getTask is already waiting" })
    waiting = true
    const next = Effect.raceFirst(Queue.take(offers), endpoint.awaitEnd)
    const offer = yield* (
      timeout === undefined
        ? next
        : next.pipe(
            Effect.timeoutOrElse({
              duration: timeout,
              orElse: () => Effect.fail(new TaskTimeout({ waitedMs: Duration.toMillis(timeout) })),
            }),
          )
    ).pipe(Effect.ensuring(Effect.sync(() => (waiting = false))))
    current = offer.taskId
    return { taskId: offer.taskId, name: offer.name, data: offer.data, meta: offer.meta }
  })

  // The one submission of a task: checked and recorded before anything is sent.
  const claim = (call: string, taskId: string): Effect.Effect<void, CallStateError | EndError> =>
    Effect.andThen(
      endpoint.ensureOpen,
      Effect.suspend(() => {
        if (submitted.has(taskId)) {
          return Effect.fail(new CallStateError({ call, taskId, reason: "this task's result was already submitted" }))
        }
        if (current !== taskId) {
          return Effect.fail(
            new CallStateError({
              call,
              taskId,
              reason: current === undefined ? "there is no current task" : `the current task is ${current}`,
            }),
          )
        }
        current = undefined
        submitted.add(taskId)
        if (submitted.size > submittedCapacity) submitted.delete(submitted.values().next().value as string)
        return Effect.void
      }),
    )

  const submitResult = Effect.fn("TaskAgent.submitResult")(function* (
    taskId: string,
    result: Uint8Array,
    submitOptions: SubmitOptions = {},
  ): Effect.fn.Return<void, CallStateError | DeliveryFailed | EndError> {
    yield* claim("submitResult", taskId)
    const totalBytes = result.byteLength
    if (totalBytes <= config.chunkBytes) {
      const data = ownBytes(result)
      return yield* endpoint.sendPayload(
        { _tag: "TaskResult", taskId, outcome: "ok", totalBytes, data },
        submitOptions.transfer === true ? transferList(data) : [],
      )
    }
    // Chunks are copies of their part (`slice`: a view would carry its whole buffer), and they are
    // not transferred: a resend must be able to carry the bytes again if a copy is lost.
    yield* endpoint.sendPayload({
      _tag: "TaskResult",
      taskId,
      outcome: "ok",
      totalBytes,
      data: result.slice(0, config.chunkBytes),
    })
    for (let offset = config.chunkBytes; offset < totalBytes; offset += config.chunkBytes) {
      const data = result.slice(offset, offset + config.chunkBytes)
      yield* endpoint.sendPayload({ _tag: "ResultChunk", taskId, offset, data })
    }
  })

  const failTask = Effect.fn("TaskAgent.failTask")(function* (
    taskId: string,
    reason: string,
  ): Effect.fn.Return<void, CallStateError | DeliveryFailed | EndError> {
    yield* claim("failTask", taskId)
    yield* endpoint.sendPayload({
      _tag: "TaskResult",
      taskId,
      outcome: "failed",
      totalBytes: 0,
      data: new Uint8Array(0),
      error: reason.slice(0, 4096),
    })
  })

  return TaskAgent.of({
    getTask,
    submitResult,
    failTask,
    close: (reason = "closed by the worker") => endpoint.close(reason),
    ended: endpoint.awaitEnd,
    events: endpoint.events,
    subscribe: endpoint.subscribe,
  })
})

/**
 * The agent as a Layer over the `TaskPipe` in context, e.g.
 * `TaskAgent.layer().pipe(Layer.provide(TaskPipe.layerParentPort))` in a
 * worker thread.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TaskAgentConfig.Input = {}): Layer.Layer<TaskAgent, Schema.SchemaError, TaskPipe> =>
  Layer.effect(
    TaskAgent,
    Effect.flatMap(TaskPipe, (pipe) => make(pipe, options)),
  )
