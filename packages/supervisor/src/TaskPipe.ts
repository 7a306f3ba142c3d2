/**
 * A bidirectional message pipe between a site and the worker that runs its
 * tasks: the transport under `TaskAgent` and `TaskExchanger`, as one
 * service with interchangeable ends.
 *
 * - `worker_threads`: the parent's end is {@link spawnWorker} (a `Worker`
 *   owned by the caller's Scope, terminated when it closes); the worker's
 *   end is {@link layerParentPort}. Any `MessagePort` works with
 *   {@link fromMessagePort}. Payloads can be transferred, not copied.
 * - A child process's IPC channel: the parent's end is {@link forkChild},
 *   the child's end {@link layerProcessChannel} (`process.send` and
 *   `'message'`). `effect/process` (Effect 4.1) spawns children with stdio
 *   and extra file descriptors but no IPC channel, so the parent's end wraps
 *   `node:child_process`'s `fork` in `Effect.acquireRelease`, in
 *   `"advanced"` serialization so a `Uint8Array` arrives as one.
 * - In memory: {@link makeMemoryPair}, both ends in one process, with
 *   fault injection (drop the next N messages, delay, close) for TestClock
 *   tests.
 *
 * A pipe carries structured-clone values and knows nothing of the protocol:
 * its ends decode what they receive as untrusted (`TaskProtocol.decode`).
 * `messages` has one reader (the end's inbound loop) and ends when the pipe
 * closes, after the values already received.
 *
 * @since 0.1.0
 */
import { type ChildProcess, type ForkOptions, fork } from "node:child_process"
import { type MessagePort, parentPort, Worker, type WorkerOptions } from "node:worker_threads"
import { Context, Deferred, Duration, Effect, Layer, type Scope, type Stream } from "effect"
import { PipeClosed } from "./AgentError.ts"
import { type Inbox, makeInbox, undeserializable } from "./internal/taskInbox.ts"

/**
 * One end of a pipe:
 *
 * - `send(message, transfer?)`: posts one value; `transfer` lists
 *   `ArrayBuffer`s to move rather than copy (ignored where `transfers` is
 *   false). Fails with `PipeClosed` once the pipe is closed.
 * - `messages`: the values the other end sent, in order; ends when the pipe
 *   closes.
 * - `closed`: waits until the pipe closes and returns why.
 * - `transfers`: whether `transfer` moves buffers (a `MessagePort` does; an
 *   IPC channel copies).
 *
 * @since 0.1.0
 * @category services
 */
export class TaskPipe extends Context.Service<
  TaskPipe,
  {
    readonly send: (message: unknown, transfer?: ReadonlyArray<ArrayBuffer>) => Effect.Effect<void, PipeClosed>
    readonly messages: Stream.Stream<unknown>
    readonly closed: Effect.Effect<PipeClosed>
    readonly transfers: boolean
  }
>()("@fedguard/supervisor/TaskPipe") {}

const closedOr = (inbox: Inbox, send: Effect.Effect<void, PipeClosed>): Effect.Effect<void, PipeClosed> =>
  Effect.suspend(() => {
    const closed = inbox.closedError()
    return closed === undefined ? send : Effect.fail(closed)
  })

const portSend =
  (inbox: Inbox, post: (message: unknown, transfer: ReadonlyArray<ArrayBuffer>) => void) =>
  (message: unknown, transfer: ReadonlyArray<ArrayBuffer> = []): Effect.Effect<void, PipeClosed> =>
    closedOr(
      inbox,
      // A value that cannot be cloned is a bug of the caller, not a closed pipe: a defect.
      Effect.sync(() => post(message, transfer)),
    )

/**
 * A pipe over a `MessagePort` (one end of a `MessageChannel`, or a worker's
 * `parentPort`). The port's `'close'` closes the pipe. When the Scope
 * closes, the listeners are removed and, with `closePort` (default true),
 * the port is closed.
 *
 * @since 0.1.0
 * @category constructors
 */
export const fromMessagePort = (
  port: MessagePort,
  options: { readonly closePort?: boolean | undefined } = {},
): Effect.Effect<TaskPipe["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const inbox = yield* makeInbox
    const onMessage = (value: unknown) => inbox.receive(value)
    const onMessageError = (error: unknown) => inbox.receive(undeserializable(error))
    const onClose = () => inbox.end("the message port closed")
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        port.on("message", onMessage)
        port.on("messageerror", onMessageError)
        port.on("close", onClose)
      }),
      () =>
        Effect.sync(() => {
          port.off("message", onMessage)
          port.off("messageerror", onMessageError)
          port.off("close", onClose)
          inbox.end("the pipe's scope closed")
          if (options.closePort !== false) port.close()
        }),
    )
    return TaskPipe.of({
      send: portSend(inbox, (message, transfer) => port.postMessage(message, transfer)),
      messages: inbox.messages,
      closed: inbox.closed,
      transfers: true,
    })
  })

