import { assert, describe, it } from "@effect/vitest"
import { InMemoryTransport } from "@fedguard/transport"
import { Effect, Exit, Stream } from "effect"
import { TestClock } from "effect/testing"
import { sendModel } from "../examples/guarded-upload.ts"
import { connectPair, ended, failureOf, isRunning, nextTransfer, payload } from "./support.ts"

describe("README example (examples/guarded-upload.ts)", () => {
  it.effect(
    "delivers the model to a receiver that reads it, and fails with AckStalled 60 s into a stall, not before",
    () =>
      Effect.gen(function* () {
        const { client, server } = yield* connectPair
        const delivered = yield* Effect.forkChild(Effect.scoped(sendModel(client, payload(10_000))))
        const transfer = yield* nextTransfer(server)
        yield* Stream.runDrain(transfer.bytes)
        const exit = yield* ended(delivered)
        assert.isTrue(Exit.isSuccess(exit) && exit.value.bytes === 10_000)

        const stalled = yield* Effect.forkChild(Effect.scoped(sendModel(client, payload(10_000))))
        yield* nextTransfer(server) // announced, never read
        yield* TestClock.adjust(60_000 - 1)
        assert.isTrue(yield* isRunning(stalled))
        yield* TestClock.adjust(1)
        failureOf(yield* ended(stalled), "AckStalled")
      }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
  )
})
