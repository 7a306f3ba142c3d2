/**
 * One client connection, from challenge to close: the handshake (a fresh
 * nonce, the client's HMAC proof of the secret, the allowed ids, the welcome),
 * then the routing of everything the client sends: heartbeats to
 * `ClientLiveness` (acked with `@fedguard/heartbeat`'s own messages), update
 * streams to the `RoundCoordinator`, any frame as a sign of life.
 *
 * Every refused or timed-out handshake is published as `ClientRefused` and
 * closes the socket: the peer sees end-of-stream, never a connection left
 * open. A session's failure ends only that session.
 *
 * @since 0.2.0
 */
import { Auth, Protocol } from "@fedguard/app-kit"
import { DiagnosticsMessage } from "@fedguard/diagnostics"
import { Heartbeat } from "@fedguard/heartbeat"
import { StallMonitor } from "@fedguard/stall-guard"
import { type Connection, Envelope, TransportError } from "@fedguard/transport"
import {
  Context,
  Duration,
  Effect,
  Exit,
  FiberSet,
  Layer,
  Option,
  type Redacted,
  References,
  Result,
  Schema,
  Scope,
  Stream,
} from "effect"
import { ClientDirectory, type Session } from "./ClientDirectory.ts"
import { ClientLiveness } from "./ClientLiveness.ts"
import { DiagnosticsReceiver } from "./DiagnosticsReceiver.ts"
import { RoundCoordinator } from "./RoundCoordinator.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * Serves connections: `serve(connection)` runs one connection's handshake
 * and, once admitted, hands its session to the `ClientDirectory`;
 * `accept(connections)` serves every connection of a listener, each in its
 * own fiber.
 *
 * @since 0.2.0
 * @category services
 */
export class ClientSession extends Context.Service<
  ClientSession,
  {
    readonly serve: (connection: Connection.Connection) => Effect.Effect<void>
    readonly accept: (connections: Stream.Stream<Connection.Connection>) => Effect.Effect<void>
  }
>()("@fedguard/fed-server/ClientSession") {}

/**
 * Options: the federation `secret`; `clientIds`, the ids allowed to join
 * (default: any id that proves the secret); the training settings sent in
 * the `welcome`; and `handshakeTimeout` (default 10 s), the longest a
 * connection may take to send its join.
 *
 * @since 0.2.0
 * @category models
 */
export interface Options {
  readonly secret: Redacted.Redacted<string>
  readonly clientIds?: ReadonlyArray<string> | undefined
  readonly welcome: Omit<typeof Protocol.Welcome.Type, "_tag" | "id">
  readonly handshakeTimeout?: Duration.Input | undefined
  /** The stall monitor of every session (defaults: FLARE's 45 s × 3 checks of 5 s, warn only). */
  readonly stall?: StallMonitor.Options | undefined
}

const decodeHeartbeat = Schema.decodeUnknownEffect(Heartbeat.Heartbeat)
const encodeAck = Schema.encodeSync(Heartbeat.HeartbeatAck)

const send = (connection: Connection.Connection, message: Protocol.Message) =>
  connection.send(Protocol.toEnvelope(message))

// What the functions below share.
interface Deps {
  readonly directory: ClientDirectory["Service"]
  readonly liveness: ClientLiveness["Service"]
  readonly coordinator: RoundCoordinator["Service"]
  readonly events: ServerEvents["Service"]
  readonly diagnostics: DiagnosticsReceiver["Service"]
  readonly options: Options
  readonly allowed: ReadonlySet<string> | undefined
}

const refuse = (deps: Deps, connection: Connection.Connection, id: string, reason: string) =>
  deps.events
    .publish(new ServerEvent.ClientRefused({ id, remote: connection.remote, reason }))
    .pipe(
      Effect.andThen(send(connection, { _tag: "refused", reason }).pipe(Effect.ignore)),
      Effect.andThen(connection.close(reason)),
    )