/**
 * The worker's end inside a `worker_threads` worker: its `parentPort`.
 * Fails with `PipeClosed` outside a worker. Releasing it removes the
 * listeners (the worker can then exit) without closing the port.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerParentPort: Layer.Layer<TaskPipe, PipeClosed> = Layer.effect(
  TaskPipe,
  Effect.suspend(() =>
    parentPort === null
      ? Effect.fail(new PipeClosed({ reason: "not in a worker thread: there is no parentPort" }))
      : fromMessagePort(parentPort, { closePort: false }),
  ),
)

/**
 * Starts a `worker_threads` worker from `filename` (a path or a `file:`
 * URL; a `.ts` file runs with Node's type stripping) and returns the
 * parent's end of its pipe. The worker lives as long as the caller's
 * Scope: closing it terminates the worker (even one stuck in a synchronous
 * loop). The pipe closes when the worker exits or throws, with the exit
 * code or the error in the reason.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { TaskExchanger, TaskPipe } from "@fedguard/supervisor"
 *
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const pipe = yield* TaskPipe.spawnWorker(new URL("./trainer.js", import.meta.url))
 *   const exchanger = yield* TaskExchanger.make(pipe)
 *   return yield* exchanger.run({ name: "train", data: new Uint8Array(16) })
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const spawnWorker = (
  filename: string | URL,
  options: WorkerOptions = {},
): Effect.Effect<TaskPipe["Service"], never, Scope.Scope> =>
  Effect.gen(function* () {
    const inbox = yield* makeInbox
    const worker = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const worker = new Worker(filename, options)
        worker.on("message", (value: unknown) => inbox.receive(value))
        worker.on("messageerror", (error: unknown) => inbox.receive(undeserializable(error)))
        worker.on("error", (error: Error) => inbox.end(`the worker threw: ${error.message}`))
        worker.on("exit", (code: number) => inbox.end(`the worker exited with code ${code}`))
        return worker
      }),
      (worker) =>
        Effect.promise(() => worker.terminate()).pipe(
          Effect.andThen(Effect.sync(() => inbox.end("the pipe's scope closed"))),
        ),
    )
    return TaskPipe.of({
      send: portSend(inbox, (message, transfer) => worker.postMessage(message, transfer)),
      messages: inbox.messages,
      closed: inbox.closed,
      transfers: true,
    })
  })

const ipcSend =
  (inbox: Inbox, send: (message: unknown, callback: (error: Error | null) => void) => void) =>
  (message: unknown): Effect.Effect<void, PipeClosed> =>
    closedOr(
      inbox,
      Effect.callback<void, PipeClosed>((resume) => {
        send(message, (error) =>
          resume(error === null ? Effect.void : Effect.fail(new PipeClosed({ reason: error.message }))),
        )
      }),
    )

/**
 * The child's end inside a process started with an IPC channel (`fork`, or
 * {@link forkChild}): `process.send` and `process.on("message")`. Fails
 * with `PipeClosed` when the process has no IPC channel. The pipe closes on
 * `'disconnect'` (the parent closed the channel or died). Releasing it
 * removes the listeners, so the child can exit.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerProcessChannel: Layer.Layer<TaskPipe, PipeClosed> = Layer.effect(
  TaskPipe,
  Effect.gen(function* () {
    const send = process.send?.bind(process)
    if (send === undefined) {
      return yield* new PipeClosed({ reason: "this process has no IPC channel (start it with fork)" })
    }
    const inbox = yield* makeInbox
    const onMessage = (value: unknown) => inbox.receive(value)
    const onDisconnect = () => inbox.end("the IPC channel disconnected")
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        process.on("message", onMessage)
        process.on("disconnect", onDisconnect)
      }),
      () =>
        Effect.sync(() => {
          process.off("message", onMessage)
          process.off("disconnect", onDisconnect)
          inbox.end("the pipe's scope closed")
        }),
    )
    return TaskPipe.of({
      send: ipcSend(inbox, (message, callback) => void send(message as never, undefined, {}, callback)),
      messages: inbox.messages,
      closed: inbox.closed,
      transfers: false,
    })
  }),
)

/**
 * Options of {@link forkChild}: Node's `ForkOptions` (`serialization` is
 * always `"advanced"`; `stdio` defaults to inheriting stdout and stderr)
 * and `killGrace` (default 2 s): on release the child gets `SIGTERM`, then
 * `SIGKILL` if it has not exited within the grace.
 *
 * @since 0.1.0
 * @category models
 */
