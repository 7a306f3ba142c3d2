/**
 * The one place a client goes offline or comes back.
 *
 * Every sign that a client may be gone flows one way into the
 * `LivenessTracker`: a closed socket (`connectionEnded`), a silent client (the
 * tracker's own per-client deadline, FederatedScope's heartbeat timeout), a
 * send whose retries ran out (the `NeighborRegistry`'s give-up). The tracker
 * decides, once per transition; its event then closes the connection, marks
 * the neighbour offline so sends to it are skipped, and is published as a
 * `ServerEvent`. Nothing flows back, and nothing else counts clients: the
 * quorum is the tracker's.
 *
 * @since 0.2.0
 */
import { type Heartbeat, LivenessTracker } from "@fedguard/heartbeat"
import { NeighborRegistry } from "@fedguard/retry"
import { PeerId } from "@fedguard/transport"
import { Context, Duration, Effect, Layer, Option, type Scope, Stream } from "effect"
import { ClientDirectory } from "./ClientDirectory.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * The liveness of the server's clients:
 *
 * - `online(id)`: a session of `id` is being admitted (a sign of life).
 * - `seenBefore(id)`: whether `id` was ever online (a join is then a rejoin).
 * - `beat(id, heartbeat)`: a heartbeat on `id`'s authenticated session; the
 *   ack to send back, or `None` when the beat claims another id.
 * - `signOfLife(id)`: any other inbound frame.
 * - `connectionEnded(id, reason)`: the current session's connection ended:
 *   offline, or, once training has `complete`d, a `ClientLeft` (the plan, not
 *   a fault).
 * - `complete`: training is over; departures from now on are not faults.
 * - `alive`, `aliveCount`, `awaitAlive(n)`: the tracker's view, the quorum.
 * - `snapshot`: every client's state, for the report.
 *
 * @since 0.2.0
 * @category services
 */
export class ClientLiveness extends Context.Service<
  ClientLiveness,
  {
    readonly online: (id: string) => Effect.Effect<void>
    readonly seenBefore: (id: string) => Effect.Effect<boolean>
    readonly beat: (id: string, heartbeat: Heartbeat.Heartbeat) => Effect.Effect<Option.Option<Heartbeat.HeartbeatAck>>
    readonly signOfLife: (id: string) => Effect.Effect<void>
    readonly connectionEnded: (id: string, reason: string) => Effect.Effect<void>
    readonly complete: Effect.Effect<void>
    readonly alive: Effect.Effect<ReadonlyArray<string>>
    readonly aliveCount: Effect.Effect<number>
    readonly awaitAlive: (n: number) => Effect.Effect<void>
    readonly snapshot: Effect.Effect<ReadonlyArray<LivenessTracker.ClientSnapshot>>
  }
>()("@fedguard/fed-server/ClientLiveness") {}

/**
 * Options: the `LivenessTracker`'s (detector and heartbeat `timeout`,
 * `joinTimeout`, the quorum `minClients`; FederatedScope's defaults of 90 s
 * and 120 s), and the ids expected to join (`clientIds`: registered at once,
 * so they are reported never-joined if they do not show up in time).
 *
 * @since 0.2.0
 * @category models
 */
export interface Options extends LivenessTracker.Options {
  readonly clientIds?: ReadonlyArray<string> | undefined
}

/**
 * Builds the service in the current Scope: the tracker, and the fibers that
 * carry its events and the neighbour registry's give-ups one way.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options,
): Effect.fn.Return<
  ClientLiveness["Service"],
  never,
  Scope.Scope | ClientDirectory | ServerEvents | NeighborRegistry.NeighborRegistry
> {
  const directory = yield* ClientDirectory
  const events = yield* ServerEvents
  const neighbors = yield* NeighborRegistry.NeighborRegistry
  // The server publishes (and logs) every transition as a ServerEvent: the tracker's own lines
  // would say each one twice.
  const tracker = yield* LivenessTracker.make({ ...options, logTransitions: false })
  for (const id of options.clientIds ?? []) yield* tracker.register(PeerId.make(id))

  // The tracker's decisions, carried out: close, skip sends, publish.
  const trackerEvents = yield* tracker.subscribe
  yield* trackerEvents.pipe(
    Stream.runForEach((event) => {
      switch (event._tag) {
        case "ClientWentOffline":
          return Effect.gen(function* () {
            yield* neighbors.markOffline(event.id, event.reason)
            // A silent client's socket may still be open (SIGSTOP, a partition): release and
            // close it, so it must rejoin with a fresh proof. Unless it already did: a session
            // that came online since this event is newer than the silence and stays.
            const state = yield* tracker.client(event.id).pipe(
              Effect.map((client) => client.state),
              Effect.orElseSucceed(() => "offline" as const),
            )
            const session = yield* directory.current(event.id)
            const stale =
              state !== "online" &&
              Option.isSome(session) &&
              (yield* directory.release(event.id, session.value.generation))
            // Published after the release: whoever hears it finds no session for a gone client.
            yield* events.publish(new ServerEvent.ClientWentOffline({ id: event.id, reason: event.reason }))
            if (stale && Option.isSome(session)) yield* session.value.connection.close(`offline: ${event.reason}`)
          })
        case "ClientCameOnline":
          return neighbors.markOnline(event.id)
        case "ClientNeverJoined":
          return events.publish(new ServerEvent.ClientNeverJoined({ id: event.id }))
        case "QuorumLost":
          return events.publish(new ServerEvent.QuorumLost({ alive: event.alive, minClients: event.minClients }))
        case "QuorumRestored":
          return events.publish(new ServerEvent.QuorumRestored({ alive: event.alive, minClients: event.minClients }))
      }
    }),
    Effect.forkScoped,
  )

  // Sends whose retries ran out are one more sign, for the tracker to decide on.
  const neighborEvents = yield* neighbors.subscribe
  yield* neighborEvents.pipe(
    Stream.runForEach((event) =>
      event._tag === "NeighborWentOffline"
        ? tracker.markOffline(event.peer, `send-failed: ${event.reason}`).pipe(Effect.ignore)
        : Effect.void,
    ),
    Effect.forkScoped,
  )

  let completed = false

  return ClientLiveness.of({
    online: (id) =>
      Effect.andThen(tracker.register(PeerId.make(id)), tracker.touch(PeerId.make(id)).pipe(Effect.ignore)),
    seenBefore: (id) =>
      tracker.client(PeerId.make(id)).pipe(
        Effect.map((client) => client.joinedAt !== undefined),
        Effect.orElseSucceed(() => false),
      ),
    beat: (id, heartbeat) => tracker.beat(PeerId.make(id), heartbeat).pipe(Effect.option),
    signOfLife: (id) => tracker.touch(PeerId.make(id)).pipe(Effect.ignore),
    connectionEnded: (id, reason) =>
      completed
        ? events.publish(new ServerEvent.ClientLeft({ id, reason: "completed" }))
        : tracker.markOffline(PeerId.make(id), reason).pipe(Effect.ignore),
    complete: Effect.sync(() => {
      completed = true
    }),
    alive: tracker.aliveClients,
    aliveCount: tracker.aliveCount,
    awaitAlive: (n) => tracker.awaitAlive(n, Duration.infinity).pipe(Effect.ignore),
    snapshot: tracker.snapshot,
  })
})

/**
 * The service as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<ClientLiveness, never, ClientDirectory | ServerEvents | NeighborRegistry.NeighborRegistry> =>
  Layer.effect(ClientLiveness, make(options))
