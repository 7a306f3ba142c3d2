/**
 * The transport sink: reports travel to the fedguard server as
 * `DiagnosticsMessage` envelopes on a transport connection's control lane.
 *
 * A fed-client already holds an authenticated connection to the server (its
 * session): `layer(connection)` sends on it, so diagnostics need no second
 * handshake and the server knows who sent them. `layerConnect(address)`
 * opens a connection of its own through the `Transport` in context, for a
 * receiver that accepts diagnostics on a separate address.
 *
 * Transport failures keep their tags: `ConnectionClosed`, `SendTimeout` and
 * `PeerUnreachable` are retried by `Diagnostics`; `Rejected` is final.
 *
 * @since 0.1.0
 */
import { type Connection, type Envelope, Transport, TransportError } from "@fedguard/transport"
import { Effect, Exit, Layer, Scope, Semaphore } from "effect"
import * as DiagnosticsMessage from "./DiagnosticsMessage.ts"
import { DiagnosticsSink } from "./DiagnosticsSink.ts"

/**
 * A sink that hands each batch, as one `"diagnostics"` envelope, to `send`
 * (e.g. `connection.send`). `name` (default `"transport"`) is the sink's
 * name on events and metrics.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: {
  readonly send: (envelope: Envelope.Envelope) => Effect.Effect<void, TransportError.TransportError>
  readonly name?: string | undefined
}): DiagnosticsSink["Service"] =>
  DiagnosticsSink.of({
    name: options.name ?? "transport",
    send: (reports) => Effect.suspend(() => options.send(DiagnosticsMessage.toEnvelope(reports))),
  })

/**
 * The sink over an open connection (the client's session with the server).
 * When the connection closes, sends fail with `ConnectionClosed` until the
 * application provides a sink over the new one.
 *
 * @example
 * ```ts
 * import type { Connection } from "@fedguard/transport"
 * import { Diagnostics, TransportSink } from "@fedguard/diagnostics"
 * import { Layer } from "effect"
 *
 * const forSession = (connection: Connection.Connection) =>
 *   Diagnostics.layer({ batchSize: 20 }).pipe(Layer.provide(TransportSink.layer(connection)))
 * ```
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (connection: Connection.Connection, name?: string): Layer.Layer<DiagnosticsSink> =>
  Layer.succeed(DiagnosticsSink, make({ send: connection.send, name }))

/**
 * The sink over a connection of its own to `address`, opened through the
 * `Transport` in context at the first send. After a retryable failure the
 * connection is closed and the next attempt (the `Diagnostics` retry)
 * connects again; connections close with the Layer.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerConnect = (
  address: string,
  options: { readonly name?: string | undefined } = {},
): Layer.Layer<DiagnosticsSink, never, Transport.Transport> =>
  Layer.effect(
    DiagnosticsSink,
    Effect.gen(function* () {
      const transport = yield* Transport.Transport
      const layerScope = yield* Effect.scope
      const lock = yield* Semaphore.make(1)
      let current: { readonly connection: Connection.Connection; readonly scope: Scope.Closeable } | undefined

      const drop = Effect.suspend(() => {
        const open = current
        current = undefined
        return open === undefined ? Effect.void : Scope.close(open.scope, Exit.void)
      })

      const connection = Effect.gen(function* () {
        if (current !== undefined && (yield* current.connection.isOpen)) return current.connection
        yield* drop
        const scope = yield* Scope.fork(layerScope)
        const opened = yield* transport.connect(address).pipe(
          Scope.provide(scope),
          Effect.tapError(() => Scope.close(scope, Exit.void)),
        )
        current = { connection: opened, scope }
        return opened
      })

      return make({
        name: options.name,
        send: (envelope) =>
          lock.withPermits(1)(
            Effect.flatMap(connection, (open) => open.send(envelope)).pipe(
              Effect.tapError((error) => (TransportError.isRetryable(error) ? drop : Effect.void)),
            ),
          ),
      })
    }),
  )
