/**
 * Test fixtures: a scripted server on the in-memory network, the client's
 * settings, a tiny training set, and a recorder of the client's events.
 */

import { Protocol } from "@fedguard/app-kit"
import type { Dataset } from "@fedguard/federation"
import { Model, Weights } from "@fedguard/federation"
import { Heartbeat } from "@fedguard/heartbeat"
import { type Connection, Envelope, InMemoryTransport, Transport } from "@fedguard/transport"
import { type Duration, Effect, type Fiber, Layer, Queue, Random, Ref, Schema, Stream } from "effect"
import type * as ClientEvent from "../../src/ClientEvent.ts"
import * as ClientEvents from "../../src/ClientEvents.ts"
import { ClientSettings } from "../../src/ClientSettings.ts"
import * as FedClient from "../../src/FedClient.ts"
import * as LocalData from "../../src/LocalData.ts"

export const secret = "client-test-secret"

/** Client settings as flags would give them: 2 retries, 1 s base delay, 4 s cap, 5 s join timeout. */
export const settingsOf = (overrides: Record<string, string> = {}): ClientSettings =>
  Schema.decodeUnknownSync(ClientSettings)({
    server: "server:1",
    id: "c0",
    secret,
    shardIndex: "0",
    shardCount: "2",
    maxRetries: "2",
    retryBaseDelay: "1s",
    retryMaxDelay: "4s",
    joinTimeout: "5s",
    ...overrides,
  })

/** The welcome of these tests: softmax, 100 ms beats, 500 ms peer timeout. */
export const welcome = (id = "c0", overrides: Partial<typeof Protocol.Welcome.Type> = {}): Protocol.Message => ({
  _tag: "welcome",
  id,
  model: "softmax",
  localEpochs: 1,
  batchSize: 10,
  learningRate: 0.05,
  heartbeatIntervalMs: 100,
  heartbeatTimeoutMs: 500,
  ackProgressTimeoutMs: 400,
  checkIntervalMs: 50,
  ...overrides,
})

/** 20 blank digits: a round of softmax training on them takes microseconds. */
export const tinyData: Dataset.Dataset = {
  images: new Float32Array(20 * 784),
  labels: Uint8Array.from({ length: 20 }, (_, i) => i % 10),
  count: 20,
}

/** The network, one event hub for every client of the test, and the tiny data. */
export const environment = Layer.mergeAll(
  InMemoryTransport.layerNetwork,
  ClientEvents.layer,
  LocalData.layerTest(tinyData),
)

/**
 * Starts a client (`FedClient.participate`) on its own endpoint: seeded when
 * `seed` is given, its transport changed by `transport` when given.
 */
export const startClient = (
  settings: ClientSettings,
  options: {
    readonly seed?: number
    readonly transport?: (endpoint: Transport.Transport["Service"]) => Transport.Transport["Service"]
  } = {},
) =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    const endpoint = network.endpoint(settings.id)
    const client = FedClient.participate(settings).pipe(
      Effect.provideService(
        Transport.Transport,
        options.transport === undefined ? endpoint : options.transport(endpoint),
      ),
    )
    return yield* Effect.forkChild(options.seed === undefined ? client : Random.withSeed(client, options.seed))
  })

/**
 * A transport whose connections take `delay` to close, as a TCP socket waits
 * (its close timeout) for a stalled peer that never ends its side.
 */
export const slowToClose =
  (delay: Duration.Input) =>
  (endpoint: Transport.Transport["Service"]): Transport.Transport["Service"] =>
    Transport.Transport.of({
      ...endpoint,
      connect: (address) => Effect.tap(endpoint.connect(address), () => Effect.addFinalizer(() => Effect.sleep(delay))),
    })

/** The client events published from now on, in order. */
export const recordEvents = Effect.gen(function* () {
  const hub = yield* ClientEvents.ClientEvents
  const stream = yield* hub.subscribe
  const seen = yield* Queue.unbounded<ClientEvent.ClientEvent>()
  yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Queue.offer(seen, event)))
  /** The next event with this tag (earlier events of other tags are passed over). */
  const next = <Tag extends ClientEvent.ClientEvent["_tag"]>(tag: Tag) =>
    Queue.take(seen).pipe(
      Effect.repeat({ until: (event) => event._tag === tag }),
      Effect.map((event) => event as Extract<ClientEvent.ClientEvent, { _tag: Tag }>),
    )
  /** Every event received so far, without waiting. */
  const drain = Queue.clear(seen)
  /** The events with this tag received so far, without waiting (the others are dropped). */
  const published = <Tag extends ClientEvent.ClientEvent["_tag"]>(tag: Tag) =>
    Effect.map(drain, (events) =>
      events.filter((event): event is Extract<ClientEvent.ClientEvent, { _tag: Tag }> => event._tag === tag),
    )
  return { next, drain, published }
})

