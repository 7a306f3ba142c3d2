/**
 * The server's event hub: every service publishes what happened here, the
 * JSON log renders it, and tests, the demo's table and the report read it.
 *
 * @since 0.2.0
 */
import { EventLog } from "@fedguard/app-kit"
import { Context, Effect, Layer, type Scope, type Stream } from "effect"
import * as ServerEvent from "./ServerEvent.ts"

/**
 * Publishes and subscribes to `ServerEvent`s.
 *
 * - `publish(event)` logs the event's JSON line, then delivers it to every
 *   subscriber (in that order, so a line is never later than a reaction to
 *   it).
 * - `subscribe` subscribes at once in the caller's Scope: nothing published
 *   after it returns is missed.
 *
 * @since 0.2.0
 * @category services
 */
export class ServerEvents extends Context.Service<
  ServerEvents,
  {
    readonly publish: (event: ServerEvent.ServerEvent) => Effect.Effect<void>
    readonly subscribe: Effect.Effect<Stream.Stream<ServerEvent.ServerEvent>, never, Scope.Scope>
  }
>()("@fedguard/fed-server/ServerEvents") {}

/**
 * The hub: an unbounded `PubSub` (events are rare: a few per client and per
 * round), shut down with the Layer's Scope.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer: Layer.Layer<ServerEvents> = Layer.effect(
  ServerEvents,
  Effect.map(EventLog.hub(ServerEvent.lines), ServerEvents.of),
)
