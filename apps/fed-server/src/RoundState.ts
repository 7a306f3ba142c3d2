/**
 * One round's state as a value: who is still pending, whose updates were
 * admitted, who was excluded and why. Every transition is a pure function
 * from state to state, so the round's bookkeeping is tested without a clock,
 * a network or a fiber; `RoundCoordinator` only feeds it inputs.
 *
 * @since 0.2.0
 */
import type { Admitted, UpdateRefused } from "./UpdateAdmission.ts"

/**
 * Why a participant did not contribute to a round. Rendered for the report
 * and the log by {@link reasonText}:
 *
 * - `Offline`: its connection ended or its heartbeat deadline passed;
 * - `Replaced`: a newer session of the same id took over (the round slot is
 *   released at once; the new session takes part from the next round);
 * - `Stalled`: the model could not be delivered (its ACK offset stopped
 *   moving), or its upload stopped moving, for the ack-progress timeout;
 * - `SendFailed`: the model could not be delivered for another reason;
 * - `Straggler`: no update before the round timeout;
 * - `Rejected`: its update was refused by `UpdateAdmission`.
 *
 * @since 0.2.0
 * @category models
 */
export type ExclusionReason =
  | { readonly _tag: "Offline" }
  | { readonly _tag: "Replaced" }
  | { readonly _tag: "Stalled" }
  | { readonly _tag: "SendFailed"; readonly error: string }
  | { readonly _tag: "Straggler" }
  | { readonly _tag: "Rejected"; readonly refusal: UpdateRefused }

/**
 * The report's text of an exclusion reason: `offline`, `replaced`,
 * `stalled`, `send-failed: <error tag>`, `straggler`, `rejected: <reason>`.
 *
 * @since 0.2.0
 * @category rendering
 */
export const reasonText = (reason: ExclusionReason): string => {
  switch (reason._tag) {
    case "Offline":
      return "offline"
    case "Replaced":
      return "replaced"
    case "Stalled":
      return "stalled"
    case "SendFailed":
      return `send-failed: ${reason.error}`
    case "Straggler":
      return "straggler"
    case "Rejected":
      return reason.refusal.exclusion
  }
}

/**
 * A round in progress (or finished, once `pending` is empty).
 *
 * @since 0.2.0
 * @category models
 */
export interface RoundState {
  readonly round: number
  readonly participants: ReadonlyArray<string>
  readonly pending: ReadonlySet<string>
  /**
   * Admitted updates, in arrival order: ids, sample counts, byte counts and
   * spill files, never weights, so a round's state is small whatever the
   * model and the number of clients.
   */
  readonly accepted: ReadonlyArray<Admitted>
  readonly excluded: ReadonlyArray<{ readonly id: string; readonly reason: ExclusionReason }>
  /** Every update refused while this round ran, whether or not it excluded a participant. */
  readonly rejectedUpdates: number
  /** Ids that submitted an update this round (admitted or refused): a second one is a duplicate. */
  readonly submitted: ReadonlySet<string>
}

/**
 * A round waiting for every participant.
 *
 * @since 0.2.0
 * @category constructors
 */
export const start = (round: number, participants: ReadonlyArray<string>): RoundState => ({
  round,
  participants,
  pending: new Set(participants),
  accepted: [],
  excluded: [],
  rejectedUpdates: 0,
  submitted: new Set(),
})

const without = (set: ReadonlySet<string>, id: string): ReadonlySet<string> => {
  const next = new Set(set)
  next.delete(id)
  return next
}

/**
 * Takes a pending participant out of the round for `reason`. A participant
 * that is no longer pending (already admitted or excluded) is left as it is.
 *
 * @since 0.2.0
 * @category transitions
 */
export const exclude = (state: RoundState, id: string, reason: ExclusionReason): RoundState =>
  state.pending.has(id)
    ? { ...state, pending: without(state.pending, id), excluded: [...state.excluded, { id, reason }] }
    : state

/**
 * Records an admitted update of a pending participant.
 *
 * @since 0.2.0
 * @category transitions
 */
export const accept = (state: RoundState, update: Admitted): RoundState => ({
  ...state,
  pending: without(state.pending, update.id),
  accepted: [...state.accepted, update],
  submitted: new Set([...state.submitted, update.id]),
})

/**
 * Records a refused update: counted, and its sender (if pending) excluded at
 * once so it never holds the round. With `excludes: false` (a straggler's
 * late update for an earlier round) it is only counted.
 *
 * @since 0.2.0
 * @category transitions
 */
export const reject = (state: RoundState, refusal: UpdateRefused, excludes = true): RoundState => {
  const counted: RoundState = {
    ...state,
    rejectedUpdates: state.rejectedUpdates + 1,
    submitted: refusal.kind === "stale-round" ? state.submitted : new Set([...state.submitted, refusal.id]),
  }
  return excludes ? exclude(counted, refusal.id, { _tag: "Rejected", refusal }) : counted
}

/**
 * The round timed out: every participant still pending is a straggler.
 *
 * @since 0.2.0
 * @category transitions
 */
export const timeOut = (state: RoundState): RoundState =>
  [...state.pending].reduce((s, id) => exclude(s, id, { _tag: "Straggler" }), state)

/**
 * True when no participant is pending.
 *
 * @since 0.2.0
 * @category queries
 */
export const isDone = (state: RoundState): boolean => state.pending.size === 0
