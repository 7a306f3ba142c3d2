/**
 * `impostors`: while the honest clients train, fresh connections try to get
 * in or to speak for someone else, each in a seeded order:
 *
 * - a join for an honest id with a proof made from a wrong secret;
 * - a replayed proof: a correct proof for the nonce of one connection (what
 *   an eavesdropper records), sent on another;
 * - a correct proof for one id sent with another id;
 * - a correct proof for an id `--client-ids` does not allow;
 * - a heartbeat claiming an honest id, or an update stream, as the first
 *   frame (no join at all);
 * - a forged join with heartbeats and an update pipelined behind it.
 *
 * And an insider (`i0`, allowed to join, holding the secret) sends
 * heartbeats claiming an honest client's id while that client is SIGSTOPped,
 * and answers each model with an update of NaNs: the stopped client must
 * still go offline at its timeout, and nothing of the insider's is averaged.
 *
 * @since 0.1.0
 */
import { FrameCodec } from "@fedguard/transport"
import { Effect, Option, Stream } from "effect"
import * as RawPeer from "../RawPeer.ts"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

const honest = Run.honestIds(Run.defaults)
const insider = "i0"

const settings: Run.Settings = {
  ...Run.defaults,
  rounds: 12,
  clientIds: [...honest, insider],
  hostileIds: [insider],
}

const attempts = [
  "wrong-secret",
  "replayed-proof",
  "other-id-proof",
  "unlisted-id",
  "beat-first",
  "update-first",
  "pipelined",
] as const

const updateFrames = (round: number, stream: number, bytes: Uint8Array) => [
  FrameCodec.encodeToBytes({
    _tag: "StreamOpen",
    id: stream,
    tag: "update",
    meta: { round, samples: 10, trainLoss: 0 },
    totalBytes: bytes.length,
  }),
  FrameCodec.encodeToBytes({ _tag: "Chunk", id: stream, offset: 0, bytes }),
  FrameCodec.encodeToBytes({ _tag: "StreamEnd", id: stream, totalBytes: bytes.length }),
]

// 7850 float32 NaNs: the softmax model's length, every value refused.
const nanUpdate = new Uint8Array(new Float32Array(7850).fill(Number.NaN).buffer)

// One impostor connection (from `RawPeer.impostorAddress`); its remote goes to `remotes` before it
// says anything.
const attempt = (
  kind: (typeof attempts)[number],
  draw: Seeded.Draw,
  port: number,
  secret: string,
  remotes: Array<string>,
) =>
  Effect.gen(function* () {
    const connect = RawPeer.openImpostor("127.0.0.1", port, remotes)
    const peer = yield* connect
    const nonce = yield* RawPeer.challenge(peer, 5000)
    if (Option.isNone(nonce)) return
    const victim = draw.pick(honest)
    const send = (frames: ReadonlyArray<Uint8Array>) => Effect.forEach(frames, peer.write, { discard: true })
    switch (kind) {
      case "wrong-secret":
        yield* send([RawPeer.messageFrame(RawPeer.join(`wrong-${draw.int(0, 1e9)}`, nonce.value, victim))])
        break
      case "replayed-proof": {
        // The proof an honest client would have sent on `first` (recorded), replayed on this one.
        const first = yield* connect
        const recorded = yield* RawPeer.challenge(first, 5000)
        if (Option.isNone(recorded)) return
        yield* send([RawPeer.messageFrame(RawPeer.join(secret, recorded.value, victim))])
        break
      }
      case "other-id-proof": {
        const other = draw.pick(honest.filter((id) => id !== victim))
        const proof = RawPeer.join(secret, nonce.value, other)
        yield* send([RawPeer.messageFrame({ ...proof, id: victim } as typeof proof)])
        break
      }
      case "unlisted-id":
        yield* send([RawPeer.messageFrame(RawPeer.join(secret, nonce.value, `mallory${draw.int(0, 99)}`))])
        break
      case "beat-first":
        yield* send([RawPeer.envelopeFrame("heartbeat", { from: victim, seq: draw.int(1, 1000) })])
        break
      case "update-first":
        yield* send(updateFrames(draw.int(1, settings.rounds), 1, nanUpdate))
        break
      case "pipelined":
        yield* send([
          RawPeer.messageFrame(RawPeer.join(`wrong-${draw.int(0, 1e9)}`, nonce.value, victim)),
          RawPeer.envelopeFrame("heartbeat", { from: victim, seq: 1 }),
          ...updateFrames(draw.int(1, settings.rounds), 1, nanUpdate),
        ])
        break
    }
    // Read what the server answers until it hangs up: a welcome here is the violation.
    yield* RawPeer.welcomed(peer, 3000)
  }).pipe(Effect.scoped, Effect.ignore)

