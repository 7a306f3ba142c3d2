/**
 * `garbage`: hostile raw sockets send a seeded stream of frames to the
 * server while the honest clients train, before and after authentication:
 *
 * - before: random bytes, length prefixes claiming huge frames, truncated
 *   frames, frames of the wrong kind (a heartbeat, a stream, an ack) instead
 *   of a join, joins with a proof that is not even hex, several frames in
 *   one write; and a few connections that send a join one byte a second;
 * - after (a hostile peer proves the secret as one of the ids `g0…g7`
 *   that `--client-ids` allows): a burst of frames that are valid but
 *   unexpected (heartbeats, spoofed heartbeats, protocol messages, acks and
 *   ends of streams that do not exist, update streams for any round with
 *   random bytes, NaN included), then one that is not (an unknown tag or
 *   random bytes).
 *
 * The hostile peers start once round 1 has started (every honest client in),
 * so a hostile id never takes an honest client's place in the job. Training
 * is seeded: every round must end on the model and accuracy of a run
 * without garbage, with every honest client in it.
 *
 * @since 0.1.0
 */
import { FrameCodec } from "@fedguard/transport"
import { Effect, Fiber, Option, Ref } from "effect"
import * as RawPeer from "../RawPeer.ts"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

const honest = Run.honestIds(Run.defaults)
const hostile = Array.from({ length: 8 }, (_, i) => `g${i}`)

/**
 * The settings: 40 rounds of softmax, hostile ids allowed, beats every
 * 500 ms with a 3 s timeout (the garbage shares the machine's two cores).
 *
 * @since 0.1.0
 * @category models
 */
export const settings: Run.Settings = {
  ...Run.defaults,
  rounds: 40,
  heartbeatIntervalMs: 500,
  heartbeatTimeoutMs: 3000,
  clientIds: [...honest, ...hostile],
  hostileIds: hostile,
}

const paramBytes = 7850 * 4

// Frames that are valid on the wire but unexpected from a client after its join. Kinds 0, 1, 2
// and 6 keep the session open (they are ignored, unacknowledged or refused as updates); the
// others may end it. `kind` defaults to any.
const unexpected = (draw: Seeded.Draw, id: string, kind = draw.int(0, 8)): ReadonlyArray<Uint8Array> => {
  const json = () => draw.pick([null, 1, "x", [1, 2], { a: draw.int(0, 9) }, { round: draw.int(-1, 40) }])
  switch (kind) {
    case 0:
      return [RawPeer.envelopeFrame("heartbeat", { from: id, seq: draw.int(0, 1_000_000) })]
    case 1:
      return [RawPeer.envelopeFrame("heartbeat", { from: draw.pick(honest), seq: draw.int(0, 1000) })]
    case 2:
      return [
        RawPeer.messageFrame(
          draw.pick([
            { _tag: "challenge", nonce: "00" },
            { _tag: "refused", reason: "no" },
            { _tag: "training-completed", finalAccuracy: 1, rounds: 1 },
            { _tag: "join", id: draw.pick(honest), proof: "00", samples: 1 },
          ] as const),
        ),
      ]
    case 3:
      return [FrameCodec.encodeToBytes({ _tag: "Ack", id: draw.int(0, 50), offset: draw.int(0, 1 << 20) })]
    case 4:
      return [FrameCodec.encodeToBytes({ _tag: "StreamEnd", id: draw.int(0, 50), totalBytes: draw.int(0, 1 << 20) })]
    case 5:
      return [FrameCodec.encodeToBytes({ _tag: "StreamAbort", id: draw.int(0, 50), reason: "x" })]
    case 6: {
      // An update stream for any round, of random bytes (NaN and Infinity come up), maybe short.
      const stream = draw.int(1, 1 << 30)
      const length = draw.chance(0.7) ? paramBytes : draw.int(1, paramBytes * 2)
      const bytes = draw.bytes(length)
      return [
        FrameCodec.encodeToBytes({
          _tag: "StreamOpen",
          id: stream,
          tag: "update",
          meta: draw.chance(0.8) ? { round: draw.int(0, 25), samples: draw.int(-5, 5000), trainLoss: 0 } : json(),
          totalBytes: length,
        }),
        FrameCodec.encodeToBytes({ _tag: "Chunk", id: stream, offset: 0, bytes }),
        FrameCodec.encodeToBytes({ _tag: "StreamEnd", id: stream, totalBytes: length }),
      ]
    }
    case 7:
      return [
        FrameCodec.encodeToBytes({
          _tag: "StreamOpen",
          id: draw.int(1, 1000),
          tag: draw.pick(["model", "x", ""]),
          meta: json(),
          totalBytes: draw.int(0, 100),
        }),
      ]
    default:
      return [RawPeer.envelopeFrame(draw.pick(["heartbeat", "welcome", "join"]), json())]
  }
}

