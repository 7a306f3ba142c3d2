import { assert } from "@effect/vitest"
import { Effect, Exit, type Fiber, Option, type Scope, Stream } from "effect"
import * as JobSpec from "../src/JobSpec.ts"

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

/** The value of an exit that must have succeeded. */
export const successOf = <A, E>(exit: Exit.Exit<A, E>): A => {
  if (Exit.isFailure(exit)) return assert.fail(`expected success, got ${String(exit.cause)}`)
  return exit.value
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

/** Site ids `site-1` … `site-n`. */
export const siteIds = (n: number): Array<string> => Array.from({ length: n }, (_, i) => `site-${i + 1}`)

/** A valid spec with the given overrides (timeouts 60 s unless overridden). */
export const spec = (overrides: Partial<JobSpec.JobSpecInput> = {}): JobSpec.JobSpec =>
  JobSpec.validate({
    name: "cifar10",
    rounds: 3,
    model: "resnet18",
    clients: siteIds(3),
    minSites: 2,
    ...overrides,
  }).pipe((result) => {
    if (result._tag === "Failure") return assert.fail(result.failure.message)
    return result.success
  })

/**
 * A scripted site: replies after `after` (default at once), refuses with `refuse`, or never
 * answers (`silent`).
 */
export interface Script {
  readonly after?: number
  readonly refuse?: string
  readonly silent?: true
}

/** A site action that follows a script per site (sites without one reply at once). */
export const scripted =
  (scripts: Record<string, Script>) =>
  (site: string): Effect.Effect<void, string> => {
    const script = scripts[site] ?? {}
    if (script.silent) return Effect.never
    const reply = script.refuse === undefined ? Effect.void : Effect.fail(script.refuse)
    return script.after === undefined ? reply : Effect.andThen(Effect.sleep(script.after), reply)
  }
