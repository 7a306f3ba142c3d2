import { assert, describe, it } from "@effect/vitest"
import { Effect, Layer } from "effect"
import { HttpClient, type HttpClientRequest, HttpClientResponse } from "effect/http"
import { OtlpSerialization } from "effect/observability"
import * as DiagnosticsSink from "../src/DiagnosticsSink.ts"
import * as OtlpLogsSink from "../src/OtlpLogsSink.ts"

// The part of an OTLP/JSON logs request the tests read.
interface AnyValue {
  readonly stringValue?: string
  readonly intValue?: number | string
}
interface KeyValue {
  readonly key: string
  readonly value: AnyValue
}
interface LogsRequest {
  readonly resourceLogs: ReadonlyArray<{
    readonly resource: { readonly attributes: Array<KeyValue> }
    readonly scopeLogs: ReadonlyArray<{
      readonly logRecords: ReadonlyArray<{
        readonly attributes: Array<KeyValue>
        readonly severityText: string
        readonly body: AnyValue
      }>
    }>
  }>
}

// An OTLP endpoint in memory: it records each request's URL and JSON body and answers `status`.
const endpoint = (statusOf: (request: number) => number) => {
  const requests: Array<{ readonly url: string; readonly body: LogsRequest }> = []
  const client = HttpClient.make((request: HttpClientRequest.HttpClientRequest, url) =>
    Effect.sync(() => {
      const body = request.body._tag === "Uint8Array" ? new TextDecoder().decode(request.body.body) : undefined
      requests.push({ url: url.toString(), body: body === undefined ? undefined : JSON.parse(body) })
      return HttpClientResponse.fromWeb(request, new Response(null, { status: statusOf(requests.length) }))
    }),
  )
  return { requests, layer: Layer.succeed(HttpClient.HttpClient, client) }
}

// The sink's Layer lives for the whole test: its exporter closes with it.
const withSink = <A, E>(
  server: ReturnType<typeof endpoint>,
  use: (sink: DiagnosticsSink.DiagnosticsSink["Service"]) => Effect.Effect<A, E>,
) =>
  Effect.flatMap(DiagnosticsSink.DiagnosticsSink, use).pipe(
    Effect.provide(
      OtlpLogsSink.layer({
        url: "http://collector.test:4318/v1/logs",
        resource: { serviceName: "fed-client", attributes: { "fedguard.client_id": "client-1" } },
      }).pipe(Layer.provide([server.layer, OtlpSerialization.layerJson])),
    ),
  )

const attribute = (attributes: ReadonlyArray<KeyValue>, key: string) => attributes.find((a) => a.key === key)?.value

describe("OtlpLogsSink", () => {
  it.effect("exports a batch as one OTLP/HTTP logs request, one record per report, with its collector and time", () =>
    Effect.gen(function* () {
      const server = endpoint(() => 200)
      yield* withSink(server, (sink) =>
        sink
          .send([
            { collector: "log-tail", at: 1_000, data: { lines: ["round 1 done"] } },
            { collector: "resource-usage", at: 2_000, data: { rss: 123 } },
          ])
          .pipe(Effect.andThen(sink.send([{ collector: "metrics", at: 3_000, data: [1] }]))),
      )
      const [request] = server.requests
      assert.strictEqual(request?.url, "http://collector.test:4318/v1/logs")
      const resourceLogs = request!.body.resourceLogs[0]!
      assert.strictEqual(attribute(resourceLogs.resource.attributes, "service.name")?.stringValue, "fed-client")
      assert.strictEqual(attribute(resourceLogs.resource.attributes, "fedguard.client_id")?.stringValue, "client-1")
      const [first, second] = resourceLogs.scopeLogs[0]!.logRecords
      assert.strictEqual(resourceLogs.scopeLogs[0]!.logRecords.length, 2)
      assert.strictEqual(attribute(first!.attributes, "diagnostics.collector")?.stringValue, "log-tail")
      assert.strictEqual(Number(attribute(second!.attributes, "diagnostics.collected_at")?.intValue), 2_000)
      assert.strictEqual(first!.severityText, "Info")
      assert.deepStrictEqual(JSON.parse(second!.body.stringValue ?? "null"), { rss: 123 })
      assert.strictEqual(server.requests.length, 2, "each send is its own export; nothing is sent twice")
      assert.strictEqual(server.requests[1]?.body.resourceLogs[0]?.scopeLogs[0]?.logRecords.length, 1)
    }),
  )

  it.effect("a 4xx answer is SinkRejected (final); while the exporter pauses after it, sends are SinkUnavailable", () =>
    Effect.gen(function* () {
      const server = endpoint((n) => (n === 1 ? 400 : 200))
      const [rejected, paused] = yield* withSink(server, (sink) =>
        Effect.all([
          Effect.flip(sink.send([{ collector: "c", at: 0, data: 1 }])),
          Effect.flip(sink.send([{ collector: "c", at: 1, data: 2 }])),
        ]),
      )
      assert.strictEqual(rejected._tag, "SinkRejected")
      assert.include(rejected.message, "HTTP 400")
      assert.isFalse(DiagnosticsSink.isRetryable(rejected))
      assert.strictEqual(paused._tag, "SinkUnavailable")
      assert.isTrue(DiagnosticsSink.isRetryable(paused))
      assert.strictEqual(server.requests.length, 1, "the paused exporter sent nothing")
    }),
  )
})
