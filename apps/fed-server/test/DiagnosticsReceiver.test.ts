import { assert, describe, it } from "@effect/vitest"
import { DiagnosticsMessage, type DiagnosticsReport } from "@fedguard/diagnostics"
import { Envelope } from "@fedguard/transport"
import { Effect, Layer, Metric, type Schema } from "effect"
import * as DiagnosticsReceiver from "../src/DiagnosticsReceiver.ts"
import * as ServerEvents from "../src/ServerEvents.ts"
import * as ServerMetrics from "../src/ServerMetrics.ts"
import { honest, scriptedClient, serverUp, settingsWith, settle, until, withServer } from "./support/Harness.ts"

const report = (collector: string, at: number, data: Schema.Json): DiagnosticsReport.DiagnosticsReport => ({
  collector,
  at,
  data,
})

const message = (...reports: ReadonlyArray<DiagnosticsReport.DiagnosticsReport>) =>
  DiagnosticsMessage.toEnvelope(reports)

/** A receiver alone, over a fresh event hub. */
const receiverWith = (options: DiagnosticsReceiver.Options) =>
  Effect.gen(function* () {
    return { receiver: yield* DiagnosticsReceiver.DiagnosticsReceiver }
  }).pipe(Effect.provide(DiagnosticsReceiver.layer(options).pipe(Layer.provide(ServerEvents.layer))))

describe("DiagnosticsReceiver: what is kept per client", () => {
  it.effect("keeps the newest report of each collector, and an older one does not replace it", () =>
    Effect.gen(function* () {
      const { receiver } = yield* receiverWith({})
      yield* receiver.receive("c1", message(report("resource-usage", 10, { rss: 1 }), report("metrics", 11, [1])))
      yield* receiver.receive("c1", message(report("resource-usage", 20, { rss: 2 })))
      yield* receiver.receive("c1", message(report("resource-usage", 15, { rss: 9 })))
      const [c1] = yield* receiver.snapshot
      assert.deepStrictEqual(c1?.reports, [report("metrics", 11, [1]), report("resource-usage", 20, { rss: 2 })])
      assert.strictEqual(c1?.messages, 3)
      // The stale report is counted as not kept; the replaced one is not a loss.
      assert.strictEqual(c1?.dropped, 1)
    }),
  )

  it.effect("keeps at most maxCollectors collectors per client: the one heard from longest ago goes first", () =>
    Effect.gen(function* () {
      const { receiver } = yield* receiverWith({ maxCollectors: 2 })
      yield* receiver.receive("c1", message(report("a", 1, 1), report("b", 2, 2)))
      const [before] = yield* receiver.snapshot
      assert.deepStrictEqual(
        before?.reports.map((r) => r.collector),
        ["a", "b"],
      )
      assert.strictEqual(before?.dropped, 0)
      yield* receiver.receive("c1", message(report("c", 3, 3)))
      const [after] = yield* receiver.snapshot
      assert.deepStrictEqual(
        after?.reports.map((r) => r.collector),
        ["b", "c"],
      )
      assert.strictEqual(after?.dropped, 1)
    }),
  )

  it.effect("keeps at most maxBytes of data per client; a report larger than that alone is not kept", () =>
    Effect.gen(function* () {
      // JSON of "xxxxxxxx" is 10 bytes.
      const { receiver } = yield* receiverWith({ maxBytes: 25 })
      yield* receiver.receive("c1", message(report("a", 1, "xxxxxxxx"), report("b", 2, "xxxxxxxx")))
      const [two] = yield* receiver.snapshot
      assert.strictEqual(two?.reports.length, 2)
      yield* receiver.receive("c1", message(report("c", 3, "xxxxxxxx")))
      const [evicted] = yield* receiver.snapshot
      assert.deepStrictEqual(
        evicted?.reports.map((r) => r.collector),
        ["b", "c"],
      )
      yield* receiver.receive("c1", message(report("huge", 4, "x".repeat(30))))
      const [last] = yield* receiver.snapshot
      assert.deepStrictEqual(
        last?.reports.map((r) => r.collector),
        ["b", "c"],
      )
      assert.strictEqual(last?.dropped, 2)
      // Clients are bounded separately.
      yield* receiver.receive("c2", message(report("a", 1, "xxxxxxxx")))
      assert.deepStrictEqual(
        (yield* receiver.snapshot).map((c) => [c.id, c.reports.length]),
        [
          ["c1", 2],
          ["c2", 1],
        ],
      )
    }),
  )

  it.effect("a malformed message is counted with the field it names and keeps nothing; a good one is still taken", () =>
    Effect.gen(function* () {
      const { receiver } = yield* receiverWith({})
      yield* receiver.receive("c1", Envelope.make("diagnostics", { reports: [{ collector: "", at: 1, data: 1 }] }))
      const [rejected] = yield* receiver.snapshot
      assert.strictEqual(rejected?.rejected, 1)
      assert.strictEqual(rejected?.messages, 0)
      assert.match(rejected?.lastRejection ?? "", /^reports\.0\.collector: /)
      assert.deepStrictEqual(rejected?.reports, [])
      yield* receiver.receive("c1", message(report("metrics", 5, { ok: true })))
      const [after] = yield* receiver.snapshot
      assert.strictEqual(after?.messages, 1)
      assert.deepStrictEqual(after?.reports, [report("metrics", 5, { ok: true })])
    }),
  )

  it.effect("with accept false nothing is kept or decoded, and the refusal is counted as a metric", () =>
    Effect.gen(function* () {
      const refused = Metric.withAttributes(ServerMetrics.diagnosticsMessages, { outcome: "refused" })
      const before = (yield* Metric.value(refused)).count
      const { receiver } = yield* receiverWith({ accept: false })
      yield* receiver.receive("c1", message(report("metrics", 1, 1)))
      yield* receiver.receive("c1", Envelope.make("diagnostics", "garbage"))
      assert.deepStrictEqual(yield* receiver.snapshot, [])
      assert.strictEqual((yield* Metric.value(refused)).count - before, 2)
    }),
  )
})

