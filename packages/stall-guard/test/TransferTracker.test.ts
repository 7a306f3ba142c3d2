import { assert, describe, it } from "@effect/vitest"
import { type Cause, Effect, Exit, Fiber, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import type * as StallEvent from "../src/StallEvent.ts"
import * as TransferTracker from "../src/TransferTracker.ts"
import { ended, failureOf, isRunning, settle } from "./support.ts"

const settings = { idleTimeout: 60_000, completionGrace: 5_000 }
const started = TransferTracker.start(0, settings)

describe("TransferTracker (pure core)", () => {
  it("waits for a first byte, and is did-not-start 60 s after the start, not before", () => {
    assert.strictEqual(TransferTracker.check(started, 59_999).status, "waiting")
    const late = TransferTracker.check(started, 60_000)
    assert.strictEqual(late.status, "did-not-start")
    assert.strictEqual(late.endedAt, 60_000)
  })

  it("becomes active on the first byte and idle 60 s after the last progress, not before", () => {
    const active = TransferTracker.progress(TransferTracker.progress(started, 100, 10_000), 200, 30_000)
    assert.strictEqual(active.status, "active")
    assert.strictEqual(active.firstByteAt, 10_000)
    assert.strictEqual(TransferTracker.check(active, 89_999).status, "active")
    const idle = TransferTracker.check(active, 90_000)
    assert.strictEqual(idle.status, "idle")
    assert.strictEqual(idle.bytes, 200)
  })

  it("ignores progress that goes backwards and counts it, without restarting the idle clock", () => {
    const ahead = TransferTracker.progress(started, 500, 10_000)
    const late = TransferTracker.progress(TransferTracker.progress(ahead, 300, 20_000), 400, 30_000)
    assert.strictEqual(late.bytes, 500)
    assert.strictEqual(late.outOfOrder, 2)
    assert.strictEqual(late.lastProgressAt, 10_000)
    assert.strictEqual(TransferTracker.check(late, 70_000).status, "idle")
  })

  it("treats a repeated offset as no progress and not as out of order", () => {
    const same = TransferTracker.progress(TransferTracker.progress(started, 500, 10_000), 500, 50_000)
    assert.strictEqual(same.outOfOrder, 0)
    assert.strictEqual(same.lastProgressAt, 10_000)
  })

  it("completes at once when the end is confirmed, with or without an expected size", () => {
    const done = TransferTracker.complete(TransferTracker.progress(started, 10, 1_000), 2_000)
    assert.strictEqual(done.status, "completed")
    assert.strictEqual(done.endedAt, 2_000)
  })

  it("completes 5 s after every expected byte is in when no end comes, and is not idle meanwhile", () => {
    const expecting = TransferTracker.start(0, { ...settings, completionGrace: 70_000, expectedBytes: 1000 })
    const full = TransferTracker.progress(TransferTracker.progress(expecting, 400, 1_000), 1000, 2_000)
    assert.strictEqual(full.allBytesAt, 2_000)
    // 65 s without progress would be idle; inside the (here longer) grace it is not.
    assert.strictEqual(TransferTracker.check(full, 67_000).status, "active")
    assert.strictEqual(TransferTracker.check(full, 72_000).status, "completed")

    const graced = TransferTracker.progress(TransferTracker.start(0, { ...settings, expectedBytes: 1000 }), 1000, 2_000)
    assert.strictEqual(TransferTracker.check(graced, 6_999).status, "active")
    assert.strictEqual(TransferTracker.check(graced, 7_000).status, "completed")
    assert.strictEqual(TransferTracker.deadline(graced), 7_000)
  })

  it("does not start the grace before the expected size: a partial transfer still goes idle", () => {
    const partial = TransferTracker.progress(TransferTracker.start(0, { ...settings, expectedBytes: 1000 }), 999, 1_000)
    assert.isUndefined(partial.allBytesAt)
    assert.strictEqual(TransferTracker.check(partial, 61_000).status, "idle")
  })

  it("keeps a terminal transfer as it is: no progress, check, completion or failure changes it", () => {
    const failed = TransferTracker.fail(TransferTracker.progress(started, 10, 1_000), 2_000, "stream broke")
    assert.strictEqual(failed.status, "failed")
    assert.strictEqual(failed.reason, "stream broke")
    assert.strictEqual(TransferTracker.progress(failed, 99, 3_000), failed)
    assert.strictEqual(TransferTracker.complete(failed, 3_000), failed)
    assert.strictEqual(TransferTracker.check(failed, 1e9), failed)
    assert.isUndefined(TransferTracker.deadline(failed))
    const abandoned = TransferTracker.abandon(started, 5, "round ended")
    assert.strictEqual(abandoned.status, "abandoned")
    assert.strictEqual(TransferTracker.abandon(abandoned, 9, "again").endedAt, 5)
  })
})

interface Broken {
  readonly _tag: "Broken"
}
const broken: Broken = { _tag: "Broken" }

// A byte stream the test feeds chunk by chunk.
const feed = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<Uint8Array, Broken | Cause.Done>()
  return {
    stream: Stream.fromQueue(queue),
    send: (bytes: number) => Queue.offer(queue, new Uint8Array(bytes).fill(7)).pipe(Effect.andThen(settle)),
    end: Queue.end(queue).pipe(Effect.andThen(settle)),
    fail: Queue.fail(queue, broken).pipe(Effect.andThen(settle)),
  }
})

