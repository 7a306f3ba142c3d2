import { assert, describe, it } from "@effect/vitest"
import { RetryPolicy } from "@fedguard/retry"
import { type Connection, Envelope, InMemoryTransport, Transport } from "@fedguard/transport"
import { Effect, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as DiagnosticsMessage from "../src/DiagnosticsMessage.ts"
import type { DiagnosticsReport } from "../src/DiagnosticsReport.ts"
import * as TransportSink from "../src/TransportSink.ts"
import { freshMetrics, record, settle } from "./support.ts"

// A server endpoint listening on an in-memory network, and a client endpoint's Transport.
const network = Effect.gen(function* () {
  const net = yield* InMemoryTransport.make
  const listener = yield* net.endpoint("server").listen("server")
  const client = Layer.succeed(Transport.Transport, Transport.Transport.of(net.endpoint("client")))
  return { net, listener, client }
})

// The next message the server receives on `connection`, decoded as untrusted input.
const receive = (connection: Connection.Connection) =>
  Effect.gen(function* () {
    const inbound = yield* Stream.runHead(connection.inbound)
    const item = Option.getOrThrow(inbound)
    assert.strictEqual(item._tag, "Message")
    return yield* DiagnosticsMessage.fromEnvelope(
      item._tag === "Message" ? item.envelope : Envelope.make("x"),
      "client",
    )
  })

const reports: Array<DiagnosticsReport> = [
  { collector: "log-tail", at: 1_000, data: { path: "client.log", lines: ["round 3 done"] } },
  { collector: "resource-usage", at: 1_000, data: { memory: { rss: 123_456 } } },
]

describe("TransportSink", () => {
  it.effect("sends a batch as one diagnostics message that decodes on the server side of the transport", () =>
    Effect.gen(function* () {
      const { listener, client } = yield* network
      const sinkContext = yield* Layer.build(TransportSink.layerConnect("server").pipe(Layer.provide(client)))
      const diagnostics = yield* Diagnostics.make({ batchSize: 2 }).pipe(Effect.provideContext(sinkContext))
      const events = yield* record(diagnostics.subscribe)
      for (const report of reports) yield* diagnostics.report(report.collector, report.data)
      const connection = Option.getOrThrow(yield* Stream.runHead(listener.connections))
      const message = yield* receive(connection)
      assert.deepStrictEqual(
        message.reports.map((r) => [r.collector, r.data]),
        reports.map((r) => [r.collector, r.data]),
      )
      yield* settle
      assert.deepStrictEqual(
        events.filter((e) => e._tag === "DiagnosticsReported").map((e) => [e.sink, e.reports]),
        [["transport", 2]],
      )
    }).pipe(freshMetrics),
  )

  it.effect("reconnects after the server was unreachable, and delivers the batch on the new connection", () =>
    Effect.gen(function* () {
      const { net, listener, client } = yield* network
      const sinkContext = yield* Layer.build(TransportSink.layerConnect("server").pipe(Layer.provide(client)))
      const policy = RetryPolicy.make({ maxRetries: 5, baseDelay: "100 millis", jitter: "none" })
      const diagnostics = yield* Diagnostics.make({ batchSize: 1, retry: policy }).pipe(
        Effect.provideContext(sinkContext),
      )
      const events = yield* record(diagnostics.subscribe)
      yield* diagnostics.report("first", 1)
      const connections = yield* Stream.toPull(listener.connections)
      const first = yield* connections
      assert.deepStrictEqual((yield* receive(first[0]!)).reports[0]?.data, 1)

      yield* net.kill("server")
      yield* diagnostics.report("second", 2)
      yield* TestClock.adjust(100 + 200) // two failed attempts
      yield* net.revive("server")
      yield* TestClock.adjust(400) // the third retry connects again
      const second = yield* connections
      assert.deepStrictEqual((yield* receive(second[0]!)).reports[0]?.data, 2)
      yield* settle
      const reported = events.filter((e) => e._tag === "DiagnosticsReported")
      assert.deepStrictEqual(
        reported.map((e) => e.attempts),
        [1, 4],
      )
    }).pipe(freshMetrics),
  )
})

describe("DiagnosticsMessage", () => {
  it.effect("a malformed diagnostics message is a DecodeError naming the field, and the connection stays usable", () =>
    Effect.gen(function* () {
      const { net, listener } = yield* network
      const clientConnection = yield* net.endpoint("client").connect("server")
      const serverConnection = Option.getOrThrow(yield* Stream.runHead(listener.connections))
      const cases: ReadonlyArray<readonly [Envelope.Envelope, string | undefined, string]> = [
        [
          Envelope.make("diagnostics", { reports: [{ collector: "", at: 1, data: 1 }] }),
          "reports.0.collector",
          "length",
        ],
        [
          Envelope.make("diagnostics", { reports: [reports[0]!, { collector: "c", at: -5, data: 1 }] } as never),
          "reports.1.at",
          "greater than or equal to 0",
        ],
        [Envelope.make("diagnostics", { reports: [{ collector: "c", at: 1 }] }), "reports.0.data", "Missing key"],
        [Envelope.make("diagnostics", { reports: [] }), "reports", "length"],
        [
          Envelope.make("diagnostics", {
            reports: Array.from({ length: DiagnosticsMessage.maxReports + 1 }, () => ({
              collector: "c",
              at: 1,
              data: 1,
            })),
          }),
          "reports",
          "length",
        ],
        [Envelope.make("diagnostics", "not an object"), undefined, "Expected DiagnosticsMessage"],
        [Envelope.make("heartbeat", { reports: [] }), "tag", 'expected a "diagnostics" envelope'],
      ]
      for (const [envelope, path, why] of cases) {
        yield* clientConnection.send(envelope)
        const inbound = Option.getOrThrow(yield* Stream.runHead(serverConnection.inbound))
        const error = yield* Effect.flip(
          DiagnosticsMessage.fromEnvelope(
            inbound._tag === "Message" ? inbound.envelope : Envelope.make("x"),
            "client-1",
          ),
        )
        assert.strictEqual(error._tag, "DecodeError")
        assert.strictEqual(error.peer, "client-1")
        assert.strictEqual(error.path, path, error.message)
        assert.include(error.reason, why)
      }
      // The valid twin, on the same connection after all the bad ones.
      yield* clientConnection.send(DiagnosticsMessage.toEnvelope(reports))
      const message = yield* receive(serverConnection)
      assert.deepStrictEqual(message.reports, reports)
    }),
  )
})