export interface ForkChildOptions extends Omit<ForkOptions, "serialization"> {
  readonly killGrace?: Duration.Input | undefined
}

/**
 * The parent's end of a child's pipe, with the child's `pid` (`undefined`
 * when it failed to start) for health checks and signals, and `exit`, which
 * waits for the child to end and returns how.
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildPipe extends Context.Service.Shape<typeof TaskPipe> {
  readonly pid: number | undefined
  readonly exit: Effect.Effect<ChildExit>
}

/**
 * How a child process ended: its exit `code`, or the `signal` that killed
 * it (the other is `null`).
 *
 * @since 0.1.0
 * @category models
 */
export interface ChildExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

const awaitExit = (child: ChildProcess): Effect.Effect<void> =>
  Effect.callback<void>((resume) => {
    if (exited(child)) return resume(Effect.void)
    const onExit = () => resume(Effect.void)
    child.once("exit", onExit)
    return Effect.sync(() => child.off("exit", onExit))
  })

/**
 * Starts `modulePath` as a Node child process with an IPC channel
 * (`node:child_process` `fork`, `"advanced"` serialization) and returns the
 * parent's end of its pipe. The child lives as long as the caller's Scope:
 * on release it gets `SIGTERM`, then `SIGKILL` after `killGrace`. The pipe
 * closes when the child exits (the code or signal in the reason), fails to
 * start, or disconnects.
 *
 * @since 0.1.0
 * @category constructors
 */
export const forkChild = (
  modulePath: string | URL,
  args: ReadonlyArray<string> = [],
  options: ForkChildOptions = {},
): Effect.Effect<ChildPipe, never, Scope.Scope> =>
  Effect.gen(function* () {
    const inbox = yield* makeInbox
    const { killGrace, ...forkOptions } = options
    const grace = Duration.fromInputUnsafe(killGrace ?? "2 seconds")
    const exit = Deferred.makeUnsafe<ChildExit>()
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = fork(modulePath, [...args], {
          stdio: ["ignore", "inherit", "inherit", "ipc"],
          ...forkOptions,
          serialization: "advanced",
        })
        child.on("message", (value: unknown) => inbox.receive(value))
        child.on("error", (error: Error) => inbox.end(`the child process failed: ${error.message}`))
        child.on("disconnect", () => inbox.end("the IPC channel disconnected"))
        child.on("exit", (code, signal) => {
          Deferred.doneUnsafe(exit, Effect.succeed({ code, signal }))
          inbox.end(signal === null ? `the child exited with code ${code}` : `the child was killed by ${signal}`)
        })
        return child
      }),
      (child) =>
        Effect.gen(function* () {
          if (!exited(child)) {
            child.kill("SIGTERM")
            const gone = yield* awaitExit(child).pipe(Effect.timeoutOption(grace))
            if (gone._tag === "None") {
              child.kill("SIGKILL")
              yield* awaitExit(child)
            }
          }
          inbox.end("the pipe's scope closed")
        }),
    )
    return {
      ...TaskPipe.of({
        send: ipcSend(inbox, (message, callback) => {
          if (child.connected) child.send(message as never, callback)
          else callback(new Error("the IPC channel is not connected"))
        }),
        messages: inbox.messages,
        closed: inbox.closed,
        transfers: false,
      }),
      pid: child.pid,
      exit: Deferred.await(exit),
    }
  })

/**
 * The two ends of an in-memory pair: what `site` sends arrives at `worker`
 * and the other way. Values are copied by `structuredClone` (transferred
 * buffers are detached at the sender), as a real port would.
 *
 * @since 0.1.0
 * @category models
 */
export type End = "site" | "worker"

