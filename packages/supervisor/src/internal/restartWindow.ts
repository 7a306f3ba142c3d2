/**
 * OTP restart intensity as a value: the restarts of the last `period`
 * milliseconds. A restart exactly `period` ago has left the window.
 */
import type { RestartRecord } from "../SupervisorError.ts"

/** The window after `next`: older records dropped, `next` appended. */
export const record = (
  window: ReadonlyArray<RestartRecord>,
  next: RestartRecord,
  periodMillis: number,
): ReadonlyArray<RestartRecord> => [...window.filter((r) => r.at > next.at - periodMillis), next]

/** More than `maxRestarts` restarts in the window: escalate. */
export const exceeds = (window: ReadonlyArray<RestartRecord>, maxRestarts: number): boolean =>
  window.length > maxRestarts
