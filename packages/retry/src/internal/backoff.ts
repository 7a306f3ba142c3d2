/**
 * The numeric core of the backoff policies: plain functions of milliseconds
 * and a uniform sample `u` in [0, 1), so that the Schedules in `Retry.ts` stay
 * thin and every formula can be checked without a clock.
 *
 * Delays are whole milliseconds (floored): the TestClock, the events and the
 * metrics all speak in integer milliseconds, and flooring never pushes a delay
 * above its bound.
 */

/** The seed's jitter: up to `spread` added, then the cap applied again. */
export const additiveMillis = (delayMillis: number, spreadMillis: number, capMillis: number, u: number): number =>
  Math.min(capMillis, Math.floor(delayMillis + spreadMillis * u))

/** AWS "full jitter": uniform in [0, delay] (the delay is already capped). */
export const fullMillis = (delayMillis: number, capMillis: number, u: number): number =>
  Math.min(capMillis, Math.floor(delayMillis * u))

/**
 * AWS "decorrelated jitter": `min(cap, uniform(base, previous * 3))`. The
 * result never falls below `base` (the policy guarantees `cap >= base`).
 */
export const decorrelatedMillis = (baseMillis: number, capMillis: number, previousMillis: number, u: number): number =>
  Math.min(capMillis, Math.max(baseMillis, Math.floor(baseMillis + (previousMillis * 3 - baseMillis) * u)))

/**
 * A server's `retryAfter` hint raises the computed delay but never beyond the
 * cap: `min(cap, max(computed, hint))`.
 */
export const honourHintMillis = (delayMillis: number, hintMillis: number | undefined, capMillis: number): number =>
  hintMillis === undefined ? delayMillis : Math.min(capMillis, Math.max(delayMillis, hintMillis))
