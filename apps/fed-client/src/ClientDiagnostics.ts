/**
 * The client's diagnostics: `@fedguard/diagnostics`' built-in collectors
 * (resource usage, the Effect metrics, Node's process report at a slow
 * cadence, and the tail of a log file when one is given) shipped to the
 * server through the transport sink, over the client's own session: no
 * second connection, no second handshake, and the server knows who sent
 * them from the session.
 *
 * Reports are sent only on a session the server has welcomed (a frame
 * before the join would fail the handshake); at each welcome every collector
 * is read at once and sent, so the server has the client's state from its
 * join on, however short the session. Between sessions the sink
 * refuses a batch at once (`Rejected`, final): those reports are
 * dropped, counted and logged, rather than retried against a connection that
 * is not there; a send that fails on the session's connection
 * (`ConnectionClosed`, `SendTimeout`) is retried twice within about a second.
 * The retries are short on purpose: when the client ends, its last flush
 * waits for a batch in flight, retries included. A sink failure is an event, a metric and a warning line, never an
 * error for training: the pipeline has no error channel, and it runs in its
 * own fibers beside the session.
 *
 * Settings: `--diagnostics false` turns it off; `--diagnostics-interval`
 * (default 10 s) is the cadence of the resource usage, the metrics snapshot
 * and the log tail, and the longest a report waits before its batch is
 * sent; the process report comes every 30 intervals (5 min by default);
 * `--diagnostics-log-file FILE` adds the log tail.
 *
 * @since 0.4.0
 */
import { Settings, Telemetry } from "@fedguard/app-kit"
import {
  Diagnostics,
  DiagnosticsConfig,
  DiagnosticsSink,
  ProcessReport,
  ResourceUsage,
  TransportSink,
} from "@fedguard/diagnostics"
import { RetryPolicy } from "@fedguard/retry"
import { type Connection, TransportError } from "@fedguard/transport"
import { Context, Duration, Effect, type FileSystem, Layer, Option, Ref, Schema, type Scope, Stream } from "effect"
import { ClientEvents } from "./ClientEvents.ts"

/**
 * The settings fields this module adds to `ClientSettings` (spread into its
 * struct): `diagnostics` (`"true"` by default), `diagnosticsInterval`
 * (milliseconds, default 10 s), `diagnosticsLogFile` (no log tail unless
 * given) and `otlpEndpoint` (no export unless given).
 *
 * @since 0.4.0
 * @category settings
 */
