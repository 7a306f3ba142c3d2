#!/usr/bin/env node
/**
 * `node apps/sim/dist/costs.js`: where a simulated client-round's CPU time
 * goes, measured on the building blocks the simulation runs, 1,000 at a
 * time as in a 1,000-client round, on the TestClock. Prints one line per
 * block (CPU µs per operation) and, last, one JSON line
 * `{"bench":"sim-costs",…}`.
 *
 * @since 0.1.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { EventLog } from "@fedguard/app-kit"
import * as RoundState from "@fedguard/fed-server/RoundState"
import * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Connection, type Frame, InMemoryTransport } from "@fedguard/transport"
import { type Cause, Console, Effect, Fiber, Logger, Option, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"

const clients = 1_000
const repeats = 5

// CPU time of the process (user + system), in µs: what the 10 s target is about on a shared machine.
const cpuMicros = Effect.sync(() => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
})

const perOp = <A, E, R>(ops: number, effect: Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const before = yield* cpuMicros
    yield* effect
    return ((yield* cpuMicros) - before) / ops
  })

// 1,000 connected pairs; each round, every server side sends one message or one 32-byte transfer.
const transport = (kind: "transfer" | "message") =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    const listener = yield* network.endpoint("s").listen("s:1")
    const servers: Array<Connection.Connection> = []
    for (let i = 0; i < clients; i++) {
      const client = yield* network.endpoint(`c${i}`).connect("s:1")
      servers.push(yield* listener.connections.pipe(Stream.runHead, Effect.map(Option.getOrThrow)))
      const read = (item: Connection.Inbound) =>
        item._tag === "Transfer" ? Effect.asVoid(Connection.collectBytes(item.transfer, 1024)) : Effect.void
      yield* Effect.forkChild(client.inbound.pipe(Stream.runForEach(read), Effect.ignore))
    }
    yield* TestClock.adjust(1)
    const bytes = new Uint8Array(32)
    const send = (server: Connection.Connection, round: number) =>
      kind === "transfer"
        ? server.sendBytes({ tag: "model", meta: { round }, totalBytes: 32 }, Stream.make(bytes))
        : server.send({ tag: "hb", body: { round } })
    return yield* perOp(
      clients * repeats,
      Effect.gen(function* () {
        for (let round = 0; round < repeats; round++) {
          const fibers = yield* Effect.forEach(servers, (server) => Effect.forkChild(send(server, round)))
          yield* TestClock.adjust(1)
          yield* Fiber.joinAll(fibers)
        }
      }),
    )
  }).pipe(
    Effect.orDie,
    Effect.scoped,
    Effect.provide(InMemoryTransport.layerNetwork),
    Effect.provide(TestClock.layer()),
  )

// The same transfer over `Connection.make` on a bare link (a frame written is queued for the peer
// at once: no delivery fiber, no faults): what the connection protocol costs without the wire.
const bareLinkPair = Effect.gen(function* () {
  const aToB = yield* Queue.unbounded<Frame.Frame, Cause.Done>()
  const bToA = yield* Queue.unbounded<Frame.Frame, Cause.Done>()
  const link = (remote: string, out: typeof aToB, into: typeof aToB): Connection.Link => ({
    remote,
    write: (frame) => Effect.asVoid(Queue.offer(out, frame)),
    read: Stream.fromQueue(into),
    close: Effect.asVoid(Queue.end(out)),
  })
  return [yield* Connection.make(link("b", aToB, bToA)), yield* Connection.make(link("a", bToA, aToB))] as const
})

const bareTransfers = Effect.gen(function* () {
  const servers: Array<Connection.Connection> = []
  for (let i = 0; i < clients; i++) {
    const [server, client] = yield* bareLinkPair
    servers.push(server)
    const read = (item: Connection.Inbound) =>
      item._tag === "Transfer" ? Effect.asVoid(Connection.collectBytes(item.transfer, 1024)) : Effect.void
    yield* Effect.forkChild(client.inbound.pipe(Stream.runForEach(read), Effect.ignore))
  }
  const bytes = new Uint8Array(32)
  return yield* perOp(
    clients * repeats,
    Effect.gen(function* () {
      for (let round = 0; round < repeats; round++) {
        const send = (server: Connection.Connection) =>
          Effect.forkChild(server.sendBytes({ tag: "model", meta: { round }, totalBytes: 32 }, Stream.make(bytes)))
        const fibers = yield* Effect.forEach(servers, send)
        yield* TestClock.adjust(1)
        yield* Fiber.joinAll(fibers)
      }
    }),
  )
}).pipe(Effect.orDie, Effect.scoped, Effect.provide(TestClock.layer()))

// 1,000 fibers each sleeping to a distinct deadline, woken one by one by `adjust`.
const wakes = Effect.gen(function* () {
  for (let i = 0; i < clients * repeats; i++) yield* Effect.forkChild(Effect.sleep(i + 1))
  return yield* perOp(clients * repeats, TestClock.adjust(clients * repeats + 1))
}).pipe(Effect.provide(TestClock.layer({ warningDelay: "1 hour" })))

const events = Effect.gen(function* () {
  const hub = yield* EventLog.hub(ServerEvent.lines)
  const publish = (i: number) => hub.publish(new ServerEvent.ClientExcluded({ round: 1, id: `c${i}`, reason: "x" }))
  return yield* perOp(
    clients * repeats,
    Effect.gen(function* () {
      for (let i = 0; i < clients * repeats; i++) yield* publish(i)
    }),
  )
}).pipe(Effect.scoped, Effect.provide(Logger.layer([Logger.map(Logger.formatStructured, JSON.stringify)])))

const accepts = perOp(
  clients * repeats,
  Effect.sync(() => {
    const ids = Array.from({ length: clients }, (_, i) => `c${i}`)
    for (let round = 0; round < repeats; round++) {
      let state = RoundState.start(round, ids)
      for (const id of ids) state = RoundState.accept(state, { id, samples: 1, bytes: 32, spill: { path: id } })
    }
  }),
)

const program = Effect.gen(function* () {
  const figures = {
    transferMicros: yield* transport("transfer"),
    transferBareLinkMicros: yield* bareTransfers,
    messageMicros: yield* transport("message"),
    testClockWakeMicros: yield* wakes,
    eventPublishMicros: yield* events,
    roundStateAcceptMicros: yield* accepts,
  }
  for (const [name, value] of Object.entries(figures)) yield* Console.error(`${name.padEnd(24)} ${value.toFixed(1)} µs`)
  yield* Console.log(JSON.stringify({ bench: "sim-costs", clients, ...figures }))
})

NodeRuntime.runMain(program)
