import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Protocol } from "@fedguard/app-kit"
import { DiagnosticsMessage, type DiagnosticsReport } from "@fedguard/diagnostics"
import { Heartbeat } from "@fedguard/heartbeat"
import { type Connection, Envelope, InMemoryTransport, Transport } from "@fedguard/transport"
import { type Duration, Effect, Fiber, Schema, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as ClientDiagnostics from "../src/ClientDiagnostics.ts"
import type { ClientSettings } from "../src/ClientSettings.ts"
import * as FedClient from "../src/FedClient.ts"
import { environment, recordEvents, settingsOf, welcome } from "./support/FakeServer.ts"

const decodeBeat = Schema.decodeUnknownEffect(Heartbeat.Heartbeat)
const encodeAck = Schema.encodeSync(Heartbeat.HeartbeatAck)

/**
 * A server at `server:1` that challenges, welcomes after `welcomeAfter`, acks every beat, and
 * records the tag of every envelope it receives and every diagnostics report.
 */
const diagnosticsServer = (welcomeAfter: Duration.Input = 0) =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    const listener = yield* network.endpoint("server").listen("server:1")
    const tags: Array<string> = []
    const reports: Array<DiagnosticsReport.DiagnosticsReport> = []
    const serve = (connection: Connection.Connection) =>
      Effect.gen(function* () {
        yield* connection.send(Protocol.toEnvelope({ _tag: "challenge", nonce: "n1" }))
        yield* connection.inbound.pipe(
          Stream.runForEach((item) =>
            Effect.gen(function* () {
              if (item._tag === "Transfer") return
              const { envelope } = item
              tags.push(envelope.tag)
              if (envelope.tag === Heartbeat.heartbeatTag) {
                const beat = yield* decodeBeat(envelope.body)
                return yield* connection.send(Envelope.make(Heartbeat.ackTag, encodeAck({ seq: beat.seq })))
              }
              if (envelope.tag === DiagnosticsMessage.tag) {
                reports.push(...(yield* DiagnosticsMessage.fromEnvelope(envelope, "c0")).reports)
                return
              }
              const message = yield* Protocol.fromEnvelope(envelope, "c0")
              if (message._tag === "join") {
                yield* Effect.forkScoped(
                  Effect.andThen(Effect.sleep(welcomeAfter), connection.send(Protocol.toEnvelope(welcome()))),
                )
              }
            }),
          ),
        )
      })
    yield* listener.connections.pipe(
      Stream.runForEach((connection) => Effect.forkScoped(Effect.ignore(serve(connection)))),
      Effect.forkScoped,
    )
    return { tags, reports }
  })

/** The client as `FedClient.run` composes it, on the tiny data of the other tests. */
const startClient = (settings: ClientSettings) =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    return yield* FedClient.participate(settings).pipe(
      Effect.provide(ClientDiagnostics.layer(settings)),
      Effect.provideService(Transport.Transport, network.endpoint(settings.id)),
      Effect.forkChild,
    )
  })

/** Lets other fibers run (no virtual time passes) until `condition` holds; dies if it never does. */
const until = (condition: () => boolean, what = "condition") =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000 && !condition(); i++) yield* Effect.yieldNow
    if (!condition()) return yield* Effect.die(`${what} not reached`)
  })

const collectors = (reports: ReadonlyArray<DiagnosticsReport.DiagnosticsReport>) =>
  [...new Set(reports.map((report) => report.collector))].sort()

describe("ClientDiagnostics: the client's collectors over its session", () => {
  it.effect(
    "sends every collector's reading at the welcome, then resource usage and metrics every interval, the process report every 30, and nothing before the join",
    () =>
      Effect.gen(function* () {
        const server = yield* diagnosticsServer()
        const events = yield* recordEvents
        const client = yield* startClient(settingsOf({ diagnosticsInterval: "1s" }))
        yield* events.next("Joined")
        // (The metrics snapshot is empty this early, before the first beat: empty data is not sent.)
        yield* until(() => server.reports.length >= 2, "the welcome's readings")
        assert.includeMembers(collectors(server.reports), ["process-report", "resource-usage"])
        assert.isTrue(server.reports.every((report) => report.at === 0))
        assert.strictEqual(server.tags[0], "join")
        const atWelcome = server.reports.length
        const since = () => server.reports.slice(atWelcome)
        // The first scheduled run is one interval in; its batch leaves one batch interval later.
        yield* TestClock.adjust("1999 millis")
        assert.deepStrictEqual(since(), [])
        yield* TestClock.adjust("1 millis")
        yield* until(() => since().length >= 2, "the first interval's readings")
        assert.deepStrictEqual(collectors(since()), ["metrics", "resource-usage"])
        // The process report is slow: every 30 intervals.
        yield* TestClock.adjust("27 seconds")
        yield* Effect.yieldNow
        assert.isFalse(since().some((report) => report.collector === "process-report"))
        yield* TestClock.adjust("3 seconds")
        yield* until(() => since().some((report) => report.collector === "process-report"), "the process report")
        yield* Fiber.interrupt(client)
      }).pipe(Effect.scoped, Effect.provide(environment), Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("--diagnostics false ships nothing", () =>
    Effect.gen(function* () {
      const server = yield* diagnosticsServer()
      const events = yield* recordEvents
      const client = yield* startClient(settingsOf({ diagnosticsInterval: "1s", diagnostics: "false" }))
      yield* events.next("Joined")
      yield* TestClock.adjust("40 seconds")
      yield* Effect.yieldNow
      assert.deepStrictEqual(server.reports, [])
      assert.isFalse(server.tags.includes(DiagnosticsMessage.tag))
      assert.isTrue(server.tags.includes(Heartbeat.heartbeatTag))
      yield* Fiber.interrupt(client)
    }).pipe(Effect.scoped, Effect.provide(environment), Effect.provide(NodeFileSystem.layer)),
  )

  it.effect(
    "reports collected while no session is welcomed are not sent on the unwelcomed connection, and the session is not disturbed",
    () =>
      Effect.gen(function* () {
        // The welcome comes 5 s after the join: meanwhile the sink has no session and fails.
        const server = yield* diagnosticsServer("5 seconds")
        const events = yield* recordEvents
        const client = yield* startClient(settingsOf({ diagnosticsInterval: "1s", joinTimeout: "30s" }))
        yield* until(() => server.tags.includes("join"))
        yield* TestClock.adjust("4 seconds")
        yield* Effect.yieldNow
        assert.deepStrictEqual(server.tags, ["join"])
        yield* TestClock.adjust("1 second")
        yield* events.next("Joined")
        yield* until(() => server.reports.length > 0)
        assert.isFalse(client.pollUnsafe() !== undefined, "the session is still running")
        yield* Fiber.interrupt(client)
      }).pipe(Effect.scoped, Effect.provide(environment), Effect.provide(NodeFileSystem.layer)),
  )
})