// The insider: joins as i0, beats as itself and as `victim`, answers every model with NaNs.
const insiderPeer = (port: number, secret: string, victim: string, forMs: number) =>
  Effect.gen(function* () {
    const peer = yield* RawPeer.open("127.0.0.1", port)
    const nonce = yield* RawPeer.challenge(peer, 5000)
    if (Option.isNone(nonce)) return 0
    yield* peer.write(RawPeer.messageFrame(RawPeer.join(secret, nonce.value, insider)))
    if (!(yield* RawPeer.welcomed(peer, 5000))) return 0
    let spoofed = 0
    let stream = 1
    const answer = Stream.fromEffectRepeat(peer.next(60_000)).pipe(
      Stream.takeWhile(Option.isSome),
      Stream.runForEach((frame) => {
        const f = frame.value
        if (f._tag !== "StreamOpen" || f.tag !== "model") return Effect.void
        const meta = f.meta as { readonly round?: unknown }
        const round = typeof meta?.round === "number" ? meta.round : 0
        return Effect.forEach(updateFrames(round, stream++, nanUpdate), peer.write, { discard: true })
      }),
    )
    const beats = Effect.gen(function* () {
      for (let seq = 1; ; seq++) {
        yield* peer.write(RawPeer.envelopeFrame("heartbeat", { from: victim, seq }))
        yield* peer.write(RawPeer.envelopeFrame("heartbeat", { from: insider, seq }))
        spoofed++
        yield* pause(100)
      }
    })
    yield* Effect.raceFirst(Effect.raceFirst(answer, beats), pause(forMs))
    return spoofed
  }).pipe(
    Effect.scoped,
    Effect.orElseSucceed(() => 0),
  )

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "impostors",
  summary: "wrong secrets, replayed proofs, spoofed heartbeats and updates under another client's id",
  run: (context) =>
    Effect.gen(function* () {
      const draw = yield* Seeded.draw(context.seed)
      const tries = Array.from({ length: draw.int(20, 40) }, () => draw.pick(attempts))
      const victim = draw.pick(honest)
      const stopRound = draw.int(2, settings.rounds - 5)
      const stoppedMs = draw.between(1.5, 2.5) * settings.heartbeatTimeoutMs
      const run = yield* Run.make(settings, context.secret)
      const port = run.server().port
      yield* Run.startAll(run)
      const remotes: Array<string> = []
      if (!(yield* run.round("RoundStarted", 1))) {
        return yield* run.record({ scenario: "impostors", seed: context.seed, finished: false })
      }
      const impostors = Effect.forEach(
        tries,
        (kind) => Effect.andThen(attempt(kind, draw, port, context.secret, remotes), pause(draw.between(0, 80))),
        { discard: true },
      )
      const spoof = Effect.gen(function* () {
        if (!(yield* run.round("RoundStarted", stopRound))) return 0
        yield* run.signalClient(victim, "stop", `round ${stopRound}, while i0 beats in its name`)
        const spoofed = yield* insiderPeer(port, context.secret, victim, stoppedMs)
        yield* run.signalClient(victim, "cont")
        return spoofed
      })
      const [, spoofed] = yield* Effect.all([impostors, spoof], { concurrency: "unbounded" })
      const finished = yield* run.finish
      return yield* run.record({
        scenario: "impostors",
        seed: context.seed,
        finished,
        impostorRemotes: remotes,
        notes: { impostorConnections: remotes.length, spoofedBeats: spoofed },
      })
    }),
}
