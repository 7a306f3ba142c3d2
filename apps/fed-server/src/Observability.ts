/**
 * What fed-server shows of itself in standard formats, with Effect's own
 * `effect/observability`: a Prometheus `/metrics` endpoint
 * (`--metrics-port`, served with `effect/http` on Node), OTLP export of
 * traces, metrics and logs (`--otlp-endpoint`, `Telemetry`), and whether it
 * takes the clients' diagnostics (`--accept-diagnostics`). The metrics
 * themselves are `ServerMetrics`' and the packages'.
 *
 * The endpoint serves every Effect `Metric` of the process's registry, so it
 * shows the packages' metrics (heartbeat, retry, stall guard, memory cleanup,
 * diagnostics) next to the server's own. It binds 127.0.0.1 unless
 * `--metrics-host` says otherwise: metrics name clients and reasons, and
 * have no authentication.
 *
 * @since 0.4.0
 */
import { createServer } from "node:http"
import { NodeHttpServer } from "@effect/platform-node"
import { Settings, Telemetry } from "@fedguard/app-kit"
import { Effect, Layer, Schema } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import type { OtlpExporter } from "effect/observability"
import { PrometheusMetrics } from "effect/observability"
import * as ServerEvent from "./ServerEvent.ts"

/**
 * The settings fields this module adds to `ServerSettings` (spread into its
 * struct): `acceptDiagnostics` (`"true"` by default), `metricsPort` (no
 * endpoint unless given; 0 picks a free port), `metricsHost` (default
 * `127.0.0.1`) and `otlpEndpoint` (no export unless given).
 *
 * @since 0.4.0
 * @category settings
 */
export const fields = {
  acceptDiagnostics: Schema.Literals(["true", "false"]).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("true" as const)),
  ),
  metricsPort: Schema.optionalKey(Settings.int(0, 65535)),
  metricsHost: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1, { message: "must not be empty" })),
    Schema.withDecodingDefaultKey(Effect.succeed("127.0.0.1")),
  ),
  ...Telemetry.fields,
}

/**
 * The `--help` lines of {@link fields}.
 *
 * @since 0.4.0
 * @category settings
 */
export const descriptions = {
  acceptDiagnostics:
    "true: keep each client's latest diagnostics (bounded: 16 collectors, 256 KiB per client) for the report; false: drop them (default true)",
  metricsPort: "Serve Prometheus metrics at http://HOST:PORT/metrics; 0 picks a free port (default: no endpoint)",
  metricsHost: "Address the metrics endpoint binds (default 127.0.0.1; it has no authentication)",
  ...Telemetry.descriptions,
} as const

/**
 * The observability settings, as `ServerSettings` decodes them.
 *
 * @since 0.4.0
 * @category settings
 */
export type ObservabilitySettings = Schema.Struct.Type<typeof fields>

/**
 * The metrics endpoint could not listen (a port in use, an address that is
 * not this host's).
 *
 * @since 0.4.0
 * @category errors
 */
export class MetricsEndpointFailed extends Schema.TaggedError<MetricsEndpointFailed>()("MetricsEndpointFailed", {
  host: Schema.String,
  port: Schema.Int,
  reason: Schema.String,
}) {
  override get message(): string {
    return `--metrics-port: cannot listen on ${this.host}:${this.port}: ${this.reason}`
  }
}

/**
 * `GET /metrics` in the Prometheus text format (version 0.0.4) on
 * `host:port`, for the Layer's lifetime, over the `MetricRegistry` the Layer
 * is built with (the process's, unless one is provided). Its output is the
 * `HttpServer`, whose `address` has the bound port (for port 0).
 *
 * @since 0.4.0
 * @category layers
 */
export const metricsEndpoint = (options: {
  readonly host: string
  readonly port: number
}): Layer.Layer<HttpServer.HttpServer, MetricsEndpointFailed> =>
  HttpRouter.serve(PrometheusMetrics.layerHttp(), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(
      Layer.effect(
        HttpServer.HttpServer,
        NodeHttpServer.make(createServer, { host: options.host, port: options.port }).pipe(
          Effect.mapError(
            (error) =>
              new MetricsEndpointFailed({
                ...options,
                reason: error.cause instanceof Error ? error.cause.message : String(error.cause),
              }),
          ),
        ),
      ),
    ),
  )

/**
 * The port an `HttpServer` is bound to (0 for a Unix socket).
 *
 * @since 0.4.0
 * @category layers
 */
export const portOf = (server: HttpServer.HttpServer["Service"]): number =>
  server.address._tag === "UnixPathAddress" ? 0 : server.address.port

/**
 * What `bin.ts` provides around the server: the metrics endpoint when
 * `metricsPort` is set (announced by a `MetricsListening` line) and the OTLP
 * exporters when `otlpEndpoint` is set; nothing otherwise.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (settings: ObservabilitySettings): Layer.Layer<OtlpExporter.Flusher, MetricsEndpointFailed> => {
  const telemetry = Telemetry.layer({ endpoint: settings.otlpEndpoint, serviceName: "fed-server" })
  if (settings.metricsPort === undefined) return telemetry
  const endpoint = Layer.effectDiscard(
    Effect.gen(function* () {
      const server = yield* HttpServer.HttpServer
      yield* ServerEvent.lines.log(
        new ServerEvent.MetricsListening({ host: settings.metricsHost, port: portOf(server) }),
      )
    }),
  ).pipe(Layer.provide(metricsEndpoint({ host: settings.metricsHost, port: settings.metricsPort })))
  return Layer.mergeAll(telemetry, endpoint)
}
