import { assert, describe, it } from "@effect/vitest"
import { InMemoryTransport } from "@fedguard/transport"
import { Clock, Effect, Exit, Metric, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as AckProgressWatchdog from "../src/AckProgressWatchdog.ts"
import type * as StallEvent from "../src/StallEvent.ts"
import * as StallMetrics from "../src/StallMetrics.ts"
import { connectPair, ended, failureOf, isRunning, nextTransfer, payload, settle } from "./support.ts"

// A send the test drives: it reports the offsets it is told to, and never completes on its own.
const scriptedSend = Effect.gen(function* () {
  let report: ((acked: number) => Effect.Effect<void>) | undefined
  let interrupted = false
  const events: Array<StallEvent.AckStalled> = []
  const watch = (options: AckProgressWatchdog.Options) =>
    AckProgressWatchdog.watch(
      (onProgress) => {
        report = onProgress
        return Effect.never.pipe(Effect.onInterrupt(() => Effect.sync(() => (interrupted = true))))
      },
      { ...options, onEvent: (event) => Effect.sync(() => events.push(event)) },
    )
  return {
    watch,
    ack: (offset: number) => settle.pipe(Effect.andThen(Effect.suspend(() => report!(offset)))),
    events,
    interrupted: () => interrupted,
  }
})

describe("AckProgressWatchdog", () => {
  it.effect("fails with AckStalled 60 s after the start of a send without ACK progress, not before", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({}))
      yield* TestClock.adjust(60_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      assert.deepStrictEqual(send.events, [])
      yield* TestClock.adjust(1)
      const error = failureOf(yield* ended(fiber), "AckStalled")
      assert.deepStrictEqual({ offset: error.offset, sinceMs: error.sinceMs }, { offset: 0, sinceMs: 60_000 })
      assert.isTrue(send.interrupted())
    }),
  )

  it.effect("restarts on progress: an offset advanced at 7 s fails at the 70 s check (63 s idle), not at 67 s", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({}))
      yield* TestClock.adjust(7_000)
      yield* send.ack(4096)
      yield* TestClock.adjust(70_000 - 7_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      const error = failureOf(yield* ended(fiber), "AckStalled")
      assert.deepStrictEqual({ offset: error.offset, sinceMs: error.sinceMs }, { offset: 4096, sinceMs: 63_000 })
      assert.strictEqual(send.events[0]?.timeoutMs, 60_000)
    }),
  )

  it.effect("does not count an offset that stays put or goes back as progress", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({}))
      yield* send.ack(4096)
      for (let i = 0; i < 11; i++) {
        yield* TestClock.adjust(5_000)
        yield* send.ack(i % 2 === 0 ? 4096 : 1024)
      }
      yield* TestClock.adjust(5_000)
      const error = failureOf(yield* ended(fiber), "AckStalled")
      assert.deepStrictEqual({ offset: error.offset, sinceMs: error.sinceMs }, { offset: 4096, sinceMs: 60_000 })
    }),
  )

  it.effect("never fails a send whose offset keeps advancing, however long it runs", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({}))
      for (let i = 1; i <= 100; i++) {
        yield* TestClock.adjust(59_000)
        yield* send.ack(i * 1024)
      }
      assert.isTrue(yield* isRunning(fiber))
      assert.deepStrictEqual(send.events, [])
    }),
  )

  it.effect("clamps a check interval below 10 ms to 10 ms: a 1005 ms timeout fires at the 1010 ms check", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({ ackProgressTimeout: 1005, checkInterval: "1 millis" }))
      yield* TestClock.adjust(1009)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      assert.strictEqual(failureOf(yield* ended(fiber), "AckStalled").sinceMs, 1010)
    }),
  )

  it.effect("clamps a check interval above the timeout to the timeout: 10 minute checks still fire at 60 s", () =>
    Effect.gen(function* () {
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({ checkInterval: "10 minutes" }))
      yield* TestClock.adjust(60_000 - 1)
      assert.isTrue(yield* isRunning(fiber))
      yield* TestClock.adjust(1)
      assert.strictEqual(failureOf(yield* ended(fiber), "AckStalled").sinceMs, 60_000)
    }),
  )

  it.effect("stops checking when the send completes: no AckStalled after a send that finished at 59 s", () =>
    Effect.gen(function* () {
      const events: Array<StallEvent.AckStalled> = []
      const before = (yield* Metric.value(StallMetrics.ackStalls)).count
      const fiber = yield* Effect.forkChild(
        AckProgressWatchdog.watch(() => Effect.as(Effect.sleep(59_000), "receipt"), {
          onEvent: (event) => Effect.sync(() => events.push(event)),
        }),
      )
      yield* TestClock.adjust(59_000)
      const exit = yield* ended(fiber)
      yield* TestClock.adjust("10 minutes")
      assert.deepStrictEqual(exit, Exit.succeed("receipt"))
      assert.deepStrictEqual(events, [])
      assert.strictEqual((yield* Metric.value(StallMetrics.ackStalls)).count, before)
    }),
  )

  it.effect("passes the send's own failure through unchanged", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(AckProgressWatchdog.watch(() => Effect.fail({ _tag: "Rejected" as const })))
      assert.deepStrictEqual(exit, Exit.fail({ _tag: "Rejected" as const }))
    }),
  )

  it.effect("counts each stall in the ackStalls metric and reports it as an event", () =>
    Effect.gen(function* () {
      const before = (yield* Metric.value(StallMetrics.ackStalls)).count
      const send = yield* scriptedSend
      const fiber = yield* Effect.forkChild(send.watch({ ackProgressTimeout: "1 second", checkInterval: "1 second" }))
      yield* TestClock.adjust(1_000)
      yield* ended(fiber)
      assert.strictEqual((yield* Metric.value(StallMetrics.ackStalls)).count, before + 1)
      assert.strictEqual(send.events.length, 1)
      assert.deepStrictEqual(
        { ...send.events[0] },
        { _tag: "AckStalled", at: 1_000, offset: 0, sinceMs: 1_000, timeoutMs: 1_000 },
      )
    }),
  )

  describe("over an in-memory connection", () => {
    it.effect("trips on a receiver whose endpoint stalls, and the receiver learns the sender gave up", () =>
      Effect.gen(function* () {
        const { network, client, server } = yield* connectPair
        const sending = yield* Effect.forkChild(
          AckProgressWatchdog.watch(
            (onProgress) => client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000)), { onProgress }),
            { ackProgressTimeout: "10 seconds", checkInterval: "1 second" },
          ),
        )
        const transfer = yield* nextTransfer(server)
        // Two chunks are consumed (2048 acked), then the server stops reading its link altogether.
        yield* transfer.bytes.pipe(Stream.take(2), Stream.runDrain)
        yield* settle
        yield* network.stall("server")
        yield* TestClock.adjust(10_000 - 1)
        assert.isTrue(yield* isRunning(sending))
        yield* TestClock.adjust(1)
        const error = failureOf(yield* ended(sending), "AckStalled")
        assert.deepStrictEqual({ offset: error.offset, sinceMs: error.sinceMs }, { offset: 2048, sinceMs: 10_000 })
        yield* network.resume("server")
        const rest = yield* Effect.exit(Stream.runDrain(transfer.bytes))
        assert.include(failureOf(rest, "ConnectionClosed").reason, "sender gave up")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("restarts on ACK progress: a receiver that stops pulling at 5 s fails the send at 15 s", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair
        const sending = yield* Effect.forkChild(
          AckProgressWatchdog.watch(
            (onProgress) => client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000)), { onProgress }),
            { ackProgressTimeout: "10 seconds", checkInterval: "1 second" },
          ),
        )
        const transfer = yield* nextTransfer(server)
        yield* TestClock.adjust(5_000)
        yield* transfer.bytes.pipe(Stream.take(1), Stream.runDrain)
        yield* settle
        yield* TestClock.adjust(10_000 - 1)
        assert.isTrue(yield* isRunning(sending))
        yield* TestClock.adjust(1)
        failureOf(yield* ended(sending), "AckStalled")
        assert.strictEqual(yield* Clock.currentTimeMillis, 15_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )

    it.effect("does not trip on a slow receiver whose ACKs keep advancing, however long the transfer", () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair
        const sending = yield* Effect.forkChild(
          AckProgressWatchdog.watch(
            (onProgress) => client.sendBytes({ tag: "blob" }, Stream.make(payload(20_000)), { onProgress }),
            { ackProgressTimeout: "10 seconds", checkInterval: "1 second" },
          ),
        )
        const transfer = yield* nextTransfer(server)
        // One chunk every 9 s: each ACK comes before the timeout, the whole transfer takes minutes.
        yield* Effect.forkChild(transfer.bytes.pipe(Stream.runForEach(() => Effect.sleep("9 seconds"))))
        for (let i = 0; i < 25; i++) yield* TestClock.adjust("9 seconds")
        const exit = yield* ended(sending)
        assert.isTrue(Exit.isSuccess(exit))
        if (Exit.isSuccess(exit)) assert.strictEqual(exit.value.bytes, 20_000)
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
    )
  })
})
