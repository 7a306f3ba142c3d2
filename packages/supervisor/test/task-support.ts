import { Effect, Exit, type Scope, Stream } from "effect"
import type { TaskAgentEvent } from "../src/TaskAgentEvent.ts"
import type { TaskPipe } from "../src/TaskPipe.ts"

/** Lets forked fibers run up to the current instant (no virtual time passes). */
export const settle = Effect.gen(function* () {
  for (let i = 0; i < 30; i++) yield* Effect.yieldNow
})

/** An end of a pipe that also records every value it sends. */
export const recordSends = (pipe: TaskPipe["Service"]) => {
  const sent: Array<{ readonly _tag: string; readonly id: number } & Record<string, unknown>> = []
  const recorded: TaskPipe["Service"] = {
    ...pipe,
    send: (message, transfer) =>
      Effect.andThen(
        Effect.sync(() => void sent.push(message as never)),
        pipe.send(message, transfer),
      ),
  }
  return { pipe: recorded, sent }
}

/** Records the events of an end (read them after `settle` or `TestClock.adjust`). */
export const record = (
  subscribe: Effect.Effect<Stream.Stream<TaskAgentEvent>, never, Scope.Scope>,
): Effect.Effect<Array<TaskAgentEvent>, never, Scope.Scope> =>
  Effect.gen(function* () {
    const seen: Array<TaskAgentEvent> = []
    const stream = yield* subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
    return seen
  })

/** The events of one tag. */
export const ofTag = <T extends TaskAgentEvent["_tag"]>(
  events: ReadonlyArray<TaskAgentEvent>,
  tag: T,
): Array<Extract<TaskAgentEvent, { readonly _tag: T }>> =>
  events.filter((event): event is Extract<TaskAgentEvent, { readonly _tag: T }> => event._tag === tag)

/** The values one end received, read in a fiber of the current Scope (the end has no other reader). */
export const collectInbound = (pipe: TaskPipe["Service"]) =>
  Effect.gen(function* () {
    const received: Array<Record<string, unknown>> = []
    yield* Effect.forkScoped(
      Stream.runForEach(pipe.messages, (value) => Effect.sync(() => void received.push(value as never))),
    )
    return received
  })

export const bytes = (...values: ReadonlyArray<number>): Uint8Array => Uint8Array.from(values)

/** The typed failure of an exit; throws (failing the test) on a success, a defect or an interruption. */
export const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  if (Exit.isSuccess(exit)) throw new Error("expected a failure, got a success")
  const reason = exit.cause.reasons.find((r) => r._tag === "Fail")
  if (reason === undefined || reason._tag !== "Fail") throw new Error(`expected a typed failure: ${exit.cause}`)
  return reason.error
}
