import { mkdtempSync, readFileSync } from "node:fs"
import { type AddressInfo, createServer as createNetServer, type Server } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/app-kit"
import { ClientSettings } from "@fedguard/fed-client/ClientSettings"
import * as FedClient from "@fedguard/fed-client/FedClient"
import * as FedServer from "@fedguard/fed-server/FedServer"
import * as Observability from "@fedguard/fed-server/Observability"
import { ServerSettings } from "@fedguard/fed-server/ServerSettings"
import { Envelope, InMemoryTransport, Transport } from "@fedguard/transport"
import { Effect, Fiber, Metric, Schema } from "effect"
import { HttpServer } from "effect/http"
import { otlpCollector } from "./support/OtlpCollector.ts"
import { is, portOf, runToEnd, seenOf, serverBin, startClient, startServer, waitFor } from "./support/Processes.ts"
import { httpGet, parseStrict, sampleValue } from "./support/Prometheus.ts"
import { rogue, tcp } from "./support/Rogue.ts"

const secret = "observability-secret-1"
const rounds = 3

const reportFile = () => join(mkdtempSync(join(tmpdir(), "fedguard-observability-")), "report.json")
const readReport = (path: string) => Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(path, "utf8")))

const client = (port: number, id: string, index: number, flags: ReadonlyArray<string> = []) =>
  startClient(port, { id, index, count: 2, secret, flags: ["--diagnostics-interval", "200ms", ...flags] })

const sum = (values: ReadonlyArray<number>) => values.reduce((total, value) => total + value, 0)

