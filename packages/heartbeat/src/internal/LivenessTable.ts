import type { PeerId as PeerIdModule } from "@fedguard/transport"
import { emptyStats, type FailureDetector, type IntervalStats } from "../FailureDetector.ts"
import { DeadlineHeap } from "./DeadlineHeap.ts"
import { IntervalHistory } from "./IntervalHistory.ts"

/**
 * The synchronous core of the `LivenessTracker`: per-client state in
 * struct-of-arrays form plus one deadline heap. No Effect, no clock: every
 * method takes the current time, and transitions are reported to a listener.
 * The tracker wraps it; tests of scheduling can drive it directly.
 *
 * Per client: one `Map` entry (id -> slot), one array slot for the id, 34
 * bytes of typed arrays (state, reason, four timestamps) and 16 bytes of heap.
 * Phi-accrual adds an `IntervalHistory` per client seen alive (kept across
 * outages, as Akka keeps its history).
 *
 * @internal
 */

export const Registered = 0
export const Online = 1
export const Offline = 2
export const NeverJoined = 3

export const ReasonNone = 0
export const ReasonTimeout = 1
export const ReasonNeverJoined = 2
const ReasonCustom = 3

export const reasonTimeout = "timeout"
export const reasonNeverJoined = "never-joined"

export interface TableListener {
  readonly cameOnline: (slot: number, at: number, previousState: number) => void
  readonly wentOffline: (slot: number, at: number, reason: string, lastSeenAt: number) => void
  readonly neverJoined: (slot: number, at: number, registeredAt: number) => void
}

type PeerId = PeerIdModule.PeerId

const initialCapacity = 1024

export class LivenessTable {
  readonly detector: FailureDetector
  readonly joinTimeoutMs: number
  readonly listener: TableListener
  readonly slots = new Map<PeerId, number>()
  readonly ids: Array<PeerId> = []
  state = new Uint8Array(initialCapacity)
  reason = new Uint8Array(initialCapacity)
  registeredAt = new Float64Array(initialCapacity)
  joinedAt = new Float64Array(initialCapacity)
  lastSeen = new Float64Array(initialCapacity)
  offlineAt = new Float64Array(initialCapacity)
  readonly customReasons = new Map<number, string>()
  readonly histories: Array<IntervalHistory | undefined> | undefined
  readonly heap = new DeadlineHeap(initialCapacity)
  size = 0
  aliveCount = 0
  /** Constant deadline offset when the detector keeps no window. */
  private readonly fixedTimeoutMs: number | undefined

  constructor(detector: FailureDetector, joinTimeoutMs: number, listener: TableListener) {
    this.detector = detector
    this.joinTimeoutMs = joinTimeoutMs
    this.listener = listener
    this.histories = detector.windowSize > 0 ? [] : undefined
    this.fixedTimeoutMs = detector.windowSize > 0 ? undefined : detector.timeoutAfter(emptyStats)
  }

  /** Registers `id` at `now`; returns its slot (existing registrations are kept as they are). */
  register(id: PeerId, now: number): number {
    const existing = this.slots.get(id)
    if (existing !== undefined) return existing
    const slot = this.size++
    if (slot === this.state.length) this.grow(slot * 2)
    this.slots.set(id, slot)
    this.ids.push(id)
    this.state[slot] = Registered
    this.reason[slot] = ReasonNone
    this.registeredAt[slot] = now
    this.joinedAt[slot] = Number.NaN
    this.lastSeen[slot] = Number.NaN
    this.offlineAt[slot] = Number.NaN
    if (this.joinTimeoutMs < Number.POSITIVE_INFINITY) this.heap.schedule(slot, Math.ceil(now + this.joinTimeoutMs))
    return slot
  }

  /**
   * Records a sign of life of `slot` at `now`. A beat (as opposed to other
   * traffic) also feeds the detector's window. A client that was not online
   * comes online; the gap that ended its outage is not added to its window.
   */
  signOfLife(slot: number, now: number, isBeat: boolean): void {
    const previous = this.state[slot]!
    this.lastSeen[slot] = now
    const histories = this.histories
    if (previous === Online) {
      if (histories === undefined) return
      const history = histories[slot]!
      if (isBeat) history.beat(now)
      this.heap.schedule(slot, Math.ceil(now + this.detector.timeoutAfter(history)))
      return
    }
    let stats: IntervalStats = emptyStats
    if (histories !== undefined) {
      // As Akka does, the gap that ends an outage is not an interval sample:
      // it would skew the window. The window itself survives the outage.
      let history = histories[slot]
      if (history === undefined) {
        history = new IntervalHistory(this.detector.windowSize, now, this.detector.bootstrapIntervals)
        histories[slot] = history
      } else {
        history.lastBeatAt = now
      }
      stats = history
    }
    this.state[slot] = Online
    this.reason[slot] = ReasonNone
    this.customReasons.delete(slot)
    this.joinedAt[slot] = now
    this.offlineAt[slot] = Number.NaN
    this.aliveCount++
    this.heap.schedule(slot, Math.ceil(now + (this.fixedTimeoutMs ?? this.detector.timeoutAfter(stats))))
    this.listener.cameOnline(slot, now, previous)
  }

