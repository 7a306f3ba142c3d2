/**
 * Shared helpers for the transport tests: connection pairs on the in-memory
 * network, payloads, and guards that turn a hang into a failing assertion.
 */
import { assert } from "@effect/vitest"
import { type Cause, Duration, Effect, Exit, Fiber, Option, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as Connection from "../src/Connection.ts"
import type { Frame } from "../src/Frame.ts"
import * as InMemoryTransport from "../src/InMemoryTransport.ts"
import type { TransportError } from "../src/TransportError.ts"

/** Small sizes so that windows fill after a handful of chunks. */
export const small: Connection.Options = { chunkBytes: 1024, windowBytes: 4096, maxBufferedBytes: 4096 }

/** Deterministic, non-constant bytes: a mismatch in order or offset shows up in a comparison. */
export const payload = (size: number, salt = 0): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7 + salt) & 0xff
  return out
}

/** Takes the next accepted connection of a listener. */
export const accept = (listener: { readonly connections: Stream.Stream<Connection.Connection> }) =>
  Stream.runHead(listener.connections).pipe(
    Effect.map((head) => Option.getOrThrowWith(head, () => new Error("the listener ended without a connection"))),
  )

/**
 * Connects endpoint `clientName` to a listener of endpoint `serverName` on the
 * network in context, each endpoint with its own options.
 */
export const connectPair = (
  options: {
    readonly client?: Connection.Options
    readonly server?: Connection.Options
    readonly clientName?: string
    readonly serverName?: string
  } = {},
) =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    const clientName = options.clientName ?? "client"
    const serverName = options.serverName ?? "server"
    const listener = yield* network.endpoint(serverName, options.server ?? small).listen(serverName)
    const client = yield* network.endpoint(clientName, options.client ?? small).connect(serverName)
    const server = yield* accept(listener)
    return { network, listener, client, server }
  })

/**
 * Lets forked fibers run until they suspend on something other than a yield
 * (a queue, a deferred, a sleep), without moving the clock.
 */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

/**
 * Joins a fiber, failing the test (instead of hanging it) when the fiber is
 * still running after `within` of real time. The guard uses the live clock
 * only for itself: the fiber keeps running on the TestClock, and a passing
 * test never waits.
 */
export const joinOrFail = <A, E>(fiber: Fiber.Fiber<A, E>, within: Duration.Input = "10 seconds") =>
  TestClock.withLive(
    Fiber.join(fiber).pipe(
      Effect.timeoutOrElse({
        duration: within,
        orElse: () =>
          Effect.die(new Error(`fiber still running after ${Duration.format(Duration.fromInputUnsafe(within))}`)),
      }),
    ),
  )

/** Like `joinOrFail`, but returns the fiber's exit (for fibers expected to fail). */
export const awaitOrFail = <A, E>(fiber: Fiber.Fiber<A, E>, within: Duration.Input = "10 seconds") =>
  joinOrFail(fiber, within).pipe(Effect.exit)

/** Asserts that an exit failed with a typed error of the given tag, and returns the error. */
export const failureOf = <A, E extends { readonly _tag: string }, T extends E["_tag"]>(
  exit: Exit.Exit<A, E>,
  tag: T,
): Extract<E, { readonly _tag: T }> => {
  if (Exit.isSuccess(exit)) return assert.fail(`expected a ${tag} failure, got success`)
  const error = Option.getOrUndefined(Exit.findErrorOption(exit))
  if (error === undefined) return assert.fail(`expected a ${tag} failure, got ${String(exit.cause)}`)
  assert.strictEqual(error._tag, tag, `expected ${tag}, got ${error._tag}: ${String(error)}`)
  return error as Extract<E, { readonly _tag: T }>
}

/** Whether a fiber is still running (after letting other fibers run). */
export const isRunning = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  settle.pipe(Effect.map(() => fiber.pollUnsafe() === undefined))

/** Runs an effect in a child fiber and joins it with `joinOrFail`'s guard. */
export const guarded = <A, E, R>(effect: Effect.Effect<A, E, R>, within?: Duration.Input) =>
  Effect.forkChild(effect).pipe(Effect.flatMap((fiber) => joinOrFail(fiber, within)))

/** The next item of a connection's inbound stream (guarded). */
export const nextInbound = (connection: Connection.Connection) =>
  guarded(Stream.runHead(connection.inbound)).pipe(
    Effect.map((head) => Option.getOrThrowWith(head, () => new Error("inbound ended"))),
  )

/** The next incoming byte stream of a connection (guarded). */
export const nextTransfer = (connection: Connection.Connection) =>
  nextInbound(connection).pipe(
    Effect.map((item) => {
      if (item._tag !== "Transfer") throw new Error(`expected a transfer, got ${item._tag}`)
      return item.transfer
    }),
  )

/** The next message of a connection (guarded). */
export const nextMessage = (connection: Connection.Connection) =>
  nextInbound(connection).pipe(
    Effect.map((item) => {
      if (item._tag !== "Message") throw new Error(`expected a message, got ${item._tag}`)
      return item.envelope
    }),
  )

/**
 * A link driven by the test: frames the connection writes are recorded, frames
 * "from the peer" are injected by hand, and `write` can be made to block.
 */
export const scriptedLink = Effect.gen(function* () {
  const written: Array<Frame> = []
  const incoming = yield* Queue.unbounded<Frame, TransportError | Cause.Done>()
  const link: Connection.Link = {
    remote: "scripted-peer",
    write: (frame) => Effect.sync(() => void written.push(frame)),
    read: Stream.fromQueue(incoming),
    close: Effect.void,
  }
  const inject = (frame: Frame) => Queue.offer(incoming, frame).pipe(Effect.andThen(settle))
  return { link, written, inject, incoming }
})