describe("diagnostics from fed-clients to fed-server (real processes over TCP)", () => {
  it.live(
    "a client whose diagnostics the server refuses (--accept-diagnostics false) still completes every round",
    () =>
      Effect.gen(function* () {
        const reportPath = reportFile()
        const server = yield* startServer(secret, [
          "--expected-clients",
          "2",
          "--min-clients",
          "2",
          "--rounds",
          String(rounds),
          "--report",
          reportPath,
          "--accept-diagnostics",
          "false",
        ])
        const port = yield* portOf(server)
        const clients = [yield* client(port, "a", 0), yield* client(port, "b", 1)]
        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const report = readReport(reportPath)
        assert.deepStrictEqual(
          report.rounds.map((round) => round.participants),
          [
            ["a", "b"],
            ["a", "b"],
            ["a", "b"],
          ],
        )
        // Both clients did send diagnostics: each was refused (announced once), none was kept.
        assert.deepStrictEqual(
          seenOf(server, "DiagnosticsRefused")
            .map((event) => event.id)
            .sort(),
          ["a", "b"],
        )
        assert.isUndefined(report.diagnostics)
        assert.deepStrictEqual(seenOf(server, "ClientWentOffline"), [])
        for (const c of clients) assert.isTrue(c.seen().some((e) => e._tag === "TrainingCompleted"))
      }).pipe(Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )

  it.live(
    "a normal run: the report holds each client's latest diagnostics, a client sending malformed ones trains every round, /metrics parses mid-run, and the rounds' spans reach an OTLP collector",
    () =>
      Effect.gen(function* () {
        const collector = yield* otlpCollector
        const reportPath = reportFile()
        const server = yield* startServer(secret, [
          "--expected-clients",
          "3",
          "--min-clients",
          "3",
          "--rounds",
          String(rounds),
          "--report",
          reportPath,
          "--metrics-port",
          "0",
          "--otlp-endpoint",
          collector.url,
        ])
        const port = yield* portOf(server)
        // Announced before the server listens for clients (the endpoint is up first).
        const [metrics] = seenOf(server, "MetricsListening")
        assert.isDefined(metrics)
        assert.strictEqual(metrics!.host, "127.0.0.1")
        // An authenticated participant that uploads honestly and sends a malformed diagnostics
        // message (an empty collector name) before each upload.
        const malformed = Envelope.make("diagnostics", { reports: [{ collector: "", at: 1, data: { x: 1 } }] })
        yield* rogue(port, {
          id: "r",
          secret,
          samples: 100,
          poison: (model) => model,
          beforeUpload: (connection) => connection.send(malformed),
        })
        const clients = [
          yield* client(port, "a", 0, ["--otlp-endpoint", collector.url]),
          yield* client(port, "b", 1, ["--otlp-endpoint", collector.url]),
        ]
        yield* waitFor(server, is("RoundCompleted"))
        const scrape = yield* httpGet(`http://127.0.0.1:${metrics!.port}/metrics`)
        assert.strictEqual(scrape.status, 200)
        assert.match(scrape.contentType ?? "", /^text\/plain; version=0\.0\.4/)
        assert.isAtLeast(sampleValue(parseStrict(scrape.body), "fedguard_server_rounds_completed_total"), 1)

        assert.strictEqual(yield* server.exitCode, 0, server.stderr())
        for (const c of clients) assert.strictEqual(yield* c.exitCode, 0, c.stderr())
        const report = readReport(reportPath)
        // The client with malformed diagnostics took part in every round; nobody was excluded.
        assert.deepStrictEqual(
          report.rounds.map((round) => [round.participants, round.excluded]),
          Array.from({ length: rounds }, () => [["a", "b", "r"], []]),
        )
        assert.deepStrictEqual(seenOf(server, "ClientWentOffline"), [])
        const rejected = seenOf(server, "DiagnosticsRejected")
        assert.deepStrictEqual(
          rejected.map((event) => [event.id, event.path]),
          Array.from({ length: rounds }, () => ["r", "reports.0.collector"]),
        )
        // Each honest client's latest report of each collector; the rogue's rejections counted.
        const byId = new Map((report.diagnostics ?? []).map((entry) => [entry.id, entry]))
        for (const id of ["a", "b"]) {
          const entry = byId.get(id)
          assert.isDefined(entry, `diagnostics of ${id}`)
          const names = entry!.reports.map((r) => r.collector)
          assert.includeMembers(names, ["metrics", "resource-usage"])
          assert.strictEqual(new Set(names).size, names.length, "one report per collector: the latest")
          assert.isAtLeast(entry!.messages, 1)
          assert.strictEqual(entry!.rejected, 0)
          const usage = entry!.reports.find((r) => r.collector === "resource-usage")?.data as {
            readonly memory?: { readonly rss?: number }
          }
          assert.isAbove(usage.memory?.rss ?? 0, 0, JSON.stringify(usage))
        }
        assert.deepStrictEqual(
          [byId.get("r")?.rejected, byId.get("r")?.messages, byId.get("r")?.reports],
          [rounds, 0, []],
        )

        // Spans: the server's exporter flushes when it ends, the clients' too.
        const serverSpans = collector.spanNames("fed-server")
        const count = (name: string) => serverSpans.filter((span) => span === name).length
        assert.strictEqual(count("RoundCoordinator.run"), rounds, serverSpans.join(", "))
        assert.strictEqual(count("RoundCoordinator.aggregate"), rounds)
        assert.isAtLeast(count("RoundCoordinator.receive"), 3 * rounds)
        assert.strictEqual(count("TrainingJob.run"), 1)
        assert.isAtLeast(collector.spanNames("fed-client").filter((span) => span === "FedClient.session").length, 2)
        assert.includeMembers([...new Set(collector.paths())], ["/v1/traces", "/v1/metrics", "/v1/logs"])
      }).pipe(Effect.provide(tcp), Effect.scoped, Effect.timeout("60 seconds")),
    90_000,
  )
})

describe("the observability flags on the command line", () => {
  it.live("--metrics-port on a port in use exits 1 naming the flag; a malformed --otlp-endpoint exits 2", () =>
    Effect.gen(function* () {
      const taken = yield* Effect.acquireRelease(
        Effect.callback<Server>((resume) => {
          const holder = createNetServer()
          holder.listen(0, "127.0.0.1", () => resume(Effect.succeed(holder)))
        }),
        (holder) => Effect.sync(() => holder.close()),
      )
      const port = (taken.address() as AddressInfo).port
      const env = { FED_SERVER_SECRET: secret, FED_SERVER_STATE: ":memory:" }
      const inUse = yield* runToEnd(serverBin, ["--port", "0", "--metrics-port", String(port)], env)
      assert.strictEqual(inUse.code, 1, inUse.stderr)
      assert.match(inUse.stderr, new RegExp(`--metrics-port: cannot listen on 127\\.0\\.0\\.1:${port}`))
      const badUrl = yield* runToEnd(serverBin, ["--otlp-endpoint", "collector:4318"], env)
      assert.strictEqual(badUrl.code, 2, badUrl.stderr)
      assert.match(badUrl.stderr, /otlpEndpoint \(from --otlp-endpoint\): expected an http\(s\) URL/)
    }).pipe(Effect.scoped),
  )
})

describe("/metrics of a finished run (one process, the in-memory transport)", () => {
  it.live(
    "parses as Prometheus text and carries the run's figures: rounds, bytes, exclusions, accuracy, diagnostics",
    () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const settings = Schema.decodeUnknownSync(ServerSettings)({
          state: ":memory:",
          host: "server",
          port: "1",
          expectedClients: "2",
          minClients: "2",
          rounds: String(rounds),
          secret,
        })
        // The server's metrics in a registry of their own: the clients in this process keep theirs apart.
        const observed = Effect.gen(function* () {
          const endpoint = yield* HttpServer.HttpServer
          const report = yield* FedServer.run(settings)
          const scrape = yield* httpGet(`http://127.0.0.1:${Observability.portOf(endpoint)}/metrics`)
          return { report, scrape }
        }).pipe(
          Effect.provide(Observability.metricsEndpoint({ host: "127.0.0.1", port: 0 })),
          Effect.provideService(Metric.MetricRegistry, new Map()),
          Effect.provideService(Transport.Transport, network.endpoint("server")),
        )
        const server = yield* Effect.forkChild(observed)
        const participant = (index: number) =>
          FedClient.run(
            Schema.decodeUnknownSync(ClientSettings)({
              server: "server:1",
              id: `c${index}`,
              secret,
              shardIndex: String(index),
              shardCount: "2",
              retryBaseDelay: "50ms",
              diagnosticsInterval: "100ms",
            }),
          ).pipe(Effect.provideService(Transport.Transport, network.endpoint(`c${index}`)))
        const clients = yield* Effect.forkChild(Effect.all([participant(0), participant(1)], { concurrency: 2 }))
        const { report, scrape } = yield* Fiber.join(server)
        yield* Fiber.join(clients)

        const families = parseStrict(scrape.body)
        assert.strictEqual(report.rounds.length, rounds)
        assert.strictEqual(sampleValue(families, "fedguard_server_rounds_completed_total"), report.rounds.length)
        assert.strictEqual(
          sampleValue(families, "fedguard_server_update_bytes_in_total"),
          sum(report.rounds.map((round) => round.bytesIn)),
        )
        assert.strictEqual(
          sampleValue(families, "fedguard_server_model_bytes_out_total"),
          sum(report.rounds.map((round) => round.bytesOut)),
        )
        assert.isAbove(sampleValue(families, "fedguard_server_model_bytes_out_total"), 0)
        assert.strictEqual(
          sampleValue(families, "fedguard_server_exclusions_total"),
          sum(report.rounds.map((round) => round.excluded.length)),
        )
        assert.strictEqual(
          sampleValue(families, "fedguard_server_updates_rejected_total"),
          sum(report.rounds.map((round) => round.rejectedUpdates)),
        )
        assert.strictEqual(sampleValue(families, "fedguard_server_test_accuracy"), report.rounds.at(-1)?.testAccuracy)
        const durations = families.find((family) => family.name === "fedguard_server_round_duration_millis")
        assert.strictEqual(durations?.type, "HISTOGRAM")
        assert.strictEqual(Number(durations?.metrics[0]?.count), rounds)
        // Messages may still arrive between the report and the scrape: at least the report's.
        const kept = sum((report.diagnostics ?? []).map((entry) => entry.messages))
        assert.isAbove(kept, 0)
        assert.isAtLeast(
          sampleValue(families, "fedguard_server_diagnostics_messages_total", { outcome: "accepted" }),
          kept,
        )
        // The packages' metrics are served too: clients alive (liveness), beats received.
        const alive = families.find((family) => family.name === "fedguard_heartbeat_clients_online")
        assert.strictEqual(alive?.type, "GAUGE")
        assert.isAbove(sampleValue(families, "fedguard_heartbeat_beats_received_total"), 0)
      }).pipe(
        Effect.scoped,
        Effect.provide(InMemoryTransport.layerNetwork),
        Effect.provide(NodeServices.layer),
        Effect.timeout("60 seconds"),
      ),
    90_000,
  )
})
