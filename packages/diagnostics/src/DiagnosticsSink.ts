/**
 * Where reports go: the seed's "master client", injected into the
 * collectors' reporting as a Layer. A sink delivers one batch of reports;
 * batching, the bounded buffer, retries and failure accounting are
 * `Diagnostics`' job, so a sink only says whether a batch arrived and, when
 * not, whether trying again could help.
 *
 * Built-in sinks: `TransportSink` (to the fedguard server), `JsonLinesSink`
 * (a file) and `OtlpLogsSink` (an OpenTelemetry collector).
 *
 * @since 0.1.0
 */
import { TransportError } from "@fedguard/transport"
import { Context, Effect, Layer, Predicate, Schema } from "effect"
import type { DiagnosticsReport } from "./DiagnosticsReport.ts"

/**
 * The sink could not take the batch now (a file that cannot be written, an
 * OTLP endpoint that is down or answers 5xx/408/429, no connection).
 * Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class SinkUnavailable extends Schema.TaggedError<SinkUnavailable>()("SinkUnavailable", {
  sink: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `diagnostics sink ${this.sink} is unavailable: ${this.reason}`
  }
}

/**
 * The sink refused the batch (an OTLP endpoint answering 4xx, a server that
 * does not accept diagnostics). Final: the same batch would be refused again.
 *
 * @since 0.1.0
 * @category errors
 */
export class SinkRejected extends Schema.TaggedError<SinkRejected>()("SinkRejected", {
  sink: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `diagnostics sink ${this.sink} rejected the reports: ${this.reason}`
  }
}

/**
 * A send did not complete within `sendTimeout`. Retryable.
 *
 * @since 0.1.0
 * @category errors
 */
export class SinkTimeout extends Schema.TaggedError<SinkTimeout>()("SinkTimeout", {
  sink: Schema.String,
  timeoutMs: Schema.Number,
}) {
  override get message(): string {
    return `diagnostics sink ${this.sink} did not complete a send within ${this.timeoutMs} ms`
  }
}

/**
 * Every failure a sink reports: its own errors, or the transport's when it
 * sends over a fedguard connection.
 *
 * @since 0.1.0
 * @category errors
 */
export type SinkError = SinkUnavailable | SinkRejected | SinkTimeout | TransportError.TransportError

/**
 * The tags worth another attempt: `SinkUnavailable`, `SinkTimeout`, and the
 * transport's retryable tags (`SendTimeout`, `ConnectionClosed`,
 * `PeerUnreachable`).
 *
 * @since 0.1.0
 * @category classification
 */
export const retryableTags: ReadonlySet<string> = new Set([
  "SinkUnavailable",
  "SinkTimeout",
  ...TransportError.retryableTags,
])

/**
 * Whether a sink failure deserves another attempt, by its tag (never its
 * message). Unknown errors are not retried.
 *
 * @since 0.1.0
 * @category classification
 */
export const isRetryable = (error: unknown): boolean =>
  Predicate.hasProperty(error, "_tag") && Predicate.isString(error._tag) && retryableTags.has(error._tag)

/**
 * The sink service: `name` (on events and metric attributes) and `send`,
 * which delivers one non-empty batch, oldest report first.
 *
 * @since 0.1.0
 * @category services
 */
export class DiagnosticsSink extends Context.Service<
  DiagnosticsSink,
  {
    readonly name: string
    readonly send: (reports: ReadonlyArray<DiagnosticsReport>) => Effect.Effect<void, SinkError>
  }
>()("@fedguard/diagnostics/DiagnosticsSink") {}

/**
 * A sink from a `send` function, e.g. to forward reports to a service of the
 * application's own.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { DiagnosticsSink } from "@fedguard/diagnostics"
 * const LoggingSink = DiagnosticsSink.layerFromSend("log", (reports) => Effect.logInfo(reports))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layerFromSend = (
  name: string,
  send: (reports: ReadonlyArray<DiagnosticsReport>) => Effect.Effect<void, SinkError>,
): Layer.Layer<DiagnosticsSink> => Layer.succeed(DiagnosticsSink, DiagnosticsSink.of({ name, send }))

/**
 * A sink that discards everything: diagnostics off without removing the
 * collectors.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerDiscard: Layer.Layer<DiagnosticsSink> = layerFromSend("discard", () => Effect.void)
