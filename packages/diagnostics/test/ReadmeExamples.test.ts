import { assert, describe, it } from "@effect/vitest"
import { InMemoryTransport } from "@fedguard/transport"
import { Context, Effect, Fiber, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import { DiagnosticsLive, train } from "../examples/training-diagnostics.ts"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as DiagnosticsMessage from "../src/DiagnosticsMessage.ts"
import * as DiagnosticsMetrics from "../src/DiagnosticsMetrics.ts"
import { count, freshMetrics, settle } from "./support.ts"

// Each round takes 4 s of TestClock time and returns a loss of 1 / round.
const trainRound = (round: number) => Effect.as(Effect.sleep("4 seconds"), 1 / round)

const session = Effect.gen(function* () {
  const net = yield* InMemoryTransport.make
  const listener = yield* net.endpoint("server").listen("server")
  const client = yield* net.endpoint("client").connect("server")
  const server = Option.getOrThrow(yield* Stream.runHead(listener.connections))
  return { client, server }
})

describe("README example (examples/training-diagnostics.ts)", () => {
  it.effect("ships the round in progress at 10 s and 20 s of a 5-round run to the server, which decodes them", () =>
    Effect.gen(function* () {
      const { client, server } = yield* session
      const context = yield* Layer.build(DiagnosticsLive(client))
      const run = yield* Effect.forkChild(train(5, trainRound).pipe(Effect.provideContext(context)))
      yield* TestClock.adjust("20 seconds")
      yield* settle
      yield* Context.get(context, Diagnostics.Diagnostics).flush
      assert.deepStrictEqual(yield* Fiber.join(run), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5])
      const inbound = Option.getOrThrow(yield* Stream.runHead(server.inbound))
      assert.strictEqual(inbound._tag, "Message")
      if (inbound._tag !== "Message") return
      const message = yield* DiagnosticsMessage.fromEnvelope(inbound.envelope, "client-1")
      assert.deepStrictEqual(
        message.reports.map((r) => [r.collector, r.at, r.data]),
        [
          ["round", 10_000, { round: 3 }],
          ["round", 20_000, { round: 5 }],
        ],
      )
    }).pipe(freshMetrics),
  )

  it.effect("completes every round when the connection is closed and no report can be delivered", () =>
    Effect.gen(function* () {
      const { client } = yield* session
      yield* client.close("server went away")
      const context = yield* Layer.build(DiagnosticsLive(client))
      const run = yield* Effect.forkChild(train(10, trainRound).pipe(Effect.provideContext(context)))
      yield* TestClock.adjust("5 minutes")
      const losses = yield* Fiber.join(run)
      assert.strictEqual(losses.length, 10)
      assert.isAbove(yield* count(DiagnosticsMetrics.sinkFailures, { sink: "transport", error: "ConnectionClosed" }), 0)
      assert.strictEqual(yield* count(DiagnosticsMetrics.reported, { sink: "transport" }), 0)
    }).pipe(freshMetrics),
  )
})
