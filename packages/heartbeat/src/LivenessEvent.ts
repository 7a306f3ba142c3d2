/**
 * What the `LivenessTracker` reports happened: clients coming online, going
 * offline, never joining, and the quorum being lost or restored.
 *
 * Events are published only on state changes, never per beat. Times are epoch
 * milliseconds from the Effect `Clock`.
 *
 * @since 0.1.0
 */
import { PeerId } from "@fedguard/transport"
import { Schema } from "effect"

/**
 * A client showed a sign of life while not online: its first beat after
 * registration (`rejoined: false`), or after it was offline or never-joined
 * (`rejoined: true`).
 *
 * @since 0.1.0
 * @category events
 */
export class ClientCameOnline extends Schema.TaggedClass<ClientCameOnline>()("ClientCameOnline", {
  id: PeerId.PeerId,
  at: Schema.Number,
  rejoined: Schema.Boolean,
}) {}

/**
 * An online client went offline: `reason` is `"timeout"` when its detector
 * deadline passed, or the reason given to `markOffline` (e.g.
 * `"connection-closed"`). `lastSeenAt` is its last sign of life.
 *
 * @since 0.1.0
 * @category events
 */
export class ClientWentOffline extends Schema.TaggedClass<ClientWentOffline>()("ClientWentOffline", {
  id: PeerId.PeerId,
  at: Schema.Number,
  reason: Schema.String,
  lastSeenAt: Schema.Number,
}) {}

/**
 * A registered client showed no sign of life within the join timeout. Reported
 * once; the client may still join later (then `ClientCameOnline`). A client
 * never seen alive never produces `ClientWentOffline`.
 *
 * @since 0.1.0
 * @category events
 */
export class ClientNeverJoined extends Schema.TaggedClass<ClientNeverJoined>()("ClientNeverJoined", {
  id: PeerId.PeerId,
  at: Schema.Number,
  registeredAt: Schema.Number,
}) {}

/**
 * The number of alive clients fell below `minClients` after the quorum had
 * been reached.
 *
 * @since 0.1.0
 * @category events
 */
export class QuorumLost extends Schema.TaggedClass<QuorumLost>()("QuorumLost", {
  at: Schema.Number,
  alive: Schema.Number,
  minClients: Schema.Number,
}) {}

/**
 * The number of alive clients is back at `minClients` after a `QuorumLost`.
 *
 * @since 0.1.0
 * @category events
 */
export class QuorumRestored extends Schema.TaggedClass<QuorumRestored>()("QuorumRestored", {
  at: Schema.Number,
  alive: Schema.Number,
  minClients: Schema.Number,
}) {}

/**
 * Any liveness event, as a Schema (to encode events for logs or export) and
 * as a type.
 *
 * @since 0.1.0
 * @category events
 */
export const LivenessEvent = Schema.Union([
  ClientCameOnline,
  ClientWentOffline,
  ClientNeverJoined,
  QuorumLost,
  QuorumRestored,
])

/**
 * @since 0.1.0
 * @category events
 */
export type LivenessEvent = typeof LivenessEvent.Type
