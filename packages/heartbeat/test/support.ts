import { PeerId } from "@fedguard/transport"
import { Effect, type Scope, Stream } from "effect"
import type { Heartbeat } from "../src/Heartbeat.ts"

export const id = (name: string): PeerId.PeerId => PeerId.make(name)

export const beatFrom = (from: PeerId.PeerId, seq = 1): Heartbeat => ({ from, seq })

/** Lets forked consumers run up to the current instant. */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 5; i++) yield* Effect.yieldNow
})

/**
 * Records every element of a subscribed event stream into an array (read it
 * after `settle` or after `TestClock.adjust`).
 */
export const record = <A>(
  subscribe: Effect.Effect<Stream.Stream<A>, never, Scope.Scope>,
): Effect.Effect<Array<A>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seen: Array<A> = []
    const stream = yield* subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
    return seen
  })

/** The tags of the recorded events, in order. */
export const tags = (events: ReadonlyArray<{ readonly _tag: string }>): Array<string> =>
  events.map((event) => event._tag)
