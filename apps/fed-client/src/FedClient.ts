/**
 * The fed-client as a composition: `LocalData` (the shard), `ClientEvents`
 * (the event hub and log), and the `ReconnectLoop` running one
 * `ServerSession` per connection, each with its `HeartbeatSender` and
 * `LocalTrainer`.
 *
 * @since 0.2.0
 */
import { Memory } from "@fedguard/app-kit"
import { MemoryCleanup } from "@fedguard/memory-cleanup"
import { type Connection, Transport, TransportError } from "@fedguard/transport"
import { Effect, type FileSystem, Layer, type Path, type Scope, Stream } from "effect"
import * as ClientDiagnostics from "./ClientDiagnostics.ts"
import type { LocalDataUnavailable, ReconnectGaveUp } from "./ClientError.ts"
import * as ClientEvent from "./ClientEvent.ts"
import * as ClientEvents from "./ClientEvents.ts"
import type { ClientSettings } from "./ClientSettings.ts"
import type * as LocalData from "./LocalData.ts"
import * as ReconnectLoop from "./ReconnectLoop.ts"
import * as ServerSession from "./ServerSession.ts"
import * as SessionEnd from "./SessionEnd.ts"
import * as TrainerThread from "./TrainerThread.ts"

/**
 * Everything that can end the client with an error.
 *
 * @since 0.2.0
 * @category errors
 */
export type FedClientError = SessionEnd.FinalError | ReconnectGaveUp | LocalDataUnavailable

/**
 * Opens a connection to `server`; a failure is `ServerUnreachable`
 * (retryable) unless the transport calls it final.
 *
 * @since 0.2.0
 * @category sessions
 */
export const connect = (
  server: string,
): Effect.Effect<Connection.Connection, SessionEnd.SessionError, Transport.Transport | Scope.Scope> =>
  Effect.flatMap(Transport.Transport, (transport) => transport.connect(server)).pipe(
    Effect.mapError((error) =>
      TransportError.isRetryable(error)
        ? new SessionEnd.ServerUnreachable({ server, reason: error.message })
        : SessionEnd.fromTransport(error, server, false),
    ),
  )

/**
 * The client's services from its settings: the event hub and the shard
 * (MNIST is read when the Layer is built, in the training worker with
 * `--trainer thread`).
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  settings: ClientSettings,
): Layer.Layer<
  ClientEvents.ClientEvents | LocalData.LocalData | MemoryCleanup.MemoryCleanup,
  LocalDataUnavailable,
  FileSystem.FileSystem | Path.Path
> =>
  Layer.mergeAll(
    // The shard and its trainer: a worker thread (--trainer thread, the default) or inline.
    TrainerThread.layerFor(settings).pipe(Layer.provideMerge(ClientEvents.layer)),
    MemoryCleanup.layer(Memory.cleanupOptions(settings.memoryCleanupRounds, settings.memoryThreshold)),
  )

/**
 * The client's memory cleanup, for as long as the caller's Scope: after each
 * round this client trained and uploaded (`RoundTrained`) the cleanup is told
 * the round (it runs after every `--memory-cleanup-rounds`-th), and every run,
 * by round or by `--memory-threshold`, is published as `MemoryCleaned`.
 *
 * @since 0.3.0
 * @category running
 */
export const cleanUpMemory = (
  id: string,
): Effect.Effect<void, never, ClientEvents.ClientEvents | MemoryCleanup.MemoryCleanup | Scope.Scope> =>
  Effect.gen(function* () {
    const events = yield* ClientEvents.ClientEvents
    const cleanup = yield* MemoryCleanup.MemoryCleanup
    const trained = yield* events.subscribe
    const runs = yield* cleanup.subscribe
    yield* Effect.forkScoped(
      Stream.runForEach(trained, (event) =>
        event._tag === "RoundTrained" ? Effect.asVoid(cleanup.roundCompleted(event.round)) : Effect.void,
      ),
    )
    yield* Effect.forkScoped(
      Stream.runForEach(runs, (run) => events.publish(new ClientEvent.MemoryCleaned({ id, ...Memory.recordOf(run) }))),
    )
  })

/**
 * Joins the server and trains until it completes training, reconnecting
 * under the retry policy (see `ReconnectLoop.run`). Uses the services in
 * context, so tests give their own data and read the events.
 *
 * @since 0.2.0
 * @category running
 */
export const participate = (
  settings: ClientSettings,
): Effect.Effect<
  SessionEnd.Completed,
  SessionEnd.FinalError | ReconnectGaveUp,
  Transport.Transport | ClientEvents.ClientEvents | LocalData.LocalData
> =>
  Effect.scoped(
    ReconnectLoop.run(
      settings,
      Effect.flatMap(connect(settings.server), (connection) =>
        // Diagnostics (when provided) go over this session once the server welcomes it.
        Effect.andThen(ClientDiagnostics.attach(connection), ServerSession.run(settings, connection)),
      ).pipe(Effect.withSpan("FedClient.session", { attributes: { "fedguard.client.id": settings.id } })),
    ),
  )

/**
 * The whole client: loads its shard, then {@link participate}s; it needs the
 * `Transport` (`NodeTransport.layer()` for TCP, an
 * `InMemoryTransport` endpoint in tests), and a `FileSystem` and `Path` to read
 * MNIST (`NodeServices.layer`). Succeeds with the server's final
 * word (`finalAccuracy`, `rounds`). Its diagnostics (`ClientDiagnostics`,
 * unless `--diagnostics false`) go to the server over each session.
 *
 * @example
 * ```ts
 * import * as FedClient from "@fedguard/fed-client/FedClient"
 * import { Effect } from "effect"
 *
 * const done = FedClient.run(settings).pipe(Effect.provideService(Transport.Transport, network.endpoint("c0")))
 * ```
 *
 * @since 0.2.0
 * @category running
 */
export const run = (
  settings: ClientSettings,
): Effect.Effect<SessionEnd.Completed, FedClientError, Transport.Transport | FileSystem.FileSystem | Path.Path> =>
  Effect.scoped(Effect.andThen(cleanUpMemory(settings.id), participate(settings))).pipe(
    Effect.provide(ClientDiagnostics.layer(settings)),
    Effect.provide(layer(settings)),
  )