// A frame that is not valid: random bytes behind a length prefix that may claim anything.
const invalid = (draw: Seeded.Draw): Uint8Array => {
  switch (draw.int(0, 4)) {
    case 0: {
      // A length prefix claiming a huge frame (up to 4 GiB), then a few bytes.
      const out = draw.bytes(draw.int(5, 64))
      new DataView(out.buffer).setUint32(0, draw.int(FrameCodec.defaultMaxFrameBytes + 1, 0xffffffff))
      return out
    }
    case 1:
      return draw.bytes(draw.int(1, 2048))
    case 2: {
      // A frame of an unknown type.
      const body = draw.bytes(draw.int(1, 200))
      const out = new Uint8Array(4 + body.length)
      new DataView(out.buffer).setUint32(0, body.length)
      out.set(body, 4)
      out[4] = draw.int(8, 255)
      return out
    }
    case 3: {
      // A message frame (type 1) whose JSON is cut short.
      const body = new TextEncoder().encode(`{"tag":"heartbeat","body":{"from":"c0","seq":${draw.int(0, 9)}`)
      const out = new Uint8Array(5 + body.length)
      new DataView(out.buffer).setUint32(0, body.length + 1)
      out[4] = 1
      out.set(body, 5)
      return out
    }
    default: {
      // A length of zero.
      return new Uint8Array([0, 0, 0, 0, 1])
    }
  }
}

const concat = (frames: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(frames.reduce((n, f) => n + f.length, 0))
  frames.reduce((at, f) => {
    out.set(f, at)
    return at + f.length
  }, 0)
  return out
}

interface Tally {
  readonly frames: Ref.Ref<number>
  readonly duringTraining: Ref.Ref<number>
  readonly training: Ref.Ref<boolean>
  readonly remotes: Array<string>
}

const count = (tally: Tally, n: number) =>
  Effect.gen(function* () {
    yield* Ref.update(tally.frames, (x) => x + n)
    if (yield* Ref.get(tally.training)) yield* Ref.update(tally.duringTraining, (x) => x + n)
  })

// Writes each frame; counts those the kernel took; stops at the first refused write.
const writeAll = (tally: Tally, peer: RawPeer.RawPeer, frames: ReadonlyArray<Uint8Array>) =>
  Effect.gen(function* () {
    for (const frame of frames) {
      if (!(yield* peer.write(frame))) return false
      yield* count(tally, 1)
    }
    return true
  })

// One connection that never authenticates.
const beforeAuth = (draw: Seeded.Draw, tally: Tally, port: number) =>
  Effect.gen(function* () {
    const peer = yield* RawPeer.open("127.0.0.1", port)
    tally.remotes.push(peer.remote)
    switch (draw.int(0, 4)) {
      case 0: {
        // Several frames in one write (the server must stop at the first).
        const frames = Array.from({ length: draw.int(2, 20) }, () =>
          draw.chance(0.5) ? invalid(draw) : unexpected(draw, "x")[0]!,
        )
        if (yield* peer.write(concat(frames))) yield* count(tally, frames.length)
        break
      }
      case 1: {
        // A truncated join: half of it, then the end of the stream.
        const join = RawPeer.messageFrame({ _tag: "join", id: "c0", proof: "ab", samples: 10 })
        if (yield* peer.write(join.subarray(0, draw.int(1, join.length - 1)))) yield* count(tally, 1)
        break
      }
      case 2:
        // A join whose proof is not even hex, for an honest id.
        yield* writeAll(tally, peer, [
          RawPeer.messageFrame({ _tag: "join", id: draw.pick(honest), proof: "zz", samples: 10 }),
        ])
        break
      case 3:
        yield* writeAll(tally, peer, unexpected(draw, draw.pick(honest)).slice(0, 1))
        break
      default:
        yield* writeAll(tally, peer, [invalid(draw)])
    }
    // Wait for the server to hang up (at most 200 ms), so connections do not pile up.
    yield* peer.next(200).pipe(Effect.repeat({ until: () => peer.closed(), times: 3 }))
  }).pipe(Effect.scoped, Effect.ignore)

