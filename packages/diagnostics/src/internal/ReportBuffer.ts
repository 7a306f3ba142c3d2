/**
 * A bounded FIFO of pending reports that drops its oldest entry when full:
 * the newest diagnostics are the useful ones, and a sink that is down must
 * not make the process hold an unbounded backlog.
 */
export interface Pending<A> {
  readonly item: A
  readonly enqueuedAt: number
}

export class ReportBuffer<A> {
  readonly capacity: number
  private readonly items: Array<Pending<A> | undefined>
  private head = 0
  private count = 0

  constructor(capacity: number) {
    this.capacity = capacity
    this.items = new Array(capacity)
  }

  get size(): number {
    return this.count
  }

  /** The oldest pending entry, if any. */
  get oldest(): Pending<A> | undefined {
    return this.count === 0 ? undefined : this.items[this.head]
  }

  /** Adds an entry; returns the oldest one when it had to be dropped to make room. */
  push(item: A, enqueuedAt: number): Pending<A> | undefined {
    let dropped: Pending<A> | undefined
    if (this.count === this.capacity) {
      dropped = this.items[this.head]
      this.items[this.head] = undefined
      this.head = (this.head + 1) % this.capacity
      this.count--
    }
    this.items[(this.head + this.count) % this.capacity] = { item, enqueuedAt }
    this.count++
    return dropped
  }

  /** Removes and returns up to `max` of the oldest entries, oldest first. */
  take(max: number): Array<A> {
    const n = Math.min(max, this.count)
    const out: Array<A> = []
    for (let i = 0; i < n; i++) {
      const entry = this.items[this.head]
      this.items[this.head] = undefined
      this.head = (this.head + 1) % this.capacity
      if (entry !== undefined) out.push(entry.item)
    }
    this.count -= n
    return out
  }
}
