/**
 * Who is connected as whom: client id → its current session (connection,
 * generation, declared shard size). Nothing about liveness: whether a client
 * is online is `ClientLiveness`'s fact alone.
 *
 * Sessions run in a `FiberMap` keyed by client id, so admitting a new session
 * of an id interrupts the old one: at most one session per id, ever. A second
 * replacement of the same id within `flapWindow` of the first is refused: two
 * processes sharing an id would otherwise replace each other forever (seen:
 * 58 `client-online` lines a minute, and every round waiting for a slot that
 * was never released).
 *
 * @since 0.2.0
 */
import type { Connection } from "@fedguard/transport"
import { Clock, Context, Duration, Effect, FiberMap, Layer, Option, Schema } from "effect"
import { byId } from "./internal/byId.ts"

/**
 * One admitted session. `generation` counts the sessions of this id, so the
 * end of an old session can never undo a newer one.
 *
 * @since 0.2.0
 * @category models
 */
export interface Session {
  readonly id: string
  readonly generation: number
  readonly connection: Connection.Connection
  readonly declaredSamples: number
  /** Runs a send under the session's stall monitor (tracked as pending while it runs). */
  readonly guard: <A, E, R>(send: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
}

/**
 * A join for `id` was refused because the id is already taken by a session
 * that itself replaced another one moments ago: two processes share this id.
 *
 * @since 0.2.0
 * @category errors
 */
export class DuplicateClientId extends Schema.TaggedError<DuplicateClientId>()("DuplicateClientId", {
  id: Schema.String,
  replacedAgoMs: Schema.Number,
}) {
  override get message(): string {
    return (
      `duplicate client id ${this.id}: another session of this id replaced an older one ${this.replacedAgoMs} ms ago; ` +
      `two processes seem to share the id (give each client its own --id)`
    )
  }
}

/**
 * What `admit` runs around recording a session: `beforeVisible` before any
 * other fiber can find it (the welcome: once visible, a round may stream the
 * session the model, which must not overtake the welcome), `onVisible` right
 * after (marking it alive: a client alive for liveness always has a session
 * here, so a round never starts without it).
 *
 * @since 0.2.0
 * @category models
 */
export interface Hooks {
  readonly beforeVisible: Effect.Effect<void>
  readonly onVisible: (replaced: Option.Option<Session>) => Effect.Effect<void>
}

/**
 * The outcome of {@link ClientDirectory} `admit`: the new session, and the
 * session it replaced, if any.
 *
 * @since 0.2.0
 * @category models
 */
export interface Admission {
  readonly session: Session
  readonly replaced: Option.Option<Session>
}

/**
 * The directory:
 *
 * - `admit(id, connection, details, hooks, serve)`: unless `id` is
 *   flapping (then `DuplicateClientId`, and nothing happens), runs
 *   `hooks.beforeVisible` (the welcome), records the session, runs
 *   `hooks.onVisible` (the liveness mark), then runs `serve(session)` in the
 *   FiberMap under `id`, interrupting the old session's fiber.
 * - `current(id)`: the current session of `id`.
 * - `release(id, generation)`: forgets the session if it is still the current
 *   one; true when it was (the caller then reports the end).
 * - `sessions`: every current session, sorted by id.
 *
 * @since 0.2.0
 * @category services
 */
export class ClientDirectory extends Context.Service<
  ClientDirectory,
  {
    readonly admit: (
      id: string,
      connection: Connection.Connection,
      details: Pick<Session, "declaredSamples" | "guard">,
      hooks: Hooks,
      serve: (session: Session) => Effect.Effect<void>,
    ) => Effect.Effect<Admission, DuplicateClientId>
    readonly current: (id: string) => Effect.Effect<Option.Option<Session>>
    readonly release: (id: string, generation: number) => Effect.Effect<boolean>
    readonly sessions: Effect.Effect<ReadonlyArray<Session>>
  }
>()("@fedguard/fed-server/ClientDirectory") {}

/**
 * Options: `flapWindow` (default 90 s, the seed's heartbeat timeout), the
 * time after a replacement during which another replacement of the same id
 * is refused.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly flapWindow?: Duration.Input | undefined
}

/**
 * Builds the directory; session fibers live in the current Scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const flapWindowMs = Duration.toMillis(options.flapWindow ?? "90 seconds")
  const fibers = yield* FiberMap.make<string>()
  const sessions = new Map<string, Session>()
  const generations = new Map<string, number>()
  const replacedAt = new Map<string, number>()

  const admit = Effect.fnUntraced(function* (
    id: string,
    connection: Connection.Connection,
    details: Pick<Session, "declaredSamples" | "guard">,
    hooks: Hooks,
    serve: (session: Session) => Effect.Effect<void>,
  ) {
    const now = yield* Clock.currentTimeMillis
    const previous = sessions.get(id)
    if (previous !== undefined) {
      const last = replacedAt.get(id)
      if (last !== undefined && now - last < flapWindowMs) {
        return yield* new DuplicateClientId({ id, replacedAgoMs: now - last })
      }
      replacedAt.set(id, now)
    }
    yield* hooks.beforeVisible
    const generation = (generations.get(id) ?? 0) + 1
    generations.set(id, generation)
    const session: Session = { id, generation, connection, ...details }
    sessions.set(id, session)
    yield* hooks.onVisible(Option.fromUndefinedOr(previous))
    // Runs the new session, interrupting the previous one of this id.
    yield* FiberMap.run(fibers, id, serve(session))
    return { session, replaced: Option.fromUndefinedOr(previous) }
  })

  return ClientDirectory.of({
    admit,
    current: (id) => Effect.sync(() => Option.fromUndefinedOr(sessions.get(id))),
    release: (id, generation) =>
      Effect.sync(() => {
        if (sessions.get(id)?.generation !== generation) return false
        sessions.delete(id)
        return true
      }),
    sessions: Effect.sync(() => [...sessions.values()].sort(byId)),
  })
})

/**
 * The directory as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<ClientDirectory> =>
  Layer.effect(ClientDirectory, make(options))