describe("DiagnosticsReceiver: diagnostics on an authenticated session", () => {
  it.effect("a client's diagnostics are kept under its session's id, and the session goes on", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const receiver = yield* DiagnosticsReceiver.DiagnosticsReceiver
      const { connection } = yield* scriptedClient(network, "c1", 100, honest(0, 100))
      yield* until(seen, (e) => e._tag === "ClientJoined")
      yield* connection.send(message(report("resource-usage", 7, { rss: 123 })))
      yield* settle()
      const [c1] = yield* receiver.snapshot
      assert.strictEqual(c1?.id, "c1")
      assert.deepStrictEqual(c1?.reports, [report("resource-usage", 7, { rss: 123 })])
      assert.isTrue(yield* connection.isOpen)
    }).pipe(withServer(settingsWith())),
  )

  it.effect(
    "a malformed diagnostics message is a DiagnosticsRejected event naming the field, and the session is not ended (an undecodable protocol message is)",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const receiver = yield* DiagnosticsReceiver.DiagnosticsReceiver
        const { connection } = yield* scriptedClient(network, "c1", 100, honest(0, 100))
        yield* until(seen, (e) => e._tag === "ClientJoined")
        yield* connection.send(Envelope.make("diagnostics", { reports: [{ collector: "x", at: -5, data: 1 }] }))
        yield* until(seen, (e) => e._tag === "DiagnosticsRejected")
        const rejected = seen.find((e) => e._tag === "DiagnosticsRejected")
        assert.strictEqual(rejected?._tag === "DiagnosticsRejected" ? rejected.id : undefined, "c1")
        assert.strictEqual(rejected?._tag === "DiagnosticsRejected" ? rejected.path : undefined, "reports.0.at")
        assert.isTrue(yield* connection.isOpen)
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
        // The session still routes: a good message after it is kept.
        yield* connection.send(message(report("metrics", 9, [1])))
        yield* settle()
        assert.deepStrictEqual((yield* receiver.snapshot)[0]?.reports, [report("metrics", 9, [1])])

        // The twin: an undecodable message of any other tag ends the session.
        const other = yield* scriptedClient(network, "c2", 100, honest(0, 100))
        yield* until(seen, (e) => e._tag === "ClientJoined" && e.id === "c2")
        yield* other.connection.send(Envelope.make("no-such-message", {}))
        yield* until(seen, (e) => e._tag === "ClientWentOffline" && e.id === "c2")
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline" && e.id === "c1"))
      }).pipe(withServer(settingsWith())),
  )

  it.effect(
    "--accept-diagnostics false: the first message is announced once, nothing is kept, the session goes on",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const receiver = yield* DiagnosticsReceiver.DiagnosticsReceiver
        const { connection } = yield* scriptedClient(network, "c1", 100, honest(0, 100))
        yield* until(seen, (e) => e._tag === "ClientJoined")
        yield* connection.send(message(report("metrics", 1, 1), report("resource-usage", 2, 2)))
        yield* connection.send(message(report("metrics", 3, 3)))
        yield* until(seen, (e) => e._tag === "DiagnosticsRefused")
        yield* settle()
        const refusals = seen.filter((e) => e._tag === "DiagnosticsRefused")
        assert.deepStrictEqual(
          refusals.map((e) => (e._tag === "DiagnosticsRefused" ? [e.id, e.reports] : [])),
          [["c1", 2]],
        )
        assert.deepStrictEqual(yield* receiver.snapshot, [])
        assert.isTrue(yield* connection.isOpen)
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
      }).pipe(withServer(settingsWith({ acceptDiagnostics: "false" }))),
  )
})
