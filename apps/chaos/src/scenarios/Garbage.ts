/**
 * `garbage`: 12 hostile workers send a seeded stream of frames to the server
 * over raw sockets while the honest clients train, before and after
 * authentication:
 *
 * - before (from `RawPeer.impostorAddress`, and never welcomed): random
 *   bytes, length prefixes claiming huge frames, truncated frames, frames of
 *   the wrong kind (a heartbeat, a stream, an ack) instead of a join, joins
 *   with a proof that is not even hex, several frames in one write; and
 *   three connections that send a join one byte a second;
 * - after (a hostile peer proves the secret as one of the ids `g0…g11`
 *   that `--client-ids` allows): a burst of frames that are valid but
 *   unexpected (heartbeats, spoofed heartbeats, protocol messages, update
 *   streams for any round with random bytes, NaN included), then acks, ends
 *   or aborts of streams that do not exist, an unknown tag or random bytes.
 *
 * The budget (`--garbage-frames`, 100,000 by default) counts the frames sent
 * while the clients train, from round 1's start to `training-completed`:
 * the workers claim frames from it before they send them and give back what
 * the server did not take, so a run sends exactly the budget in that time
 * unless training ends first (the run's notes say so: `framesWhileTraining`
 * below the budget, `roundsLeftWhenSpent` 0). Pre-authentication garbage
 * while the clients join is counted apart (`framesWhileJoining`). The
 * workers authenticate only once round 1 has started (every honest client
 * in), so a hostile id never takes an honest client's place in the job.
 * Training is seeded: every round must end on the model and accuracy of a
 * run without garbage, with every honest client in it.
 *
 * @since 0.1.0
 */
import { FrameCodec } from "@fedguard/transport"
import { Clock, Effect, Fiber, Option, Ref } from "effect"
import * as RawPeer from "../RawPeer.ts"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

const honest = Run.honestIds(Run.defaults)
/**
 * Hostile peers sending garbage at once (each authenticates as its own id, `g0`…`g11`).
 *
 * @since 0.1.0
 * @category models
 */
export const workers = 12
const hostile = Array.from({ length: workers }, (_, i) => `g${i}`)

/**
 * Garbage frames per round of training: the rounds of a run are its budget
 * over this (at least 20), so 100,000 frames get 50 rounds. The workers send
 * about 8,000 frames a second on a loaded 2-core machine, and a round takes
 * about 0.3 s: with 40 rounds the budget was spent with 14–19 rounds still
 * to come; 50 leave more room for a slower machine.
 *
 * @since 0.1.0
 * @category models
 */
export const framesPerRound = 2000

/**
 * The settings for a budget of `frames` garbage frames: softmax, hostile
 * ids allowed, beats every 500 ms with a 3 s timeout (the garbage shares
 * the machine's two cores), `frames / framesPerRound` rounds (at least
 * 20), and 180 s for the whole run.
 *
 * @since 0.1.0
 * @category models
 */
export const settingsFor = (frames: number): Run.Settings => ({
  ...Run.defaults,
  rounds: Math.max(20, Math.ceil(frames / framesPerRound)),
  heartbeatIntervalMs: 500,
  heartbeatTimeoutMs: 3000,
  clientIds: [...honest, ...hostile],
  hostileIds: hostile,
  boundMs: 180_000,
})

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

// The run's garbage so far. Frames sent while the honest clients train are drawn from the
// budget: a peer claims the frames it is about to send, and gives back those the server did not
// take (it hung up), so a run sends exactly the budget while training lasts. Frames sent while
// the clients join (before round 1) or after training are counted apart.
interface Tally {
  readonly budget: number
  readonly claimed: Ref.Ref<number>
  readonly phase: Ref.Ref<"joining" | "training" | "done">
  readonly sent: Ref.Ref<Readonly<Record<"joining" | "training" | "done", number>>>
  readonly remotes: Array<string>
  /** When the last frame of the budget went out (epoch ms). */
  readonly spentAt: Ref.Ref<Option.Option<number>>
}

// A claim: `granted` frames, drawn from the budget when made while the clients train. Frames of
// a claim made while they joined count as joining frames even if training started meanwhile, so
// no more than the budget is ever counted as sent while training.
interface Claim {
  readonly granted: number
  readonly fromBudget: boolean
}

// Up to `n` of the frames left to send: all `n` while the clients join, none once training ended.
const claim = (tally: Tally, n: number): Effect.Effect<Claim> =>
  Effect.flatMap(Ref.get(tally.phase), (phase): Effect.Effect<Claim> => {
    if (phase !== "training") return Effect.succeed({ granted: phase === "joining" ? n : 0, fromBudget: false })
    return Ref.modify(tally.claimed, (claimed): [Claim, number] => {
      const granted = Math.max(0, Math.min(n, tally.budget - claimed))
      return [{ granted, fromBudget: true }, claimed + granted]
    })
  })