export const fields = {
  diagnostics: Schema.Literals(["true", "false"]).pipe(Schema.withDecodingDefaultKey(Effect.succeed("true" as const))),
  diagnosticsInterval: Settings.positiveMillis("10s"),
  diagnosticsLogFile: Schema.optionalKey(
    Schema.String.pipe(Schema.check(Schema.isMinLength(1, { message: "must not be empty" }))),
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
  diagnostics:
    "true: send resource usage, metrics and the process report to the server over the session; false: send none (default true)",
  diagnosticsInterval:
    "Cadence of the resource usage, metrics snapshot and log tail, and longest wait before a batch is sent; the process report comes every 30 intervals (default 10s)",
  diagnosticsLogFile:
    "Also send the new lines of this log file, at most 64 KiB and 200 lines per interval (default: none)",
  ...Telemetry.descriptions,
} as const

/**
 * The diagnostics settings, as `ClientSettings` decodes them.
 *
 * @since 0.4.0
 * @category settings
 */
export type DiagnosticsSettings = Schema.Struct.Type<typeof fields>

/**
 * The process report's cadence in diagnostics intervals: every 30
 * (5 minutes at the default 10 s): it is the largest report and changes
 * slowly.
 *
 * @since 0.4.0
 * @category settings
 */
export const processReportEvery = 30

/**
 * The retries of a failed send: 2 retries, 250 ms base delay, 1 s cap, up
 * to 250 ms of additive jitter.
 *
 * @since 0.4.0
 * @category settings
 */
export const retry: RetryPolicy.RetryPolicy = RetryPolicy.make({
  maxRetries: 2,
  baseDelay: "250 millis",
  maxDelay: "1 second",
  additiveJitter: "250 millis",
})

/**
 * The pipeline's configuration from the settings: the package's batching
 * and buffer defaults (batches of 50, 1000 reports buffered at most), a 5 s
 * send timeout and {@link retry}, the interval as batch interval and cadence, the process report
 * every {@link processReportEvery} intervals, the log tail when a file is
 * given.
 *
 * @since 0.4.0
 * @category settings
 */
export const config = (settings: DiagnosticsSettings): DiagnosticsConfig.DiagnosticsConfig => {
  const interval = Duration.millis(settings.diagnosticsInterval)
  return {
    ...DiagnosticsConfig.defaults,
    sendTimeout: Duration.seconds(5),
    retry,
    batchInterval: interval,
    metricsInterval: interval,
    resourceUsageInterval: interval,
    logTailInterval: interval,
    processReportInterval: Duration.times(interval, processReportEvery),
    ...(settings.diagnosticsLogFile === undefined ? {} : { logTailPath: settings.diagnosticsLogFile }),
  }
}

/**
 * The service: `attach(connection)` hands it the connection of a session
 * that is starting; reports go over it from the session's `Joined` (the
 * server's welcome) until the caller's Scope (the session's) closes.
 *
 * @since 0.4.0
 * @category services
 */
export class ClientDiagnostics extends Context.Service<
  ClientDiagnostics,
  { readonly attach: (connection: Connection.Connection) => Effect.Effect<void, never, Scope.Scope> }
>()("@fedguard/fed-client/ClientDiagnostics") {}

/**
 * Attaches `connection` to the `ClientDiagnostics` in context, if any (a
 * client built without it, as in tests and the simulation, sends none).
 *
 * @since 0.4.0
 * @category sessions
 */
export const attach = (connection: Connection.Connection): Effect.Effect<void, never, Scope.Scope> =>
  Effect.flatMap(
    Effect.serviceOption(ClientDiagnostics),
    Option.match({ onNone: () => Effect.void, onSome: (diagnostics) => diagnostics.attach(connection) }),
  )

// Which connection reports go over: `pending` from `attach` until the session's `Joined` (the
// welcome), then `current`, until the session's Scope closes.
const sessionConnections = Effect.gen(function* () {
  const pending = yield* Ref.make(Option.none<Connection.Connection>())
  const current = yield* Ref.make(Option.none<Connection.Connection>())
  const clear = (connection: Connection.Connection) =>
    Option.match({
      onNone: () => Option.none<Connection.Connection>(),
      onSome: (held: Connection.Connection) => (held === connection ? Option.none() : Option.some(held)),
    })
  const attach = (connection: Connection.Connection) =>
    Ref.set(pending, Option.some(connection)).pipe(
      Effect.andThen(
        Effect.addFinalizer(() =>
          Effect.andThen(Ref.update(pending, clear(connection)), Ref.update(current, clear(connection))),
        ),
      ),
    )
  const welcomed = Effect.flatMap(Ref.getAndSet(pending, Option.none()), (joined) => Ref.set(current, joined))
  return { current, attach, welcomed }
})

/**
 * The service, running the collectors of `settings` for the Layer's
 * lifetime through the transport sink (`"transport"`), or doing nothing
 * with `diagnostics: "false"`.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (
  settings: DiagnosticsSettings & { readonly server: string },
): Layer.Layer<ClientDiagnostics, never, ClientEvents | FileSystem.FileSystem> => {
  if (settings.diagnostics === "false")
    return Layer.succeed(ClientDiagnostics, ClientDiagnostics.of({ attach: () => Effect.void }))
  return Layer.effect(
    ClientDiagnostics,
    Effect.gen(function* () {
      const { current, attach, welcomed } = yield* sessionConnections
      const sink = TransportSink.make({
        send: (envelope) =>
          Effect.flatMap(
            Ref.get(current),
            Option.match({
              onNone: () =>
                Effect.fail(
                  new TransportError.Rejected({ peer: settings.server, reason: "no welcomed session with the server" }),
                ),
              onSome: (connection) => connection.send(envelope),
            }),
          ),
      })
      const options = config(settings)
      const collectors = yield* Diagnostics.builtinCollectors(options)
      const diagnostics = yield* Diagnostics.make(options, collectors).pipe(
        Effect.provideService(DiagnosticsSink.DiagnosticsSink, sink),
      )
      // At each welcome, a reading of every collector goes out at once: the server has the
      // client's state from its join on, however short the session.
      const snapshot = Effect.forEach(collectors, (collector) => diagnostics.collectNow(collector), {
        discard: true,
      }).pipe(Effect.andThen(diagnostics.flush))
      const events = yield* (yield* ClientEvents).subscribe
      yield* Effect.forkScoped(
        Stream.runForEach(events, (event) =>
          event._tag === "Joined" ? Effect.andThen(welcomed, snapshot) : Effect.void,
        ),
      )
      return ClientDiagnostics.of({ attach })
    }),
  ).pipe(Layer.provide([ResourceUsage.layerReadings(), ProcessReport.layerSource]))
}