  /** Marks an online client offline for `reason`; returns false (and changes nothing) otherwise. */
  markOffline(slot: number, now: number, reason: string): boolean {
    if (this.state[slot] !== Online) return false
    this.heap.remove(slot)
    this.goOffline(slot, now, reason)
    return true
  }

  /**
   * The deadline `lastSeen + timeoutAfter` of an online client, rounded up to
   * a whole millisecond: never early, and the scheduler's sleeps stay exact
   * (a fractional sleep could round to no sleep at all).
   */
  deadlineOf(slot: number): number {
    return Math.ceil(this.lastSeen[slot]! + (this.fixedTimeoutMs ?? this.detector.timeoutAfter(this.statsOf(slot))))
  }

  statsOf(slot: number): IntervalStats {
    return this.histories?.[slot] ?? emptyStats
  }

  /** The earliest scheduled deadline, `Infinity` when none. */
  nextDeadline(): number {
    return this.heap.peekKey()
  }

  /**
   * Pops every deadline due at `now()`: an online client whose true deadline
   * has passed goes offline, a registered client that never beat is reported
   * never-joined, and a client that beat since its key was set is re-keyed to
   * its true deadline (lazy invalidation). `now` is read again for each mark,
   * so a mark's time is when it actually happened. Handles at most `limit`
   * entries and returns whether due entries remain, so that a storm of
   * expiries can yield to other fibers between chunks.
   */
  expireDue(now: () => number, limit: number): boolean {
    const heap = this.heap
    const due = now()
    let handled = 0
    while (heap.size > 0 && heap.peekKey() <= due) {
      if (handled++ === limit) return true
      const slot = heap.peekSlot()
      const state = this.state[slot]
      if (state === Online) {
        const deadline = this.deadlineOf(slot)
        if (deadline > due) {
          heap.rekeyTop(deadline)
        } else {
          heap.remove(slot)
          this.goOffline(slot, now(), reasonTimeout)
        }
      } else if (state === Registered) {
        heap.remove(slot)
        const at = now()
        this.state[slot] = NeverJoined
        this.reason[slot] = ReasonNeverJoined
        this.offlineAt[slot] = at
        this.listener.neverJoined(slot, at, this.registeredAt[slot]!)
      } else {
        heap.remove(slot)
      }
    }
    return false
  }

  reasonOf(slot: number): string | undefined {
    switch (this.reason[slot]) {
      case ReasonTimeout:
        return reasonTimeout
      case ReasonNeverJoined:
        return reasonNeverJoined
      case ReasonCustom:
        return this.customReasons.get(slot)
      default:
        return undefined
    }
  }

  private goOffline(slot: number, at: number, reason: string): void {
    this.state[slot] = Offline
    if (reason === reasonTimeout) {
      this.reason[slot] = ReasonTimeout
    } else {
      this.reason[slot] = ReasonCustom
      this.customReasons.set(slot, reason)
    }
    this.offlineAt[slot] = at
    this.aliveCount--
    this.listener.wentOffline(slot, at, reason, this.lastSeen[slot]!)
  }

  private grow(capacity: number): void {
    const growUint8 = (from: Uint8Array) => {
      const to = new Uint8Array(capacity)
      to.set(from)
      return to
    }
    const growFloat64 = (from: Float64Array) => {
      const to = new Float64Array(capacity)
      to.set(from)
      return to
    }
    this.state = growUint8(this.state)
    this.reason = growUint8(this.reason)
    this.registeredAt = growFloat64(this.registeredAt)
    this.joinedAt = growFloat64(this.joinedAt)
    this.lastSeen = growFloat64(this.lastSeen)
    this.offlineAt = growFloat64(this.offlineAt)
    this.heap.grow(capacity)
  }
}