/**
 * Fault injection on an in-memory pair, by the end that sends:
 *
 * - `dropNext(from, count, match?)`: the next `count` values `from` sends
 *   (only those `match` accepts, when given) are lost.
 * - `delay(from, duration)`: values `from` sends arrive `duration` later
 *   (on the `Clock`), in order; `0` turns it off.
 * - `close(reason?)`: both ends close, as when a worker exits.
 * - `dropped(from)`: how many values from that end were lost so far.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryFaults {
  readonly dropNext: (from: End, count: number, match?: (message: unknown) => boolean) => Effect.Effect<void>
  readonly delay: (from: End, duration: Duration.Input) => Effect.Effect<void>
  readonly close: (reason?: string) => Effect.Effect<void>
  readonly dropped: (from: End) => Effect.Effect<number>
}

/**
 * An in-memory pair of ends and its faults.
 *
 * @since 0.1.0
 * @category models
 */
export interface MemoryPair {
  readonly site: TaskPipe["Service"]
  readonly worker: TaskPipe["Service"]
  readonly faults: MemoryFaults
}

interface Direction {
  drops: Array<(message: unknown) => boolean>
  delayMs: number
  dropped: number
}

/**
 * Makes a connected in-memory pair for tests: `site` and `worker` ends,
 * lossless and in order unless `faults` says otherwise. Delayed deliveries
 * are fibers of the caller's Scope, timed by the `Clock` (`TestClock`).
 *
 * @since 0.1.0
 * @category constructors
 */
export const makeMemoryPair: Effect.Effect<MemoryPair, never, Scope.Scope> = Effect.gen(function* () {
  const scope = yield* Effect.scope
  const inboxes = { site: yield* makeInbox, worker: yield* makeInbox }
  const directions: Record<End, Direction> = {
    site: { drops: [], delayMs: 0, dropped: 0 },
    worker: { drops: [], delayMs: 0, dropped: 0 },
  }
  const closeBoth = (reason: string) => {
    inboxes.site.end(reason)
    inboxes.worker.end(reason)
  }
  yield* Effect.addFinalizer(() => Effect.sync(() => closeBoth("the pair's scope closed")))

  const sendFrom =
    (from: End) =>
    (message: unknown, transfer: ReadonlyArray<ArrayBuffer> = []): Effect.Effect<void, PipeClosed> =>
      closedOr(
        inboxes[from],
        Effect.suspend(() => {
          const to = inboxes[from === "site" ? "worker" : "site"]
          const direction = directions[from]
          const copy = structuredClone(message, { transfer: [...transfer] })
          const drop = direction.drops.findIndex((match) => match(message))
          if (drop >= 0) {
            direction.drops.splice(drop, 1)
            direction.dropped++
            return Effect.void
          }
          if (direction.delayMs === 0) return Effect.sync(() => to.receive(copy))
          return Effect.sleep(direction.delayMs).pipe(
            Effect.andThen(Effect.sync(() => to.receive(copy))),
            Effect.forkIn(scope),
            Effect.asVoid,
          )
        }),
      )

  const end = (from: End): TaskPipe["Service"] =>
    TaskPipe.of({
      send: sendFrom(from),
      messages: inboxes[from].messages,
      closed: inboxes[from].closed,
      transfers: true,
    })

  const faults: MemoryFaults = {
    dropNext: (from, count, match = () => true) =>
      Effect.sync(() => {
        for (let i = 0; i < count; i++) directions[from].drops.push(match)
      }),
    delay: (from, duration) =>
      Effect.sync(() => {
        directions[from].delayMs = Duration.toMillis(Duration.fromInputUnsafe(duration))
      }),
    close: (reason = "closed by the test") => Effect.sync(() => closeBoth(reason)),
    dropped: (from) => Effect.sync(() => directions[from].dropped),
  }
  return { site: end("site"), worker: end("worker"), faults }
})

/**
 * An in-memory pair as a service, so Layers can hand each end to the code
 * under test ({@link layerMemory}) while the test drives `faults`.
 *
 * @since 0.1.0
 * @category services
 */
export class MemoryPipePair extends Context.Service<MemoryPipePair, MemoryPair>()(
  "@fedguard/supervisor/TaskPipe/MemoryPipePair",
) {}

/**
 * A fresh in-memory pair for the Layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemoryPair: Layer.Layer<MemoryPipePair> = Layer.effect(MemoryPipePair, makeMemoryPair)

/**
 * One end of the {@link MemoryPipePair} in context as the `TaskPipe`.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerMemory = (end: End): Layer.Layer<TaskPipe, never, MemoryPipePair> =>
  Layer.effect(
    TaskPipe,
    Effect.map(MemoryPipePair, (pair) => pair[end]),
  )
