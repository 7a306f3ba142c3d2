/**
 * What a retry did, as past-tense facts: a retry was scheduled, or retrying
 * gave up.
 *
 * @since 0.1.0
 */
import { PeerId } from "@fedguard/transport"
import { Schema } from "effect"

/**
 * Why retrying stopped on a retryable error: every allowed retry was used
 * (`"retries-exhausted"`), or the next delay would have overrun the policy's
 * total budget (`"budget-exhausted"`).
 *
 * @since 0.1.0
 * @category models
 */
export const GiveUpReason = Schema.Literals(["retries-exhausted", "budget-exhausted"])

/**
 * @since 0.1.0
 * @category models
 */
export type GiveUpReason = typeof GiveUpReason.Type

/**
 * Attempt `attempt` failed with the retryable error `errorTag`, and the next
 * attempt will start after `delayMs` milliseconds. One event per retry, so a
 * call that needed 3 retries publishes 3 of them.
 *
 * @since 0.1.0
 * @category events
 */
export class RetryScheduled extends Schema.TaggedClass<RetryScheduled>()("RetryScheduled", {
  peer: Schema.optionalKey(PeerId.PeerId),
  attempt: Schema.Int,
  delayMs: Schema.Number,
  errorTag: Schema.String,
}) {}

/**
 * Retrying stopped on a retryable error after `attempts` attempts in all; the
 * caller receives that last error. Published once per call that gave up; not
 * published for final (non-retryable) errors, nor on interruption.
 *
 * @since 0.1.0
 * @category events
 */
export class RetryGaveUp extends Schema.TaggedClass<RetryGaveUp>()("RetryGaveUp", {
  peer: Schema.optionalKey(PeerId.PeerId),
  attempts: Schema.Int,
  errorTag: Schema.String,
  reason: GiveUpReason,
}) {}

/**
 * Every event a retry publishes.
 *
 * @since 0.1.0
 * @category events
 */
export type RetryEvent = RetryScheduled | RetryGaveUp

/**
 * The Schema of {@link RetryEvent}, to encode events for logs or the wire.
 *
 * @since 0.1.0
 * @category events
 */
export const RetryEvent = Schema.Union([RetryScheduled, RetryGaveUp])
