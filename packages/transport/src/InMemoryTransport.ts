/**
 * An in-memory network of named endpoints with fault injection, for tests on
 * the TestClock: drop (seeded), delay (from `Clock`), partition / heal, stall /
 * resume, kill / revive.
 *
 * @since 0.1.0
 */
import { type Cause, Clock, Context, Duration, Effect, Latch, Layer, Queue, Scope, Stream } from "effect"
import * as Connection from "./Connection.ts"
import type { Frame } from "./Frame.ts"
import { Transport } from "./Transport.ts"
import { ConnectionClosed, PeerUnreachable, type TransportError } from "./TransportError.ts"

interface Wire {
  readonly from: string
  readonly to: string
  // frames written but not yet delivered, with the time they may be delivered
  readonly inFlight: Queue.Queue<{ readonly frame: Frame | "eof"; readonly at: number }>
  readonly delivered: Queue.Queue<Frame, TransportError | Cause.Done>
  readonly gate: Latch.Latch
  closed: boolean
}

interface DropRule {
  readonly probability: number
  next: () => number
}

/**
 * Faults an in-memory network can inject. Names are endpoint names.
 *
 * - `drop(from, to, probability, seed)`: each control *message* from `from` to
 *   `to` is lost with that probability, decided by a PRNG seeded with `seed`
 *   (deterministic). Chunks, acks and stream frames are never dropped: the link
 *   is reliable like TCP, and a stalled peer models lost bulk traffic instead.
 * - `delay(from, to, duration)`: frames are delivered `duration` after they are
 *   written, measured on `Clock` (so TestClock controls it), order preserved.
 * - `partition(a, b)` / `heal(a, b)`: nothing crosses between `a` and `b` until
 *   healed; frames wait, as TCP retransmits, and arrive in order after healing.
 * - `stall(name)` / `resume(name)`: `name` stops reading; whatever is sent to
 *   it waits, so its senders' windows fill.
 * - `kill(name)` / `revive(name)`: every connection of `name` breaks at once
 *   (`ConnectionClosed` on both sides) and connecting to or from it fails with
 *   `PeerUnreachable` until revived.
 *
 * @since 0.1.0
 * @category models
 */
export interface Faults {
  readonly drop: (from: string, to: string, probability: number, seed: number) => Effect.Effect<void>
  readonly delay: (from: string, to: string, duration: Duration.Input) => Effect.Effect<void>
  readonly partition: (a: string, b: string) => Effect.Effect<void>
  readonly heal: (a: string, b: string) => Effect.Effect<void>
  readonly stall: (name: string) => Effect.Effect<void>
  readonly resume: (name: string) => Effect.Effect<void>
  readonly kill: (name: string) => Effect.Effect<void>
  readonly revive: (name: string) => Effect.Effect<void>
}

/**
 * A network of in-memory endpoints. `endpoint(name)` is a `Transport` whose
 * connections carry frames as objects (no encoding), subject to the faults.
 *
 * @since 0.1.0
 * @category services
 */
export class InMemoryNetwork extends Context.Service<
  InMemoryNetwork,
  Faults & {
    readonly endpoint: (name: string, options?: Connection.Options) => Transport["Service"]
  }
>()("@fedguard/transport/InMemoryNetwork") {}

const pairKey = (a: string, b: string) => (a < b ? `${a}\u0000${b}` : `${b}\u0000${a}`)
const wireKey = (from: string, to: string) => `${from}\u0000${to}`