// Everything an admitted client sends. A failure (an undecodable frame) ends this session only.
const route = (deps: Deps, session: Session, item: Connection.Inbound) =>
  Effect.gen(function* () {
    const { id, connection } = session
    if (item._tag === "Transfer") {
      yield* deps.liveness.signOfLife(id)
      // Read in its own fiber of the session's Scope: an upload that stops moving must not hold
      // the heartbeats queued behind it (FLARE's frozen stream), or a live client would be
      // marked offline.
      if (item.transfer.tag === "update") return yield* Effect.forkScoped(deps.coordinator.receive(id, item.transfer))
      return yield* item.transfer.abort(`unexpected transfer ${item.transfer.tag}`)
    }
    if (item.envelope.tag === Heartbeat.heartbeatTag) {
      const beat = yield* decodeHeartbeat(item.envelope.body).pipe(
        Effect.mapError((error) => new TransportError.DecodeError({ peer: id, reason: `heartbeat: ${error.message}` })),
      )
      const ack = yield* deps.liveness.beat(id, beat)
      if (Option.isSome(ack)) yield* connection.send(Envelope.make(Heartbeat.ackTag, encodeAck(ack.value)))
      return
    }
    yield* deps.liveness.signOfLife(id)
    // Diagnostics are untrusted data for the receiver, never a reason to end the session.
    if (item.envelope.tag === DiagnosticsMessage.tag) return yield* deps.diagnostics.receive(id, item.envelope)
    // Any other message after the join is decoded (a garbage one ends the session) and ignored.
    yield* Protocol.fromEnvelope(item.envelope, id)
  })

// An admitted session, in the directory's FiberMap until its connection ends or a newer
// session of its id interrupts it.
const runSession = (deps: Deps, sessionScope: Scope.Closeable) => (session: Session) =>
  Effect.gen(function* () {
    const outcome = yield* session.connection.inbound.pipe(
      Stream.runForEach((item) => route(deps, session, item)),
      Effect.result,
      // The session's Scope: uploads still being read end with it.
      Effect.scoped,
    )
    if (yield* deps.directory.release(session.id, session.generation)) {
      const reason = Result.isFailure(outcome) ? `disconnected: ${outcome.failure.message}` : "disconnected"
      yield* deps.liveness.connectionEnded(session.id, reason)
    }
  }).pipe(
    // Interrupted by a newer session of the same id (or by the server's shutdown): tell this one
    // why, so a second process using the id can log it and stop.
    Effect.onInterrupt(() =>
      Effect.flatMap(deps.directory.current(session.id), (current) =>
        Option.isSome(current) && current.value.generation > session.generation
          ? send(session.connection, {
              _tag: "refused",
              reason: `replaced by a newer session of client id ${session.id} from ${current.value.connection.remote}`,
            }).pipe(Effect.ignore)
          : Effect.void,
      ),
    ),
    Effect.ensuring(session.connection.close("session ended")),
    Effect.ensuring(Scope.close(sessionScope, Exit.void)),
  )

// Welcome, record, announce, mark alive: in that order (see `ClientDirectory.Hooks`).
// The session's stall monitor, in a Scope the session fiber closes when it ends; what it
// detects is published as a ServerEvent.
const monitor = (deps: Deps, connection: Connection.Connection, id: string, sessionScope: Scope.Closeable) =>
  Effect.gen(function* () {
    // The monitor's own warning repeats the StallDetected event: its fibers log only errors. The
    // forwarding fiber below keeps the normal level, since publishing is what writes the line.
    const stall = yield* StallMonitor.make(connection, deps.options.stall).pipe(
      Effect.provideService(References.MinimumLogLevel, "Error"),
    )
    const closed = deps.options.stall?.closeStalled ?? false
    yield* Effect.forkScoped(
      Stream.runForEach(yield* stall.subscribe, (event) =>
        event._tag === "StallDetected"
          ? deps.events.publish(
              new ServerEvent.StallDetected({
                id,
                oldestPendingMs: event.oldestPendingMs,
                checks: event.checks,
                closed,
              }),
            )
          : event._tag === "StallCleared"
            ? deps.events.publish(new ServerEvent.StallCleared({ id }))
            : Effect.void,
      ),
    )
    return stall
  }).pipe(Scope.provide(sessionScope))

