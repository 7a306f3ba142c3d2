/**
 * The client's event hub: every service of the client publishes what
 * happened here, the JSON log renders it, and tests and the demo read it.
 *
 * @since 0.2.0
 */
import { EventLog } from "@fedguard/app-kit"
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import * as ClientEvent from "./ClientEvent.ts"

/**
 * Publishes and subscribes to `ClientEvent`s.
 *
 * - `publish(event)` logs the event's JSON line, then delivers it to every
 *   subscriber (in that order, so a line is never later than a reaction to
 *   it). It is the client's only log output.
 * - `subscribe` subscribes at once in the caller's Scope: nothing published
 *   after it returns is missed.
 *
 * @example
 * ```ts
 * import { Effect, Stream } from "effect"
 * import { ClientEvents } from "@fedguard/fed-client/ClientEvents"
 *
 * const firstLoss = Effect.scoped(Effect.gen(function* () {
 *   const events = yield* (yield* ClientEvents).subscribe
 *   return yield* events.pipe(Stream.filter((event) => event._tag === "ServerLost"), Stream.runHead)
 * }))
 * ```
 *
 * @since 0.2.0
 * @category services
 */
export class ClientEvents extends Context.Service<
  ClientEvents,
  {
    readonly publish: (event: ClientEvent.ClientEvent) => Effect.Effect<void>
    readonly subscribe: Effect.Effect<Stream.Stream<ClientEvent.ClientEvent>, never, Scope.Scope>
  }
>()("@fedguard/fed-client/ClientEvents") {}

/**
 * The hub: an unbounded `PubSub` (events are rare: a few per session and per
 * round), shut down with the Layer's Scope.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<ClientEvents> = Layer.effect(
  ClientEvents,
  Effect.map(EventLog.hub(ClientEvent.lines), ClientEvents.of),
)