// Counts `n` frames the kernel took: as joining frames for a claim made then, else in the phase
// they went out in.
const count = (tally: Tally, n: number, fromBudget: boolean) =>
  Effect.gen(function* () {
    const phase = fromBudget ? yield* Ref.get(tally.phase) : "joining"
    const counts = yield* Ref.updateAndGet(tally.sent, (c) => ({ ...c, [phase]: c[phase] + n }))
    if (phase === "training" && counts.training >= tally.budget && Option.isNone(yield* Ref.get(tally.spentAt))) {
      yield* Ref.set(tally.spentAt, Option.some(yield* Clock.currentTimeMillis))
    }
  })

// Runs `use` on a claim of up to `wanted` frames; `use` reports the frames it sent through
// `sent`. What it did not send goes back to the budget however it ends (the server hung up, the
// connection failed, training ended), so another peer sends it.
const claimed = <E, R>(
  tally: Tally,
  wanted: number,
  use: (granted: number, sent: (n: number) => Effect.Effect<void>) => Effect.Effect<void, E, R>,
) =>
  Effect.gen(function* () {
    const { granted, fromBudget } = yield* claim(tally, wanted)
    if (granted === 0) return
    let sent = 0
    const report = (n: number) =>
      Effect.suspend(() => {
        sent += n
        return count(tally, n, fromBudget)
      })
    yield* use(granted, report).pipe(
      Effect.ensuring(
        Effect.suspend(() =>
          fromBudget && sent < granted ? Ref.update(tally.claimed, (c) => c - (granted - sent)) : Effect.void,
        ),
      ),
    )
  })

// Writes `frames`, `perWrite` to a write, reporting each write the kernel took; false at the
// first refused write (the server hung up).
const writeFrames = (
  peer: RawPeer.RawPeer,
  frames: ReadonlyArray<Uint8Array>,
  perWrite: number,
  sent: (n: number) => Effect.Effect<void>,
) =>
  Effect.gen(function* () {
    for (let at = 0; at < frames.length; at += perWrite) {
      const batch = frames.slice(at, at + perWrite)
      if (!(yield* peer.write(concat(batch)))) return false
      yield* sent(batch.length)
    }
    return true
  })

// The frames of one connection that never authenticates: one kind (drawn first), `n` frames.
const preAuthFrames = (draw: Seeded.Draw, kind: number, n: number): ReadonlyArray<Uint8Array> => {
  switch (kind) {
    case 0:
      // Several frames in one write (the server must stop at the first).
      return Array.from({ length: n }, () => (draw.chance(0.5) ? invalid(draw) : unexpected(draw, "x")[0]!))
    case 1: {
      // A truncated join: part of it, then the end of the stream.
      const join = RawPeer.messageFrame({ _tag: "join", id: "c0", proof: "ab", samples: 10 })
      return [join.subarray(0, draw.int(1, join.length - 1))]
    }
    case 2:
      // A join whose proof is not even hex, for an honest id.
      return [RawPeer.messageFrame({ _tag: "join", id: draw.pick(honest), proof: "zz", samples: 10 })]
    case 3:
      return unexpected(draw, draw.pick(honest)).slice(0, 1)
    default:
      return [invalid(draw)]
  }
}

// One connection that never authenticates: its frames in one write, then it waits (at most
// 800 ms) for the server to hang up, so connections do not pile up.
const beforeAuth = (draw: Seeded.Draw, tally: Tally, port: number) =>
  Effect.gen(function* () {
    const kind = draw.int(0, 4)
    const frames = preAuthFrames(draw, kind, kind === 0 ? draw.int(2, 20) : 1)
    yield* claimed(tally, frames.length, (granted, sent) =>
      Effect.gen(function* () {
        const peer = yield* RawPeer.openImpostor("127.0.0.1", port, tally.remotes)
        yield* writeFrames(peer, frames.slice(0, granted), granted, sent)
        yield* peer.next(200).pipe(Effect.repeat({ until: () => peer.closed(), times: 3 }))
      }),
    )
  }).pipe(Effect.scoped, Effect.ignore)

// Frames per write after the handshake.
const perWrite = 256

