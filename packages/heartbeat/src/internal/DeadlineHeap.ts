/**
 * An indexed binary min-heap of deadlines keyed by client slot.
 *
 * Each slot (a small integer naming a client in the liveness table) is in the
 * heap at most once, so the heap never holds more entries than there are
 * clients, however many beats arrive. Keys may be stale on the late side: the
 * owner moves a key earlier with `schedule` (sift up) but leaves a key that
 * should move later untouched, and re-keys it only when it reaches the top
 * (`rekeyTop`). That is the "lazy invalidation" that keeps a beat O(1).
 *
 * Three typed arrays, 16 bytes per slot: `keys` (Float64), `heap` and
 * `positions` (Int32; -1 means "not in the heap").
 *
 * @internal
 */
export class DeadlineHeap {
  keys: Float64Array
  heap: Int32Array
  positions: Int32Array
  size = 0

  constructor(capacity: number) {
    this.keys = new Float64Array(capacity)
    this.heap = new Int32Array(capacity)
    this.positions = new Int32Array(capacity).fill(-1)
  }

  /** Grows the arrays so that slots `< capacity` are addressable. */
  grow(capacity: number): void {
    if (capacity <= this.positions.length) return
    const keys = new Float64Array(capacity)
    keys.set(this.keys)
    const heap = new Int32Array(capacity)
    heap.set(this.heap)
    const positions = new Int32Array(capacity).fill(-1)
    positions.set(this.positions)
    this.keys = keys
    this.heap = heap
    this.positions = positions
  }

  has(slot: number): boolean {
    return this.positions[slot]! >= 0
  }

  /** The earliest key, or `Infinity` when the heap is empty. */
  peekKey(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.keys[this.heap[0]!]!
  }

  /** The slot with the earliest key; only valid when `size > 0`. */
  peekSlot(): number {
    return this.heap[0]!
  }

  /**
   * Inserts `slot` with `key`, or moves its key earlier when it is already
   * present and `key` is earlier. A later key is ignored (lazy invalidation).
   * Returns whether the slot's key changed.
   */
  schedule(slot: number, key: number): boolean {
    const position = this.positions[slot]!
    if (position < 0) {
      const at = this.size++
      this.heap[at] = slot
      this.positions[slot] = at
      this.keys[slot] = key
      this.siftUp(at)
      return true
    }
    if (key < this.keys[slot]!) {
      this.keys[slot] = key
      this.siftUp(position)
      return true
    }
    return false
  }

  /** Replaces the key of the top slot by a later one. */
  rekeyTop(key: number): void {
    this.keys[this.heap[0]!] = key
    this.siftDown(0)
  }

  /** Removes `slot` if present. */
  remove(slot: number): void {
    const position = this.positions[slot]!
    if (position < 0) return
    this.positions[slot] = -1
    const last = --this.size
    if (position === last) return
    const moved = this.heap[last]!
    this.heap[position] = moved
    this.positions[moved] = position
    this.siftDown(position)
    this.siftUp(this.positions[moved]!)
  }

  private siftUp(start: number): void {
    const { heap, keys, positions } = this
    const slot = heap[start]!
    const key = keys[slot]!
    let at = start
    while (at > 0) {
      const parentAt = (at - 1) >> 1
      const parent = heap[parentAt]!
      if (keys[parent]! <= key) break
      heap[at] = parent
      positions[parent] = at
      at = parentAt
    }
    heap[at] = slot
    positions[slot] = at
  }

  private siftDown(start: number): void {
    const { heap, keys, positions, size } = this
    const slot = heap[start]!
    const key = keys[slot]!
    let at = start
    for (;;) {
      const left = 2 * at + 1
      if (left >= size) break
      const right = left + 1
      let child = left
      if (right < size && keys[heap[right]!]! < keys[heap[left]!]!) child = right
      const childSlot = heap[child]!
      if (keys[childSlot]! >= key) break
      heap[at] = childSlot
      positions[childSlot] = at
      at = child
    }
    heap[at] = slot
    positions[slot] = at
  }
}