describe("TransferTracker.collect", () => {
  const collect = (
    stream: Stream.Stream<Uint8Array, Broken>,
    options: Partial<TransferTracker.CollectOptions> = {},
  ) => {
    const aborts: Array<string> = []
    const events: Array<StallEvent.TransferIdle | StallEvent.TransferAbandoned> = []
    return Effect.forkChild(
      TransferTracker.collect(stream, {
        idleTimeout: "60 seconds",
        maxBytes: 10_000,
        abort: (reason) => Effect.sync(() => void aborts.push(reason)),
        onEvent: (event) => Effect.sync(() => void events.push(event)),
        ...options,
      }),
    ).pipe(Effect.map((fiber) => ({ fiber, aborts, events })))
  }

  it.effect("collects every chunk into one buffer when the stream ends", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber } = yield* collect(input.stream)
      yield* input.send(100)
      yield* TestClock.adjust(30_000)
      yield* input.send(50)
      yield* input.end
      const bytes = yield* Fiber.join(fiber)
      assert.strictEqual(bytes.byteLength, 150)
    }),
  )

  it.effect("fails with TransferDidNotStart 60 s after the start without a byte, not before, and aborts", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, aborts, events } = yield* collect(input.stream)
      yield* TestClock.adjust(60_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      assert.strictEqual(failureOf(yield* ended(fiber), "TransferDidNotStart").waitedMs, 60_000)
      assert.strictEqual(aborts.length, 1)
      assert.deepStrictEqual(events[0]?._tag === "TransferIdle" && events[0].started, false)
    }),
  )

  it.effect("an abort that fails the byte stream (as a transport's does) does not hide why the receiver gave up", () =>
    Effect.gen(function* () {
      const input = yield* feed
      // The transport's abort fails the transfer's byte stream at once.
      const { fiber, aborts } = yield* collect(input.stream, {
        abort: (reason) =>
          Effect.andThen(
            Effect.sync(() => void aborts.push(reason)),
            input.fail,
          ),
      })
      yield* input.send(100)
      yield* TestClock.adjust(60_000)
      const error = failureOf(yield* ended(fiber), "TransferIdle")
      assert.strictEqual(error.bytes, 100)
      assert.strictEqual(aborts.length, 1)
    }),
  )

  it.effect("fails with TransferIdle as soon as no chunk comes for 60 s after the last one, not before", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, aborts, events } = yield* collect(input.stream)
      yield* TestClock.adjust(10_000)
      yield* input.send(100)
      yield* TestClock.adjust(50_000)
      yield* input.send(100)
      yield* TestClock.adjust(60_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      const error = failureOf(yield* ended(fiber), "TransferIdle")
      assert.deepStrictEqual({ bytes: error.bytes, idleMs: error.idleMs }, { bytes: 200, idleMs: 60_000 })
      assert.strictEqual(aborts.length, 1)
      assert.deepStrictEqual(
        { ...events[0] },
        { _tag: "TransferIdle", at: 120_000, bytes: 200, idleMs: 60_000, started: true },
      )
    }),
  )

  it.effect("fails with TransferTooLarge past maxBytes and aborts, but accepts exactly maxBytes", () =>
    Effect.gen(function* () {
      const big = yield* feed
      const tooLarge = yield* collect(big.stream, { maxBytes: 1000 })
      yield* big.send(600)
      yield* big.send(401)
      const error = failureOf(yield* ended(tooLarge.fiber), "TransferTooLarge")
      assert.deepStrictEqual({ bytes: error.bytes, maxBytes: error.maxBytes }, { bytes: 1001, maxBytes: 1000 })
      assert.strictEqual(tooLarge.aborts.length, 1)

      const exact = yield* feed
      const fits = yield* collect(exact.stream, { maxBytes: 1000 })
      yield* exact.send(600)
      yield* exact.send(400)
      yield* exact.end
      assert.strictEqual((yield* Fiber.join(fits.fiber)).byteLength, 1000)
    }),
  )

  it.effect("completes 5 s after the expected bytes are in when the end does not come", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, aborts } = yield* collect(input.stream, { expectedBytes: 300 })
      yield* input.send(300)
      yield* TestClock.adjust(5_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      const exit = yield* ended(fiber)
      assert.isTrue(Exit.isSuccess(exit) && exit.value.byteLength === 300)
      assert.deepStrictEqual(aborts, [])
    }),
  )

  it.effect("passes the stream's own failure through, without aborting or reporting idleness", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, aborts, events } = yield* collect(input.stream)
      yield* input.send(10)
      yield* input.fail
      assert.deepStrictEqual(yield* ended(fiber), Exit.fail(broken))
      assert.deepStrictEqual(aborts, [])
      assert.deepStrictEqual(events, [])
    }),
  )

  it.effect("reports TransferAbandoned when interrupted mid-transfer, and nothing once it ended", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, events } = yield* collect(input.stream)
      yield* input.send(10)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(
        events.map((event) => event._tag),
        ["TransferAbandoned"],
      )

      const done = yield* feed
      const finished = yield* collect(done.stream)
      yield* done.end
      yield* Fiber.join(finished.fiber)
      yield* Fiber.interrupt(finished.fiber)
      assert.deepStrictEqual(finished.events, [])
    }),
  )
})