// One hostile peer that proves the secret as `id`, then sends `burst` frames.
const afterAuth = (draw: Seeded.Draw, tally: Tally, port: number, secret: string, id: string, burst: number) =>
  Effect.gen(function* () {
    const peer = yield* RawPeer.open("127.0.0.1", port)
    const nonce = yield* RawPeer.challenge(peer, 5000)
    if (Option.isNone(nonce)) return
    if (!(yield* writeAll(tally, peer, [RawPeer.messageFrame(RawPeer.join(secret, nonce.value, id))]))) return
    if (!(yield* RawPeer.welcomed(peer, 5000))) return
    // Written 64 frames at a time (one write each), so the server reads them as a stream.
    // Frames that keep the session open (an update stream now and then), then one that may end it.
    const frames = Array.from({ length: burst }, () =>
      unexpected(draw, id, draw.chance(0.02) ? 6 : draw.pick([0, 1, 2])),
    ).flat()
    frames.push(
      ...(draw.chance(0.5) ? [invalid(draw)] : unexpected(draw, id, draw.pick([3, 4, 5, 7, 8]))),
      RawPeer.envelopeFrame("zzz", 1),
    )
    for (let at = 0; at < frames.length; at += 64) {
      const batch = frames.slice(at, at + 64)
      if (!(yield* peer.write(concat(batch)))) break
      yield* count(tally, batch.length)
    }
    yield* peer.next(500).pipe(Effect.repeat({ until: () => peer.closed(), times: 5 }))
  }).pipe(Effect.scoped, Effect.ignore)

// A join written one byte a second: the server's handshake timeout must end it.
const slowLoris = (port: number) =>
  Effect.gen(function* () {
    const peer = yield* RawPeer.open("127.0.0.1", port)
    const join = RawPeer.messageFrame({ _tag: "join", id: "slow", proof: "00", samples: 1 })
    for (const byte of join) {
      if (!(yield* peer.write(Uint8Array.of(byte)))) return
      yield* pause(1000)
    }
  }).pipe(Effect.scoped, Effect.ignore)

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "garbage",
  summary: "random frames from raw sockets before and after authentication while clients train",
  run: (context) =>
    Effect.gen(function* () {
      const reference = yield* context.reference(settings)
      const run = yield* Run.make(settings, context.secret)
      const port = run.server().port
      const tally: Tally = {
        frames: yield* Ref.make(0),
        duringTraining: yield* Ref.make(0),
        training: yield* Ref.make(false),
        remotes: [],
      }
      const budget = context.garbageFrames
      const workers = 6
      const loris = yield* Effect.forEach([0, 1, 2], () => Effect.forkScoped(slowLoris(port)))
      const worker = (index: number) =>
        Effect.gen(function* () {
          const draw = yield* Seeded.draw(context.seed, index + 1)
          const id = hostile[index]!
          while ((yield* Ref.get(tally.frames)) < budget && run.server().life().exit === "running") {
            const authenticated = yield* Ref.get(tally.training)
            if (authenticated && draw.chance(0.6)) {
              yield* afterAuth(draw, tally, port, context.secret, id, draw.int(100, Math.max(100, budget / 50)))
            } else yield* beforeAuth(draw, tally, port)
          }
        })
      const workersDone = yield* Effect.forkScoped(
        Effect.forEach(
          Array.from({ length: workers }, (_, i) => i),
          worker,
          {
            concurrency: "unbounded",
            discard: true,
          },
        ),
      )
      yield* Run.startAll(run)
      if (yield* run.round("RoundStarted", 1)) yield* Ref.set(tally.training, true)
      yield* run
        .server()
        .waitFor("training-completed", (event) => event._tag === "TrainingCompleted", settings.boundMs)
        .pipe(Effect.ignore)
      yield* Ref.set(tally.training, false)
      const finished = yield* run.finish
      yield* Fiber.interrupt(workersDone)
      yield* Effect.forEach(loris, Fiber.interrupt)
      return yield* run.record({
        scenario: "garbage",
        seed: context.seed,
        finished,
        reference,
        impostorRemotes: tally.remotes,
        notes: {
          garbageFrames: yield* Ref.get(tally.frames),
          framesWhileTraining: yield* Ref.get(tally.duringTraining),
        },
      })
    }),
}