// One hostile peer that proves the secret as `id` (its join is a frame of the budget too), then
// sends `burst` frames that keep the session open (heartbeats, spoofed heartbeats, protocol
// messages, now and then an update stream of random bytes: 3 frames), one that may end it, and
// an envelope of an unknown tag, which does. Fewer when the budget has fewer left.
const afterAuth = (draw: Seeded.Draw, tally: Tally, port: number, secret: string, id: string, burst: number) =>
  Effect.gen(function* () {
    const body = Array.from({ length: burst }, () =>
      unexpected(draw, id, draw.chance(0.02) ? 6 : draw.pick([0, 1, 2])),
    ).flat()
    const ending = [
      ...(draw.chance(0.5) ? [invalid(draw)] : unexpected(draw, id, draw.pick([3, 4, 5, 7, 8]))),
      RawPeer.envelopeFrame("zzz", 1),
    ]
    yield* claimed(tally, 1 + body.length + ending.length, (granted, sent) =>
      Effect.gen(function* () {
        const frames = [...body.slice(0, Math.max(0, granted - 1 - ending.length)), ...ending].slice(0, granted - 1)
        const peer = yield* RawPeer.open("127.0.0.1", port)
        const nonce = yield* RawPeer.challenge(peer, 5000)
        if (Option.isNone(nonce)) return
        const join = RawPeer.messageFrame(RawPeer.join(secret, nonce.value, id))
        if (!(yield* writeFrames(peer, [join], 1, sent)) || !(yield* RawPeer.welcomed(peer, 5000))) return
        yield* writeFrames(peer, frames, perWrite, sent)
        yield* peer.next(500).pipe(Effect.repeat({ until: () => peer.closed(), times: 5 }))
      }),
    )
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
      const budget = context.garbageFrames
      const settings = settingsFor(budget)
      const reference = yield* context.reference(settings)
      const run = yield* Run.make(settings, context.secret)
      const port = run.server().port
      const tally: Tally = {
        budget,
        claimed: yield* Ref.make(0),
        phase: yield* Ref.make<"joining" | "training" | "done">("joining"),
        sent: yield* Ref.make({ joining: 0, training: 0, done: 0 }),
        remotes: [],
        spentAt: yield* Ref.make(Option.none<number>()),
      }
      const loris = yield* Effect.forEach([0, 1, 2], () => Effect.forkScoped(slowLoris(port)))
      const worker = (index: number) =>
        Effect.gen(function* () {
          const draw = yield* Seeded.draw(context.seed, index + 1)
          const id = hostile[index]!
          while (true) {
            const phase = yield* Ref.get(tally.phase)
            if (phase === "done" || run.server().life().exit !== "running") return
            // The budget is spoken for: wait for frames given back, or for training to end.
            if (phase === "training" && (yield* Ref.get(tally.claimed)) >= budget) {
              if ((yield* Ref.get(tally.sent)).training >= budget) return
              yield* pause(50)
            } else if (phase === "training" && draw.chance(0.6)) {
              const burst = draw.int(200, Math.max(200, Math.round(budget / 25)))
              yield* afterAuth(draw, tally, port, context.secret, id, burst)
            } else yield* beforeAuth(draw, tally, port)
          }
        })
      const workersDone = yield* Effect.forkScoped(
        Effect.forEach(
          Array.from({ length: workers }, (_, i) => i),
          worker,
          { concurrency: "unbounded", discard: true },
        ),
      )
      yield* Run.startAll(run)
      if (yield* run.round("RoundStarted", 1)) yield* Ref.set(tally.phase, "training")
      yield* run
        .server()
        .waitFor("training-completed", (event) => event._tag === "TrainingCompleted", settings.boundMs)
        .pipe(Effect.ignore)
      yield* Ref.set(tally.phase, "done")
      const finished = yield* run.finish
      yield* Fiber.interrupt(workersDone)
      yield* Effect.forEach(loris, Fiber.interrupt)
      const sent = yield* Ref.get(tally.sent)
      // How many rounds were still to come when the budget was spent (0: it was not).
      const spentAt = yield* Ref.get(tally.spentAt)
      const startedBefore = (at: number) =>
        run
          .servers()
          .flatMap((server) => server.life().events)
          .filter(({ event, at: t }) => event._tag === "RoundStarted" && t <= at).length
      const roundsLeft = Option.match(spentAt, {
        onNone: () => 0,
        onSome: (at) => settings.rounds - startedBefore(at),
      })
      return yield* run.record({
        scenario: "garbage",
        seed: context.seed,
        finished,
        reference,
        impostorRemotes: tally.remotes,
        notes: {
          framesWhileTraining: sent.training,
          framesWhileJoining: sent.joining,
          framesAfterTraining: sent.done,
          roundsLeftWhenSpent: roundsLeft,
        },
      })
    }),
}
