/**
 * The site's end of a task pipe: sends a task to the worker that runs it and
 * waits for its one result, with heartbeats flowing both ways. The
 * counterpart of the worker's `TaskAgent`.
 *
 * The name is NVIDIA FLARE's for this role: its `TaskExchanger` is the
 * executor on the client job's side of the `FlareAgent` pipe, which hands
 * tasks to the external training process and takes their results back.
 * It exchanges (one task out, one result in) rather than dispatching among
 * many workers: choosing a worker is the supervisor's job.
 *
 * `run(task)`:
 *
 * - sends a `TaskOffer` (resent every `resendInterval` until acknowledged,
 *   at most `maxResends` times, then `DeliveryFailed`); with `transfer: true`
 *   the task's buffer is moved to a worker thread instead of copied;
 * - waits for the result, for as long as the worker keeps answering
 *   heartbeats: the training time is not bounded here, the worker's
 *   liveness is (`PeerGone` after `peerTimeout` of silence, or at once when
 *   the worker exits);
 * - a result in chunks is received under `@fedguard/stall-guard`'s
 *   `TransferTracker`: it fails with `TransferIdle` when no chunk comes for
 *   `resultIdleTimeout`, not after a fixed deadline for the whole result,
 *   and with `TransferTooLarge` beyond `maxResultBytes`;
 * - succeeds with the result's bytes, delivered exactly once even when an
 *   ack was lost and the worker resent them; fails with `TaskFailed` when
 *   the worker called `failTask`.
 *
 * @since 0.1.0
 */
import { TransferTracker } from "@fedguard/stall-guard"
import { type Cause, Context, Deferred, Effect, Layer, Queue, type Schema, type Scope, Stream } from "effect"
import {
  type AgentClosed,
  CallStateError,
  type DeliveryFailed,
  type EndError,
  MalformedMessage,
  type PeerGone,
  TaskFailed,
} from "./AgentError.ts"
import { ownBytes, transferList } from "./internal/taskBytes.ts"
import * as TaskEndpoint from "./internal/taskEndpoint.ts"
import * as TaskAgentConfig from "./TaskAgentConfig.ts"
import type { TaskAgentEvent } from "./TaskAgentEvent.ts"
import { TaskPipe } from "./TaskPipe.ts"
import type * as TaskProtocol from "./TaskProtocol.ts"

/**
 * A task to run: `name` (what to do, at most 256 characters), `data` (its
 * input: a round's model and settings as bytes), optional `meta` (JSON
 * settings) and `taskId` (at most 256 characters; default `task-<n>`,
 * numbered per exchanger).
 *
 * @since 0.1.0
 * @category models
 */
export interface TaskInput {
  readonly name: string
  readonly data: Uint8Array
  readonly meta?: Schema.Json | undefined
  readonly taskId?: string | undefined
}

/**
 * Options of `run`: with `transfer: true` the task's buffer is moved to the
 * worker instead of copied when the pipe can (a `MessagePort`); the
 * caller's `Uint8Array` is then detached (length 0).
 *
 * @since 0.1.0
 * @category models
 */
export interface RunOptions {
  readonly transfer?: boolean | undefined
}

/**
 * Why `run` failed: the worker reported failure (`TaskFailed`), the task id
 * is in use or invalid (`CallStateError`), the offer was never acknowledged
 * (`DeliveryFailed`), the end closed or the worker went away
 * (`AgentClosed`, `PeerGone`), or a chunked result stalled or grew too
 * large (`TransferIdle`, `TransferDidNotStart`, `TransferTooLarge`).
 *
 * @since 0.1.0
 * @category models
 */
export type RunError =
  | TaskFailed
  | CallStateError
  | DeliveryFailed
  | EndError
  | TransferTracker.TransferIdle
  | TransferTracker.TransferDidNotStart
  | TransferTracker.TransferTooLarge

/**
 * The site's exchanger. See the module documentation for the rules.
 *
 * - `run(task, options?)`: sends the task, returns its result.
 * - `close(reason?)`: closes this end and tells the worker (whose
 *   `getTask` then fails with `AgentClosed`).
 * - `ended`: waits until this end ends and fails with why.
 * - `events` / `subscribe`: `TaskAgentEvent`s, `side: "exchanger"`.
 *
 * @since 0.1.0
 * @category services
 */
export class TaskExchanger extends Context.Service<
  TaskExchanger,
  {
    readonly run: (task: TaskInput, options?: RunOptions) => Effect.Effect<Uint8Array, RunError>
    readonly close: (reason?: string) => Effect.Effect<void>
    readonly ended: Effect.Effect<never, AgentClosed | PeerGone>
    readonly events: Stream.Stream<TaskAgentEvent>
    readonly subscribe: Effect.Effect<Stream.Stream<TaskAgentEvent>, never, Scope.Scope>
  }
>()("@fedguard/supervisor/TaskExchanger") {}

// What the exchanger knows of one running task's result.
interface Slot {
  readonly header: Deferred.Deferred<TaskProtocol.TaskResult, EndError>
  readonly chunks: Queue.Queue<Uint8Array, Cause.Done>
  total: number | undefined
  received: number
}

