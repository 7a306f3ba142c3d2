/**
 * Test support: an OTLP/HTTP collector stub on 127.0.0.1 (port 0) that
 * answers 200 to every POST and keeps what it was sent, decoded as OTLP
 * JSON: the span names of `/v1/traces` by service, and the paths hit.
 * Closed with the test's Scope.
 */
import { createServer } from "node:http"
import { Effect, type Scope } from "effect"

interface ExportedSpans {
  readonly resourceSpans?: ReadonlyArray<{
    readonly resource?: { readonly attributes?: ReadonlyArray<{ readonly key: string; readonly value: unknown }> }
    readonly scopeSpans?: ReadonlyArray<{ readonly spans?: ReadonlyArray<{ readonly name: string }> }>
  }>
}

export interface OtlpCollector {
  /** `http://127.0.0.1:PORT`, for `--otlp-endpoint`. */
  readonly url: string
  /** Every request path so far (`/v1/traces`, `/v1/metrics`, `/v1/logs`). */
  readonly paths: () => ReadonlyArray<string>
  /** The names of every span exported so far by the service `service` (its `service.name`). */
  readonly spanNames: (service: string) => ReadonlyArray<string>
}

const serviceOf = (resource: NonNullable<ExportedSpans["resourceSpans"]>[number]["resource"]): string => {
  const entry = resource?.attributes?.find((attribute) => attribute.key === "service.name")
  const value = entry?.value as { readonly stringValue?: string } | undefined
  return value?.stringValue ?? "?"
}

export const otlpCollector: Effect.Effect<OtlpCollector, never, Scope.Scope> = Effect.gen(function* () {
  const paths: Array<string> = []
  const spans: Array<{ readonly service: string; readonly name: string }> = []
  const server = createServer((request, response) => {
    const chunks: Array<Buffer> = []
    request.on("data", (chunk: Buffer) => chunks.push(chunk))
    request.on("end", () => {
      paths.push(request.url ?? "")
      if (request.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as ExportedSpans
        for (const resource of body.resourceSpans ?? []) {
          const service = serviceOf(resource.resource)
          for (const scope of resource.scopeSpans ?? [])
            for (const span of scope.spans ?? []) spans.push({ service, name: span.name })
        }
      }
      response.writeHead(200, { "content-type": "application/json" })
      response.end("{}")
    })
  })
  const port = yield* Effect.acquireRelease(
    Effect.callback<number>((resume) => {
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        resume(Effect.succeed(typeof address === "object" && address !== null ? address.port : 0))
      })
    }),
    // The exporters keep their connections alive: end them, or close would wait for them.
    () =>
      Effect.callback<void>((resume) => {
        server.close(() => resume(Effect.void))
        server.closeAllConnections()
      }),
  )
  return {
    url: `http://127.0.0.1:${port}`,
    paths: () => paths,
    spanNames: (service) => spans.filter((span) => span.service === service).map((span) => span.name),
  }
})