describe("TransferTracker.forEach", () => {
  const consume = (
    stream: Stream.Stream<Uint8Array, Broken>,
    options: Partial<TransferTracker.CollectOptions> = {},
  ) => {
    const seen: Array<number> = []
    const aborts: Array<string> = []
    const fiber = Effect.forkChild(
      TransferTracker.forEach(stream, (chunk) => Effect.sync(() => void seen.push(chunk.byteLength)), {
        idleTimeout: "60 seconds",
        maxBytes: 1000,
        abort: (reason) => Effect.sync(() => void aborts.push(reason)),
        ...options,
      }),
    )
    return Effect.map(fiber, (fiber) => ({ fiber, seen, aborts }))
  }

  it.effect("hands each chunk over as it arrives and succeeds with the byte count, keeping nothing", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, seen } = yield* consume(input.stream)
      yield* input.send(100)
      assert.deepStrictEqual(seen, [100])
      yield* input.send(50)
      yield* input.end
      assert.strictEqual(yield* Fiber.join(fiber), 150)
      assert.deepStrictEqual(seen, [100, 50])
    }),
  )

  it.effect("gives up past maxBytes before the chunk that crosses it reaches the consumer", () =>
    Effect.gen(function* () {
      const input = yield* feed
      const { fiber, seen, aborts } = yield* consume(input.stream)
      yield* input.send(600)
      yield* input.send(401)
      failureOf(yield* ended(fiber), "TransferTooLarge")
      assert.deepStrictEqual(seen, [600])
      assert.strictEqual(aborts.length, 1)
    }),
  )

  it.effect(
    "is idle 60 s after the last chunk, not before, and fails with the consumer's own error without aborting",
    () =>
      Effect.gen(function* () {
        const input = yield* feed
        const { fiber, aborts } = yield* consume(input.stream)
        yield* input.send(10)
        yield* TestClock.adjust(60_000 - 1)
        assert.isTrue(yield* isRunning(fiber))
        yield* TestClock.adjust(1)
        failureOf(yield* ended(fiber), "TransferIdle")
        assert.strictEqual(aborts.length, 1)

        const refused = yield* feed
        const failing = yield* Effect.forkChild(
          TransferTracker.forEach(refused.stream, () => Effect.fail(broken), {
            maxBytes: 1000,
            abort: () => Effect.die("must not abort"),
          }),
        )
        yield* refused.send(10)
        assert.deepStrictEqual(yield* ended(failing), Exit.fail(broken))
      }),
  )
})
