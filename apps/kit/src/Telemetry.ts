/**
 * OpenTelemetry export for the reference apps, with Effect's own
 * `effect/observability` modules: `--otlp-endpoint URL` sends the app's
 * traces (`Effect.fn` / `Effect.withSpan` spans: rounds, uploads,
 * aggregation), its Effect `Metric`s and its log lines to an OTLP/HTTP
 * collector (`URL/v1/traces`, `URL/v1/metrics`, `URL/v1/logs`, JSON
 * encoding). Without the flag nothing is exported and no exporter runs.
 *
 * The exporters batch in the background and flush when the app ends
 * (bounded by a shutdown timeout of 5 s), so a collector that is down
 * never blocks or fails training: Effect's exporters drop what they cannot
 * send. The JSON-lines log on stdout is kept: the OTLP logger is added
 * next to it, not instead of it.
 *
 * @since 0.4.0
 */
import { type Duration, Layer, Schema } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp, OtlpExporter } from "effect/observability"

/**
 * An OTLP/HTTP base URL: `http://` or `https://`, a host, an optional port
 * and path (`http://127.0.0.1:4318`); the signal paths (`/v1/traces`, …) are
 * appended to it.
 *
 * @since 0.4.0
 * @category schemas
 */
export const OtlpEndpoint = Schema.String.pipe(
  Schema.check(
    Schema.isPattern(/^https?:\/\/[^\s/?#]+(\/[^\s?#]*)?$/, {
      message: "expected an http(s) URL of an OTLP/HTTP collector, e.g. http://127.0.0.1:4318",
    }),
  ),
)

/**
 * The settings field both apps embed (spread into their settings struct).
 *
 * @since 0.4.0
 * @category settings
 */
export const fields = {
  otlpEndpoint: Schema.optionalKey(OtlpEndpoint),
}

/**
 * The `--help` line of {@link fields}.
 *
 * @since 0.4.0
 * @category settings
 */
export const descriptions = {
  otlpEndpoint:
    "Export traces, metrics and logs to this OTLP/HTTP collector (JSON to URL/v1/traces, /v1/metrics, /v1/logs; default: no export)",
} as const

/**
 * Options of {@link layer}: the collector's base URL (`endpoint`; no export
 * when `undefined`), the `service.name` resource attribute, and how often
 * each signal is exported (`exportInterval`, default 5 s; the last batch is
 * flushed when the Layer's Scope closes, within `shutdownTimeout`, default
 * 5 s).
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly endpoint: string | undefined
  readonly serviceName: string
  readonly attributes?: Record<string, unknown> | undefined
  readonly exportInterval?: Duration.Input | undefined
  readonly shutdownTimeout?: Duration.Input | undefined
}

/**
 * The OTLP exporters (tracer, metrics reader, logger) over `fetch`, or
 * nothing when `endpoint` is `undefined`. Its output, the exporters'
 * `Flusher`, forces an export now. Provide it around the whole
 * program, inside the JSON-lines logger's Layer so that the OTLP logger is
 * added to it.
 *
 * @example
 * ```ts
 * program.pipe(Effect.provide(Telemetry.layer({ endpoint: settings.otlpEndpoint, serviceName: "fed-server" })))
 * ```
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<OtlpExporter.Flusher> => {
  // Without an endpoint: a Flusher over an empty registry, so `flush` is always there.
  if (options.endpoint === undefined) return OtlpExporter.layerFlusher
  const interval = options.exportInterval ?? "5 seconds"
  return Otlp.layerJson({
    baseUrl: options.endpoint,
    resource: { serviceName: options.serviceName, attributes: options.attributes ?? {} },
    tracerExportInterval: interval,
    metricsExportInterval: interval,
    loggerExportInterval: interval,
    shutdownTimeout: options.shutdownTimeout ?? "5 seconds",
  }).pipe(Layer.provide(FetchHttpClient.layer))
}
