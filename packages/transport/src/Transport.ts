/**
 * The transport service: how a process opens connections and accepts them.
 *
 * @since 0.1.0
 */
import { Context, type Effect, type Scope, type Stream } from "effect"
import type { Connection } from "./Connection.ts"
import type { TransportError } from "./TransportError.ts"

/**
 * A bound listener: the address it actually bound (port 0 becomes the real
 * port) and the stream of accepted connections. Each connection lives until
 * either side closes it or the listener's Scope closes.
 *
 * @since 0.1.0
 * @category models
 */
export interface Listener {
  readonly address: string
  readonly connections: Stream.Stream<Connection>
}

/**
 * Opens and accepts connections. Packages depend on this contract only;
 * applications choose the Layer: `InMemoryTransport` for tests (with fault
 * injection on the TestClock) or `@fedguard/transport-node` for TCP.
 * Addresses are strings whose form the Layer defines (`"127.0.0.1:7070"` for
 * TCP, any name in memory).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Envelope, Transport } from "@fedguard/transport"
 *
 * const hello = Effect.gen(function* () {
 *   const transport = yield* Transport.Transport
 *   const connection = yield* transport.connect("127.0.0.1:7070")
 *   yield* connection.send(Envelope.make("hello", { from: "client-1" }))
 * })
 * ```
 *
 * @since 0.1.0
 * @category services
 */
export class Transport extends Context.Service<
  Transport,
  {
    readonly connect: (address: string) => Effect.Effect<Connection, TransportError, Scope.Scope>
    readonly listen: (address: string) => Effect.Effect<Listener, TransportError, Scope.Scope>
  }
>()("@fedguard/transport/Transport") {}