/**
 * Starts an exchanger on `pipe` in the current Scope with `options` (any
 * subset of `TaskAgentConfig`; both ends should use the same heartbeat
 * interval and peer timeout). Fails with a `Schema.SchemaError` naming a
 * wrong option. When the Scope closes, the exchanger closes and tells the
 * worker.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  pipe: TaskPipe["Service"],
  options: TaskAgentConfig.Input = {},
): Effect.fn.Return<TaskExchanger["Service"], Schema.SchemaError, Scope.Scope> {
  const config = yield* TaskAgentConfig.decode(options)
  const slots = new Map<string, Slot>()
  let taskCount = 0

  const refuse = (message: TaskProtocol.PayloadMessage, path: string, reason: string) =>
    Effect.fail(new MalformedMessage({ tag: message._tag, path, reason }))

  const acceptHeader = (slot: Slot, message: TaskProtocol.TaskResult): Effect.Effect<void, MalformedMessage> => {
    if (slot.total !== undefined) return refuse(message, "taskId", "a second result for this task")
    if (message.data.byteLength > message.totalBytes) {
      return refuse(message, "data", `${message.data.byteLength} bytes, more than totalBytes ${message.totalBytes}`)
    }
    slot.total = message.totalBytes
    slot.received = message.data.byteLength
    if (message.outcome === "ok" && message.totalBytes <= config.maxResultBytes) {
      if (message.data.byteLength > 0) Queue.offerUnsafe(slot.chunks, message.data)
      if (slot.received === slot.total) Queue.endUnsafe(slot.chunks)
    }
    Deferred.doneUnsafe(slot.header, Effect.succeed(message))
    return Effect.void
  }

  const acceptChunk = (slot: Slot, message: TaskProtocol.ResultChunk): Effect.Effect<void, MalformedMessage> => {
    if (slot.total === undefined) return refuse(message, "taskId", "a chunk before its result")
    if (message.offset !== slot.received) {
      return refuse(message, "offset", `expected offset ${slot.received}, got ${message.offset}`)
    }
    if (message.offset + message.data.byteLength > slot.total) {
      return refuse(message, "data", `the chunk ends past totalBytes ${slot.total}`)
    }
    if (slot.total > config.maxResultBytes) return Effect.void
    slot.received += message.data.byteLength
    Queue.offerUnsafe(slot.chunks, message.data)
    if (slot.received === slot.total) Queue.endUnsafe(slot.chunks)
    return Effect.void
  }

  const endpoint = yield* TaskEndpoint.make({
    side: "exchanger",
    pipe,
    config,
    deliver: (message) => {
      if (message._tag === "TaskOffer") return refuse(message, "_tag", "a site's exchanger accepts results, not tasks")
      const slot = slots.get(message.taskId)
      // A result for a task nobody waits for any more (its run was interrupted): acknowledged, dropped.
      if (slot === undefined) return Effect.logDebug(`task pipe: result for task ${message.taskId} not awaited`)
      return message._tag === "TaskResult" ? acceptHeader(slot, message) : acceptChunk(slot, message)
    },
    onEnd: (error) =>
      Effect.sync(() => {
        for (const slot of slots.values()) Deferred.doneUnsafe(slot.header, Effect.fail(error))
      }),
  })

  // The chunks after the header, copied into one buffer, under the progress-aware tracker.
  const receiveChunked = (slot: Slot, total: number) =>
    Effect.suspend(() => {
      const buffer = new Uint8Array(total)
      let at = 0
      return TransferTracker.forEach(
        Stream.fromQueue(slot.chunks),
        (chunk) =>
          Effect.sync(() => {
            buffer.set(chunk, at)
            at += chunk.byteLength
          }),
        { idleTimeout: config.resultIdleTimeout, maxBytes: config.maxResultBytes, expectedBytes: total },
      ).pipe(Effect.as(buffer))
    })

  const run = Effect.fn("TaskExchanger.run")(function* (
    task: TaskInput,
    runOptions: RunOptions = {},
  ): Effect.fn.Return<Uint8Array, RunError> {
    yield* endpoint.ensureOpen
    const taskId = task.taskId ?? `task-${++taskCount}`
    if (taskId.length === 0 || taskId.length > 256 || task.name.length > 256) {
      return yield* new CallStateError({
        call: "run",
        taskId,
        reason: "taskId must be 1 to 256 and name 0 to 256 characters",
      })
    }
    if (slots.has(taskId)) {
      return yield* new CallStateError({ call: "run", taskId, reason: "a task with this id is running" })
    }
    const slot: Slot = {
      header: Deferred.makeUnsafe(),
      chunks: yield* Queue.unbounded<Uint8Array, Cause.Done>(),
      total: undefined,
      received: 0,
    }
    slots.set(taskId, slot)
    return yield* Effect.gen(function* () {
      const data = ownBytes(task.data)
      yield* endpoint.sendPayload(
        { _tag: "TaskOffer", taskId, name: task.name, data, ...(task.meta === undefined ? {} : { meta: task.meta }) },
        runOptions.transfer === true ? transferList(data) : [],
      )
      const header = yield* Deferred.await(slot.header)
      if (header.outcome === "failed")
        return yield* new TaskFailed({ taskId, reason: header.error ?? "no reason given" })
      if (header.totalBytes > config.maxResultBytes) {
        return yield* new TransferTracker.TransferTooLarge({
          bytes: header.totalBytes,
          maxBytes: config.maxResultBytes,
        })
      }
      if (header.data.byteLength === header.totalBytes) return header.data
      return yield* Effect.raceFirst(receiveChunked(slot, header.totalBytes), endpoint.awaitEnd)
    }).pipe(Effect.ensuring(Effect.sync(() => slots.delete(taskId))))
  })

  return TaskExchanger.of({
    run,
    close: (reason = "closed by the site") => endpoint.close(reason),
    ended: endpoint.awaitEnd,
    events: endpoint.events,
    subscribe: endpoint.subscribe,
  })
})

/**
 * The exchanger as a Layer over the `TaskPipe` in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (options: TaskAgentConfig.Input = {}): Layer.Layer<TaskExchanger, Schema.SchemaError, TaskPipe> =>
  Layer.effect(
    TaskExchanger,
    Effect.flatMap(TaskPipe, (pipe) => make(pipe, options)),
  )
