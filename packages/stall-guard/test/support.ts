import { assert } from "@effect/vitest"
import { type Connection, InMemoryTransport } from "@fedguard/transport"
import { Effect, Exit, type Fiber, Option, type Scope, Stream } from "effect"

/** Lets forked fibers run until they suspend on something other than a yield, without moving the clock. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

/** Whether a fiber is still running (after letting other fibers run). */
export const isRunning = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  settle.pipe(Effect.map(() => fiber.pollUnsafe() === undefined))

/** The exit of a fiber that must have ended by now. */
export const ended = <A, E>(fiber: Fiber.Fiber<A, E>) =>
  settle.pipe(
    Effect.map(() => {
      const exit = fiber.pollUnsafe()
      if (exit === undefined) return assert.fail("the fiber is still running")
      return exit
    }),
  )

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

/** Records every element of a subscribed event stream into an array. */
export const record = <A>(
  subscribe: Effect.Effect<Stream.Stream<A>, never, Scope.Scope>,
): Effect.Effect<Array<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seen: Array<A> = []
    const stream = yield* subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
    return seen
  })

/** The tags of recorded events, in order. */
export const tags = (events: ReadonlyArray<{ readonly _tag: string }>): Array<string> =>
  events.map((event) => event._tag)

/** Deterministic, non-constant bytes. */
export const payload = (size: number): Uint8Array => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7) & 0xff
  return out
}

/** Small sizes so that windows fill after a handful of chunks. */
export const small: Connection.Options = { chunkBytes: 1024, windowBytes: 4096, maxBufferedBytes: 4096 }

/** A client connected to a server endpoint of the in-memory network in context. */
export const connectPair = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const listener = yield* network.endpoint("server", small).listen("server")
  const client = yield* network.endpoint("client", small).connect("server")
  const server = Option.getOrThrow(yield* Stream.runHead(listener.connections))
  return { network, client, server }
})

/** The next incoming byte stream of a connection. */
export const nextTransfer = (connection: Connection.Connection) =>
  Stream.runHead(connection.inbound).pipe(
    Effect.map((head) => {
      const item = Option.getOrThrow(head)
      if (item._tag !== "Transfer") throw new Error(`expected a transfer, got ${item._tag}`)
      return item.transfer
    }),
  )
