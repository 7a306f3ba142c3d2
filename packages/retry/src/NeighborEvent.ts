/**
 * Changes of a neighbour's availability, as past-tense facts.
 *
 * @since 0.1.0
 */
import { PeerId } from "@fedguard/transport"
import { Schema } from "effect"

/**
 * `peer` was marked offline at `at` because of `reason` (`"retries-exhausted"`,
 * `"budget-exhausted"`, or whatever the caller of `markOffline` gave). Sends to
 * it now fail at once with `NeighborOffline`. Published only on a change: a
 * peer already offline does not go offline twice.
 *
 * @since 0.1.0
 * @category events
 */
export class NeighborWentOffline extends Schema.TaggedClass<NeighborWentOffline>()("NeighborWentOffline", {
  peer: PeerId.PeerId,
  at: Schema.DateTimeUtc,
  reason: Schema.String,
}) {}

/**
 * `peer`, offline since `offlineSince`, was marked online again at `at`
 * (an inbound message or heartbeat, or an explicit `markOnline`). Published
 * only on a change.
 *
 * @since 0.1.0
 * @category events
 */
export class NeighborCameOnline extends Schema.TaggedClass<NeighborCameOnline>()("NeighborCameOnline", {
  peer: PeerId.PeerId,
  at: Schema.DateTimeUtc,
  offlineSince: Schema.DateTimeUtc,
}) {}

/**
 * Every availability change a `NeighborRegistry` publishes.
 *
 * @since 0.1.0
 * @category events
 */
export type NeighborEvent = NeighborWentOffline | NeighborCameOnline

/**
 * The Schema of {@link NeighborEvent}.
 *
 * @since 0.1.0
 * @category events
 */
export const NeighborEvent = Schema.Union([NeighborWentOffline, NeighborCameOnline])