/** One accepted connection, read by its own fiber: beats are acked while `acking` is on. */
export interface Peer {
  readonly connection: Connection.Connection
  readonly messages: Queue.Queue<Protocol.Message>
  readonly beats: Queue.Queue<Heartbeat.Heartbeat>
  readonly transfers: Queue.Queue<Connection.IncomingTransfer>
  readonly setAcking: (on: boolean) => Effect.Effect<void>
  readonly send: (message: Protocol.Message) => Effect.Effect<void, unknown>
  /** Challenge, check the join, welcome: returns the join. */
  readonly welcomeClient: (nonce: string, message?: Protocol.Message) => Effect.Effect<Protocol.Message, unknown>
  /** Streams the global model of `round` to the client; returns once the client took every byte (or refused them). */
  readonly sendModel: (round: number, params: Float32Array) => Effect.Effect<void>
}

const decodeBeat = Schema.decodeUnknownEffect(Heartbeat.Heartbeat)
const encodeAck = Schema.encodeSync(Heartbeat.HeartbeatAck)

const peerOf = (connection: Connection.Connection) =>
  Effect.gen(function* () {
    const messages = yield* Queue.unbounded<Protocol.Message>()
    const beats = yield* Queue.unbounded<Heartbeat.Heartbeat>()
    const transfers = yield* Queue.unbounded<Connection.IncomingTransfer>()
    const acking = yield* Ref.make(true)
    yield* connection.inbound.pipe(
      Stream.runForEach((item) =>
        Effect.gen(function* () {
          if (item._tag === "Transfer") return yield* Queue.offer(transfers, item.transfer)
          if (item.envelope.tag === Heartbeat.heartbeatTag) {
            const beat = yield* decodeBeat(item.envelope.body)
            yield* Queue.offer(beats, beat)
            if (yield* Ref.get(acking)) {
              yield* connection.send(Envelope.make(Heartbeat.ackTag, encodeAck({ seq: beat.seq })))
            }
            return
          }
          yield* Queue.offer(messages, yield* Protocol.fromEnvelope(item.envelope, "client"))
        }),
      ),
      Effect.ignore,
      Effect.forkScoped,
    )
    const send = (message: Protocol.Message) => connection.send(Protocol.toEnvelope(message))
    const peer: Peer = {
      connection,
      messages,
      beats,
      transfers,
      setAcking: (on) => Ref.set(acking, on),
      send,
      welcomeClient: (nonce, message) =>
        Effect.gen(function* () {
          yield* send({ _tag: "challenge", nonce })
          const join = yield* Queue.take(messages)
          yield* send(message ?? welcome())
          return join
        }),
      sendModel: (round, params) =>
        connection
          .sendBytes({ tag: "model", meta: { round, paramCount: params.length } }, Stream.make(Weights.encode(params)))
          .pipe(Effect.ignore),
    }
    return peer
  })

/** A scripted server listening at `server:1`: every accepted connection becomes a `Peer`. */
export const FakeServer = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const listener = yield* network.endpoint("server").listen("server:1")
  const accepted = yield* Queue.unbounded<Peer>()
  yield* listener.connections.pipe(
    Stream.runForEach((connection) => Effect.flatMap(peerOf(connection), (peer) => Queue.offer(accepted, peer))),
    Effect.forkScoped,
  )
  return {
    network,
    /** Waits for the next connection. */
    nextPeer: Queue.take(accepted),
    /** How many connections were accepted and not yet taken. */
    waiting: Queue.size(accepted),
  }
})

/** Fresh softmax parameters (deterministic in `seed`). */
export const softmaxParams = (seed: number): Float32Array => Model.make("softmax").init(seed)

/** Whether a fiber has finished, without waiting. */
export const isDone = <A, E>(fiber: Fiber.Fiber<A, E>): boolean => fiber.pollUnsafe() !== undefined

/**
 * The usual start of a test: the fake server and the event recorder, a client
 * started with `settings`, its connection taken and welcomed, and its
 * `Joined` seen.
 */
export const welcomed = (settings: ClientSettings = settingsOf(), options: Parameters<typeof startClient>[1] = {}) =>
  Effect.gen(function* () {
    const server = yield* FakeServer
    const events = yield* recordEvents
    const client = yield* startClient(settings, options)
    const peer = yield* server.nextPeer
    yield* peer.welcomeClient("n1")
    yield* events.next("Joined")
    return { server, events, client, peer }
  })
