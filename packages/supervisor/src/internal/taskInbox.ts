import { type Cause, Deferred, Effect, Queue, Stream } from "effect"
import { PipeClosed } from "../AgentError.ts"

/**
 * The receiving half every pipe shares: values from the runtime's callback
 * (`'message'` listener) into an unbounded queue read as a Stream, and the
 * first close reason, after which the stream ends once the values already
 * received are read.
 */
export interface Inbox {
  readonly receive: (value: unknown) => void
  readonly end: (reason: string) => void
  readonly isClosed: () => boolean
  readonly closedError: () => PipeClosed | undefined
  readonly messages: Stream.Stream<unknown>
  readonly closed: Effect.Effect<PipeClosed>
}

export const makeInbox: Effect.Effect<Inbox> = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<unknown, Cause.Done>()
  const closed = Deferred.makeUnsafe<PipeClosed>()
  let closedWith: PipeClosed | undefined
  return {
    receive: (value) => {
      if (closedWith === undefined) Queue.offerUnsafe(queue, value)
    },
    end: (reason) => {
      if (closedWith !== undefined) return
      closedWith = new PipeClosed({ reason })
      Deferred.doneUnsafe(closed, Effect.succeed(closedWith))
      Queue.endUnsafe(queue)
    },
    isClosed: () => closedWith !== undefined,
    closedError: () => closedWith,
    messages: Stream.fromQueue(queue),
    closed: Deferred.await(closed),
  }
})

/** The marker a pipe receives for a value the runtime could not deserialize: decoded as unknown. */
export const undeserializable = (error: unknown): unknown => ({
  _tag: "<undeserializable>",
  reason: error instanceof Error ? error.message : String(error),
})