const admit = (deps: Deps, connection: Connection.Connection, join: typeof Protocol.Join.Type) =>
  Effect.gen(function* () {
    const remote = connection.remote
    const sessionScope = yield* Scope.make()
    const stall = yield* monitor(deps, connection, join.id, sessionScope)
    const announce = (replaced: Option.Option<Session>) =>
      Effect.gen(function* () {
        if (Option.isSome(replaced)) yield* deps.events.publish(new ServerEvent.ClientReplaced({ id: join.id, remote }))
        const again = Option.isSome(replaced) || (yield* deps.liveness.seenBefore(join.id))
        yield* deps.events.publish(
          again
            ? new ServerEvent.ClientRejoined({ id: join.id, remote })
            : new ServerEvent.ClientJoined({ id: join.id, remote }),
        )
        yield* deps.liveness.online(join.id)
      })
    const welcome = send(connection, { _tag: "welcome", id: join.id, ...deps.options.welcome }).pipe(Effect.ignore)
    const admitted = yield* deps.directory
      .admit(
        join.id,
        connection,
        { declaredSamples: join.samples, guard: stall.guard },
        { beforeVisible: welcome, onVisible: announce },
        runSession(deps, sessionScope),
      )
      .pipe(Effect.result)
    if (Result.isFailure(admitted)) {
      yield* Scope.close(sessionScope, Exit.void)
      yield* refuse(deps, connection, join.id, admitted.failure.message)
    }
  })

const handshake = (deps: Deps, connection: Connection.Connection, nonce: string, item: Connection.Inbound) =>
  Effect.gen(function* () {
    if (item._tag !== "Message") return yield* refuse(deps, connection, "?", "expected join, got a byte stream")
    const message = yield* Protocol.fromEnvelope(item.envelope, connection.remote).pipe(Effect.result)
    if (Result.isFailure(message)) return yield* refuse(deps, connection, "?", message.failure.message)
    const join = message.success
    if (join._tag !== "join") return yield* refuse(deps, connection, "?", `expected join, got ${join._tag}`)
    if (!Auth.verify(deps.options.secret, nonce, join.id, join.proof)) {
      return yield* refuse(deps, connection, join.id, "unauthenticated: wrong proof of the federation secret")
    }
    if (deps.allowed !== undefined && !deps.allowed.has(join.id)) {
      return yield* refuse(deps, connection, join.id, "unknown client id")
    }
    yield* admit(deps, connection, join)
  })

const serve =
  (deps: Deps) =>
  (connection: Connection.Connection): Effect.Effect<void> =>
    Effect.gen(function* () {
      const timeout = deps.options.handshakeTimeout ?? "10 seconds"
      const nonce = yield* Auth.nonce
      yield* send(connection, { _tag: "challenge", nonce }).pipe(Effect.ignore)
      const first = yield* connection.inbound.pipe(Stream.runHead, Effect.timeoutOption(timeout), Effect.result)
      if (Result.isFailure(first)) {
        // Garbage instead of a frame, or the socket broke: nothing to answer, but say why.
        const reason = first.failure.message
        yield* deps.events.publish(new ServerEvent.ClientRefused({ id: "?", remote: connection.remote, reason }))
        return yield* connection.close("handshake failed")
      }
      if (Option.isNone(first.success)) {
        const within = Duration.format(Duration.fromInputUnsafe(timeout))
        return yield* refuse(deps, connection, "?", `no join within ${within}`)
      }
      if (Option.isNone(first.success.value)) return yield* connection.close("ended before joining")
      yield* handshake(deps, connection, nonce, first.success.value.value)
    })

/**
 * Builds the service; connection fibers live in the current Scope.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options) {
  const deps: Deps = {
    directory: yield* ClientDirectory,
    liveness: yield* ClientLiveness,
    coordinator: yield* RoundCoordinator,
    events: yield* ServerEvents,
    diagnostics: yield* DiagnosticsReceiver,
    options,
    allowed: options.clientIds === undefined ? undefined : new Set(options.clientIds),
  }
  const fibers = yield* FiberSet.make()
  return ClientSession.of({
    serve: serve(deps),
    accept: (connections) =>
      connections.pipe(Stream.runForEach((connection) => FiberSet.run(fibers, serve(deps)(connection)))),
  })
})

/**
 * The service as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  options: Options,
): Layer.Layer<
  ClientSession,
  never,
  ClientDirectory | ClientLiveness | RoundCoordinator | ServerEvents | DiagnosticsReceiver
> => Layer.effect(ClientSession, make(options))
