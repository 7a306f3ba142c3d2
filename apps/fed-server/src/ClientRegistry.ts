/**
 * The server's view of its clients: who joined, on which connection, when
 * each was last seen, and who left and why. Departures and updates reach the
 * round coordinator through one mailbox, so a round learns of a death the
 * moment the registry does.
 *
 * @since 0.1.0
 */
import type { Connection } from "@fedguard/transport"
import { Clock, Effect, Queue, Stream, SubscriptionRef } from "effect"

/**
 * What the round coordinator hears about: an update for a round, or a client
 * that is gone (with the reason it will be excluded for).
 *
 * @since 0.1.0
 * @category models
 */
export type RoundInput =
  | {
      readonly _tag: "Update"
      readonly id: string
      readonly round: number
      readonly weights: Float32Array
      readonly samples: number
      readonly trainLoss: number
      readonly bytes: number
    }
  | { readonly _tag: "Gone"; readonly id: string; readonly reason: string }

/**
 * A client's record. `generation` counts its sessions, so that the end of an
 * old connection cannot mark a client offline that has already rejoined.
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientRecord {
  readonly id: string
  state: "online" | "offline"
  joinedAt: number
  lastSeenAt: number
  offlineAt: number | undefined
  reason: string | undefined
  connection: Connection.Connection | undefined
  generation: number
}

/**
 * Builds the registry.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = Effect.gen(function* () {
  const clients = new Map<string, ClientRecord>()
  const online = yield* SubscriptionRef.make(0)
  const mailbox = yield* Queue.unbounded<RoundInput>()

  const recount = Effect.suspend(() =>
    SubscriptionRef.set(online, [...clients.values()].filter((c) => c.state === "online").length),
  )

  /** Records a joined session; returns its generation and the connection it replaces, if any. */
  const join = (id: string, connection: Connection.Connection) =>
    Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      const existing = clients.get(id)
      const replaced = existing?.state === "online" ? existing.connection : undefined
      const record: ClientRecord = existing ?? {
        id,
        state: "online",
        joinedAt: now,
        lastSeenAt: now,
        offlineAt: undefined,
        reason: undefined,
        connection,
        generation: 0,
      }
      const rejoined = existing !== undefined
      record.state = "online"
      record.lastSeenAt = now
      record.offlineAt = undefined
      record.reason = undefined
      record.connection = connection
      record.generation++
      clients.set(id, record)
      yield* recount
      return { generation: record.generation, replaced, rejoined }
    })

  /** Marks a client seen now (any inbound traffic counts). */
  const touch = (id: string) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      Effect.sync(() => {
        const record = clients.get(id)
        if (record !== undefined) record.lastSeenAt = now
      }),
    )

  /**
   * Marks a client offline if `generation` is still its current session (any
   * session when undefined); tells the rounds. False when nothing changed.
   */
  const depart = (id: string, generation: number | undefined, reason: string) =>
    Effect.gen(function* () {
      const record = clients.get(id)
      if (record === undefined || record.state === "offline") return false
      if (generation !== undefined && record.generation !== generation) return false
      record.state = "offline"
      record.offlineAt = yield* Clock.currentTimeMillis
      record.reason = reason
      record.connection = undefined
      yield* recount
      yield* Queue.offer(mailbox, { _tag: "Gone", id, reason })
      return true
    })

  const onlineClients = Effect.sync(() =>
    [...clients.values()].filter((c) => c.state === "online").sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
  )

  /** Waits until at least `n` clients are online. */
  const awaitOnline = (n: number) =>
    SubscriptionRef.changes(online).pipe(
      Stream.filter((count) => count >= n),
      Stream.runHead,
      Effect.asVoid,
    )

  const snapshot = Effect.sync(() =>
    [...clients.values()]
      .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
      .map((c) => ({
        id: c.id,
        state: c.state,
        joinedAt: c.joinedAt,
        lastSeenAt: c.lastSeenAt,
        ...(c.offlineAt === undefined ? {} : { offlineAt: c.offlineAt }),
        ...(c.reason === undefined ? {} : { reason: c.reason }),
      })),
  )

  const connectionOf = (id: string) => Effect.sync(() => clients.get(id)?.connection)
  const isKnown = (id: string) => Effect.sync(() => clients.has(id))

  return {
    join,
    connectionOf,
    isKnown,
    touch,
    depart,
    onlineClients,
    onlineCount: SubscriptionRef.get(online),
    awaitOnline,
    snapshot,
    mailbox,
  } as const
})

/**
 * @since 0.1.0
 * @category models
 */
export type ClientRegistry = Effect.Success<typeof make>
