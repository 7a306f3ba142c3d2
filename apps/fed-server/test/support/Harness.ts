/**
 * Test support: the server's services over the in-memory transport, and
 * scripted clients that do the real handshake and answer each model with an
 * update the test chooses (honest, NaN, wrong length, …).
 */

import { Auth, Protocol } from "@fedguard/app-kit"
import { FedAvg, Model, Weights } from "@fedguard/federation"
import { JobStore } from "@fedguard/job-lifecycle"
import { Connection, type Envelope, InMemoryTransport } from "@fedguard/transport"
import { Effect, Layer, Option, Redacted, Schema, type Scope, Stream } from "effect"
import { ClientSession } from "../../src/ClientSession.ts"
import * as FedServer from "../../src/FedServer.ts"
import type * as ServerEvent from "../../src/ServerEvent.ts"
import { ServerEvents } from "../../src/ServerEvents.ts"
import { ServerSettings } from "../../src/ServerSettings.ts"

export const secret = "harness-secret-123"
export const paramCount = Model.make("softmax").paramCount

export const settingsWith = (overrides: Record<string, string> = {}) =>
  Schema.decodeUnknownSync(ServerSettings)({
    host: "server",
    port: "1",
    secret,
    expectedClients: "4",
    minClients: "1",
    rounds: "1",
    heartbeatInterval: "1s",
    heartbeatTimeout: "5s",
    roundTimeout: "30s",
    joinTimeout: "60s",
    ...overrides,
  })

/**
 * The server's services (no training job run) listening on the in-memory
 * endpoint "server", and a collector of every `ServerEvent`.
 */
export const serverUp = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const listener = yield* network.endpoint("server").listen("server:1")
  const sessions = yield* ClientSession
  yield* Effect.forkScoped(sessions.accept(listener.connections))
  const hub = yield* ServerEvents
  const seen: Array<ServerEvent.ServerEvent> = []
  const stream = yield* hub.subscribe
  yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
  return { network, seen }
})

/** Provides the server's layer (from `settings`) and an in-memory network. */
export const withServer =
  (settings: typeof ServerSettings.Type) =>
  <A, E, R>(self: Effect.Effect<A, E, R>) =>
    self.pipe(
      Effect.provide(
        FedServer.layer(settings).pipe(
          Layer.provideMerge(InMemoryTransport.layerNetwork),
          Layer.provideMerge(JobStore.layerMemory()),
        ),
      ),
      Effect.scoped,
    )

const nextItem = (connection: Connection.Connection) =>
  connection.inbound.pipe(Stream.runHead, Effect.map(Option.getOrThrow))

const messageOf = (envelope: Envelope.Envelope) => Protocol.fromEnvelope(envelope, "server")

/** What a scripted client uploads for a round, given the model it received. */
export type Reply = (
  round: number,
  model: Float32Array,
) => ReadonlyArray<{
  readonly round: number
  readonly samples: number
  readonly bytes: Uint8Array
  /** Send half the bytes, then nothing more (a frozen upload). */
  readonly freeze?: boolean
}>

/** An honest update: the model with every weight shifted by `delta`. */
export const shifted = (model: Float32Array, delta: number) => model.map((w) => w + delta)

export const honest =
  (delta: number, samples: number): Reply =>
  (round, model) => [{ round, samples, bytes: Weights.encode(shifted(model, delta)) }]

/**
 * A client `id` that joins (declaring `declared` samples), then answers
 * every model with `reply`. Returns its connection and the inbound items it
 * did not consume (after the model loop ends).
 */
export const scriptedClient = (
  network: InMemoryTransport.InMemoryNetwork["Service"],
  id: string,
  declared: number,
  reply: Reply,
  options: { readonly secret?: string } = {},
): Effect.Effect<
  { readonly connection: Connection.Connection; readonly welcomed: boolean; readonly uploads: () => number },
  never,
  Scope.Scope
> =>
  Effect.gen(function* () {
    let uploads = 0
    const connection = yield* network.endpoint(id).connect("server:1").pipe(Effect.orDie)
    const challenge = yield* nextItem(connection).pipe(Effect.orDie)
    if (challenge._tag !== "Message") return yield* Effect.die("expected a challenge")
    const message = yield* messageOf(challenge.envelope).pipe(Effect.orDie)
    if (message._tag !== "challenge") return yield* Effect.die("expected a challenge")
    const proof = Auth.prove(Redacted.make(options.secret ?? secret), message.nonce, id)
    yield* connection.send(Protocol.toEnvelope({ _tag: "join", id, proof, samples: declared })).pipe(Effect.orDie)
    const answer = yield* nextItem(connection).pipe(Effect.orDie)
    const welcomed =
      answer._tag === "Message" && (yield* messageOf(answer.envelope).pipe(Effect.orDie))._tag === "welcome"
    if (!welcomed) return { connection, welcomed, uploads: () => uploads }
    yield* Effect.forkScoped(
      connection.inbound.pipe(
        Stream.runForEach((item) =>
          Effect.gen(function* () {
            if (item._tag !== "Transfer" || item.transfer.tag !== "model") return
            const meta = yield* Protocol.decodeMeta(Protocol.ModelMeta, item.transfer.meta, "server")
            const bytes = yield* Connection.collectBytes(item.transfer, meta.paramCount * 4)
            const model = yield* Weights.decode(bytes.slice(), meta.paramCount)
            for (const update of reply(meta.round, model)) {
              const upload = connection.sendBytes(
                {
                  tag: "update",
                  meta: { round: update.round, samples: update.samples, trainLoss: 0.5 },
                  totalBytes: update.bytes.byteLength,
                },
                update.freeze === true
                  ? Stream.concat(Stream.make(update.bytes.subarray(0, update.bytes.byteLength >> 1)), Stream.never)
                  : Stream.make(update.bytes),
              )
              // A frozen upload runs on its own, so the next round's model is still answered.
              if (update.freeze === true) yield* Effect.forkScoped(Effect.ignore(upload))
              else {
                yield* upload
                uploads++
              }
            }
          }),
        ),
        Effect.ignore,
      ),
    )
    return { connection, welcomed, uploads: () => uploads }
  })

/** FedAvg of the given updates, as the test computes it independently of the server. */
export const fedAvg = (updates: ReadonlyArray<{ readonly weights: Float32Array; readonly samples: number }>) =>
  FedAvg.aggregate(updates).pipe(Effect.orDie)

/**
 * Lets other fibers run (no virtual time passes) until `condition` holds, then
 * a little longer so that what it triggered settles; dies if it never holds.
 */
export const settle = (condition: () => boolean = () => true, what = "condition") =>
  Effect.gen(function* () {
    for (let i = 0; i < 10_000 && !condition(); i++) yield* Effect.yieldNow
    if (!condition()) return yield* Effect.die(`${what} not reached`)
    for (let i = 0; i < 200; i++) yield* Effect.yieldNow
  })

/** {@link settle} until an event satisfies `predicate`. */
export const until = (
  seen: ReadonlyArray<ServerEvent.ServerEvent>,
  predicate: (event: ServerEvent.ServerEvent) => boolean,
) => settle(() => seen.some(predicate), `event; seen: ${seen.map((e) => e._tag).join(", ")}`)
