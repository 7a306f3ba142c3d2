import type { IntervalStats } from "../FailureDetector.ts"

/**
 * A sliding window of heartbeat inter-arrival times with running sums, as in
 * Akka's `HeartbeatHistory`: O(1) per sample, mean and population standard
 * deviation without a pass over the window.
 *
 * Samples are stored as float32 (4 bytes, exact for whole milliseconds up to
 * 2^24 ms ≈ 4.6 h) in a buffer that grows by doubling up to `maxSize`, so a
 * client with few beats costs little. The sums add exactly the rounded value
 * that is later subtracted, so they do not drift apart from the window.
 *
 * @internal
 */
export class IntervalHistory implements IntervalStats {
  private readonly maxSize: number
  private samples: Float32Array
  private head = 0
  count = 0
  private sum = 0
  private squaredSum = 0
  lastBeatAt: number

  constructor(maxSize: number, at: number, bootstrap: ReadonlyArray<number>) {
    this.maxSize = maxSize
    this.samples = new Float32Array(Math.min(maxSize, Math.max(4, bootstrap.length)))
    this.lastBeatAt = at
    for (const interval of bootstrap) this.add(interval)
  }

  /** Records a beat at `at`: the interval since the previous beat joins the window. */
  beat(at: number): void {
    this.add(Math.max(0, at - this.lastBeatAt))
    this.lastBeatAt = at
  }

  add(interval: number): void {
    const value = Math.fround(interval)
    if (this.count === this.maxSize) {
      const oldest = this.samples[this.head]!
      this.sum -= oldest
      this.squaredSum -= oldest * oldest
      this.samples[this.head] = value
      this.head = (this.head + 1) % this.maxSize
    } else {
      if (this.count === this.samples.length) {
        const grown = new Float32Array(Math.min(this.maxSize, this.samples.length * 2))
        grown.set(this.samples)
        this.samples = grown
      }
      this.samples[this.count++] = value
    }
    this.sum += value
    this.squaredSum += value * value
  }

  get mean(): number {
    return this.count === 0 ? 0 : this.sum / this.count
  }

  get stdDeviation(): number {
    if (this.count === 0) return 0
    const mean = this.sum / this.count
    return Math.sqrt(Math.max(0, this.squaredSum / this.count - mean * mean))
  }
}
