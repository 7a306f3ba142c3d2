/**
 * The OTLP logs sink: each report becomes one OpenTelemetry log record,
 * exported over OTLP/HTTP by Effect's own `effect/observability` logger
 * (`OtlpLogger`), so that any OpenTelemetry collector or vendor endpoint
 * takes a client's diagnostics next to its traces and metrics.
 *
 * A record's body is the report's `data` as JSON text (OTLP's structured
 * values would turn an object into Effect's own formatting); its attributes are
 * `diagnostics.collector` and `diagnostics.collected_at` (epoch ms), plus
 * the resource attributes given.
 *
 * `OtlpLogger` exports in the background and swallows failures (it retries
 * transient HTTP failures three times, 1 s apart, then disables itself for
 * 60 s). A sink must say whether a batch arrived, so this one drives the
 * exporter itself: it logs the batch's records, flushes the exporter at once,
 * and watches the HTTP client the exporter uses. The last response decides:
 * 2xx is delivered, 408/429/5xx or no connection is `SinkUnavailable`
 * (retryable), any other status is `SinkRejected` (final). A flush that sent
 * nothing (the exporter is in its 60 s pause) is `SinkUnavailable`.
 *
 * @since 0.1.0
 */
import { Config, Context, Effect, Exit, Layer, Logger, Option, References, Semaphore } from "effect"
import { type Headers, HttpClient, type HttpClientResponse } from "effect/http"
import { OtlpExporter, OtlpLogger, type OtlpSerialization } from "effect/observability"
import { DiagnosticsSink, SinkRejected, SinkUnavailable } from "./DiagnosticsSink.ts"

/**
 * Options of the sink:
 *
 * - `url`: the OTLP/HTTP logs endpoint (`http://collector:4318/v1/logs`).
 * - `resource`: `serviceName` (e.g. `"fed-client"`; default: the
 *   `OTEL_SERVICE_NAME` variable, else `"fedguard"`), `serviceVersion` and
 *   `attributes` (e.g. `{ "fedguard.client_id": "client-1" }`; merged over
 *   `OTEL_RESOURCE_ATTRIBUTES`).
 * - `headers`, `compression` (`"none"` or `"gzip"`): as `OtlpLogger`.
 * - `name` (`"otlp"`): the sink's name on events and metrics.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly url: string
  readonly resource?:
    | {
        readonly serviceName?: string | undefined
        readonly serviceVersion?: string | undefined
        readonly attributes?: Record<string, unknown>
      }
    | undefined
  readonly headers?: Headers.Input | undefined
  readonly compression?: "gzip" | "none" | undefined
  readonly name?: string | undefined
}

type Outcome = { readonly status: number } | { readonly error: string }

const transientStatuses: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504])

/**
 * The sink over the `HttpClient` (e.g. `FetchHttpClient.layer`) and the
 * `OtlpSerialization` (`OtlpSerialization.layerJson` or `layerProtobuf`) in
 * context.
 *
 * @example
 * ```ts
 * import { OtlpLogsSink } from "@fedguard/diagnostics"
 * import { Layer } from "effect"
 * import { FetchHttpClient } from "effect/http"
 * import { OtlpSerialization } from "effect/observability"
 *
 * const OtlpSinkLive = OtlpLogsSink.layer({
 *   url: "http://127.0.0.1:4318/v1/logs",
 *   resource: { serviceName: "fed-client", attributes: { "fedguard.client_id": "client-1" } },
 * }).pipe(Layer.provide([FetchHttpClient.layer, OtlpSerialization.layerJson]))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<DiagnosticsSink, never, HttpClient.HttpClient | OtlpSerialization.OtlpSerialization> =>
  Layer.effect(
    DiagnosticsSink,
    Effect.gen(function* () {
      const name = options.name ?? "otlp"
      // OtlpLogger dies without a service name; a diagnostics sink must not take the process down.
      const serviceName =
        options.resource?.serviceName ??
        Option.getOrElse(
          yield* Config.option(Config.String("OTEL_SERVICE_NAME")).pipe(Effect.orElseSucceed(Option.none)),
          () => "fedguard",
        )
      const client = yield* HttpClient.HttpClient
      // What the exporter's requests returned during the current send.
      let outcomes: Array<Outcome> = []
      const record = (exit: Exit.Exit<HttpClientResponse.HttpClientResponse, unknown>) =>
        Effect.sync(() => {
          outcomes.push(
            Exit.isSuccess(exit)
              ? { status: exit.value.status }
              : { error: String(exit.cause).split("\n")[0] ?? "request failed" },
          )
        })
      const watched = HttpClient.transformResponse(client, (response) => Effect.onExit(response, record))
      // A flusher of our own, so that `flush` drains this exporter only.
      const flusher = Context.get(yield* Layer.build(OtlpExporter.layerFlusher), OtlpExporter.Flusher)
      const logger = yield* OtlpLogger.make({
        url: options.url,
        resource: { ...options.resource, serviceName },
        headers: options.headers,
        compression: options.compression,
        // Exports happen at `flush`, in `send`; the exporter's own timer must not take the records first.
        exportInterval: "365 days",
        maxBatchSize: Number.MAX_SAFE_INTEGER,
        shutdownTimeout: "1 second",
      }).pipe(
        Effect.provideService(HttpClient.HttpClient, watched),
        Effect.provideService(OtlpExporter.Flusher, flusher),
      )
      const loggers: ReadonlySet<Logger.Logger<unknown, unknown>> = new Set([logger])
      const lock = yield* Semaphore.make(1)

      return DiagnosticsSink.of({
        name,
        send: (reports) =>
          lock.withPermits(1)(
            Effect.gen(function* () {
              outcomes = []
              yield* Effect.forEach(
                reports,
                (report) =>
                  Effect.logInfo(JSON.stringify(report.data)).pipe(
                    Effect.annotateLogs({
                      "diagnostics.collector": report.collector,
                      "diagnostics.collected_at": report.at,
                    }),
                  ),
                { discard: true },
              ).pipe(
                Effect.provideService(Logger.CurrentLoggers, loggers),
                Effect.provideService(References.MinimumLogLevel, "All"),
              )
              yield* flusher.flush
              const last = outcomes.at(-1)
              if (last === undefined) {
                return yield* new SinkUnavailable({
                  sink: name,
                  reason: "the OTLP exporter sent nothing (it pauses for 60 s after a failed export)",
                })
              }
              if ("error" in last) return yield* new SinkUnavailable({ sink: name, reason: last.error })
              if (last.status >= 200 && last.status < 300) return
              const reason = `${options.url} answered HTTP ${last.status}`
              return yield* transientStatuses.has(last.status)
                ? new SinkUnavailable({ sink: name, reason })
                : new SinkRejected({ sink: name, reason })
            }),
          ),
      })
    }),
  )