// mulberry32: a tiny seeded PRNG, so drop decisions repeat exactly for a seed.
const seeded = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Builds a network. Delivery fibers live in the caller's Scope.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: Effect.Effect<InMemoryNetwork["Service"], never, Scope.Scope> = Effect.gen(function* () {
  const networkScope = yield* Effect.scope
  // The accepting endpoint's queue, Scope and options: its side of each connection is its own.
  const listeners = new Map<
    string,
    {
      readonly accept: Queue.Queue<Connection.Connection, Cause.Done>
      readonly scope: Scope.Scope
      readonly options: Connection.Options
    }
  >()
  const wires = new Set<Wire>()
  const drops = new Map<string, DropRule>()
  const delays = new Map<string, number>()
  const partitions = new Set<string>()
  const stalled = new Set<string>()
  const killed = new Set<string>()

  const blocked = (wire: Wire) => partitions.has(pairKey(wire.from, wire.to)) || stalled.has(wire.to)

  const refreshGates = Effect.sync(() => {
    for (const wire of wires) {
      if (blocked(wire)) wire.gate.closeUnsafe()
      else wire.gate.openUnsafe()
    }
  })

  const makeWire = Effect.fnUntraced(function* (from: string, to: string) {
    const wire: Wire = {
      from,
      to,
      inFlight: yield* Queue.unbounded<{ readonly frame: Frame | "eof"; readonly at: number }>(),
      delivered: yield* Queue.unbounded<Frame, TransportError | Cause.Done>(),
      gate: yield* Latch.make(true),
      closed: false,
    }
    if (blocked(wire)) wire.gate.closeUnsafe()
    wires.add(wire)
    const deliver = Effect.gen(function* () {
      while (true) {
        const { frame, at } = yield* Queue.take(wire.inFlight)
        const now = yield* Clock.currentTimeMillis
        if (at > now) yield* Effect.sleep(Duration.millis(at - now))
        yield* wire.gate.await
        if (frame === "eof") {
          yield* Queue.end(wire.delivered)
          return
        }
        yield* Queue.offer(wire.delivered, frame)
      }
    })
    yield* Effect.forkIn(deliver, networkScope)
    return wire
  })

  const linkOf = (outbound: Wire, inboundWire: Wire): Connection.Link => ({
    remote: outbound.to,
    write: (frame) =>
      Effect.gen(function* () {
        if (outbound.closed || killed.has(outbound.from) || killed.has(outbound.to)) {
          return yield* new ConnectionClosed({ peer: outbound.to, reason: "link is down" })
        }
        const rule = drops.get(wireKey(outbound.from, outbound.to))
        if (rule !== undefined && frame._tag === "Message" && rule.next() < rule.probability) return
        const now = yield* Clock.currentTimeMillis
        const at = now + (delays.get(wireKey(outbound.from, outbound.to)) ?? 0)
        yield* Queue.offer(outbound.inFlight, { frame, at })
      }),
    read: Stream.fromQueue(inboundWire.delivered),
    close: Effect.gen(function* () {
      if (outbound.closed) return
      outbound.closed = true
      const now = yield* Clock.currentTimeMillis
      yield* Queue.offer(outbound.inFlight, { frame: "eof", at: now })
      wires.delete(outbound)
    }),
  })

  const breakWire = (wire: Wire, reason: string) =>
    Effect.gen(function* () {
      wire.closed = true
      wires.delete(wire)
      yield* Queue.fail(wire.delivered, new ConnectionClosed({ peer: wire.from, reason }))
    })

  const endpoint = (name: string, options: Connection.Options = {}): Transport["Service"] => ({
    connect: (address) =>
      Effect.gen(function* () {
        const listener = listeners.get(address)
        if (listener === undefined || killed.has(address) || killed.has(name)) {
          return yield* new PeerUnreachable({
            peer: address,
            reason: killed.has(name) ? `${name} is killed` : "no listener at that address",
          })
        }
        const toServer = yield* makeWire(name, address)
        const toClient = yield* makeWire(address, name)
        const serverSide = yield* Connection.make(linkOf(toClient, toServer), listener.options).pipe(
          Scope.provide(listener.scope),
        )
        const offered = yield* Queue.offer(listener.accept, serverSide)
        if (!offered) return yield* new PeerUnreachable({ peer: address, reason: "listener closed" })
        return yield* Connection.make(linkOf(toServer, toClient), options)
      }),
    listen: (address) =>
      Effect.gen(function* () {
        if (listeners.has(address)) {
          return yield* new PeerUnreachable({ peer: address, reason: "address already in use" })
        }
        const accept = yield* Queue.unbounded<Connection.Connection, Cause.Done>()
        const scope = yield* Effect.scope
        listeners.set(address, { accept, scope, options })
        yield* Effect.addFinalizer(() =>
          Effect.sync(() => {
            listeners.delete(address)
          }).pipe(Effect.andThen(Queue.end(accept))),
        )
        // One connection per pull: `Stream.runHead(connections)` must not drop the ones queued behind.
        return { address, connections: Stream.fromEffectRepeat(Queue.take(accept)) }
      }),
  })

  return InMemoryNetwork.of({
    endpoint,
    drop: (from, to, probability, seed) =>
      Effect.sync(() => {
        drops.set(wireKey(from, to), { probability, next: seeded(seed) })
      }),
    delay: (from, to, duration) =>
      Effect.sync(() => {
        delays.set(wireKey(from, to), Duration.toMillis(duration))
      }),
    partition: (a, b) =>
      Effect.sync(() => {
        partitions.add(pairKey(a, b))
      }).pipe(Effect.andThen(refreshGates)),
    heal: (a, b) =>
      Effect.sync(() => {
        partitions.delete(pairKey(a, b))
      }).pipe(Effect.andThen(refreshGates)),
    stall: (name) =>
      Effect.sync(() => {
        stalled.add(name)
      }).pipe(Effect.andThen(refreshGates)),
    resume: (name) =>
      Effect.sync(() => {
        stalled.delete(name)
      }).pipe(Effect.andThen(refreshGates)),
    kill: (name) =>
      Effect.gen(function* () {
        killed.add(name)
        for (const wire of [...wires]) {
          if (wire.from === name || wire.to === name) yield* breakWire(wire, `${name} was killed`)
        }
      }),
    revive: (name) =>
      Effect.sync(() => {
        killed.delete(name)
      }),
  })
})

/**
 * The network as a Layer, scoped to the Layer's lifetime.
 *
 * @since 0.1.0
 * @category layers
 */
export const layerNetwork: Layer.Layer<InMemoryNetwork> = Layer.effect(InMemoryNetwork, make)

/**
 * The `Transport` of endpoint `name` on the network in context.
 *
 * @since 0.1.0
 * @category layers
 */
export const layer = (name: string, options?: Connection.Options): Layer.Layer<Transport, never, InMemoryNetwork> =>
  Layer.effect(
    Transport,
    Effect.map(InMemoryNetwork, (network) => Transport.of(network.endpoint(name, options))),
  )
