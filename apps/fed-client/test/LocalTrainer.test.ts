import { assert, describe, it } from "@effect/vitest"
import { Protocol } from "@fedguard/app-kit"
import { Weights } from "@fedguard/federation"
import { Connection } from "@fedguard/transport"
import { Effect, Queue, Schema } from "effect"
import { TestClock } from "effect/testing"
import { environment, FakeServer, recordEvents, settingsOf, softmaxParams, startClient } from "./support/FakeServer.ts"

const decodeUpdateMeta = Schema.decodeUnknownSync(Protocol.UpdateMeta)

describe("LocalTrainer", () => {
  it.effect("uploads each round's update as an 'update' transfer with its UpdateMeta, and publishes RoundTrained", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.welcomeClient("n1")
      yield* peer.sendModel(1, softmaxParams(1))
      const update = yield* Queue.take(peer.transfers)
      assert.strictEqual(update.tag, "update")
      const meta = decodeUpdateMeta(update.meta)
      assert.deepInclude(meta, { round: 1, samples: 20 })
      const weights = yield* Weights.decode(yield* Connection.collectBytes(update, 1 << 20), 7850)
      assert.notDeepEqual(weights, softmaxParams(1), "the update is trained, not the global model sent back")
      const trained = yield* events.next("RoundTrained")
      assert.deepInclude(trained, { id: "c0", round: 1, samples: 20, trainLoss: meta.trainLoss })
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a newer model supersedes a queued older one: the older round is never trained or uploaded", () =>
    Effect.gen(function* () {
      const server = yield* FakeServer
      const events = yield* recordEvents
      yield* startClient(settingsOf())
      const peer = yield* server.nextPeer
      yield* peer.welcomeClient("n1")
      yield* peer.sendModel(1, softmaxParams(1))
      // Round 1 is trained; its upload waits for the server to read it. Meanwhile rounds 2 and 3 arrive.
      const first = yield* Queue.take(peer.transfers)
      yield* peer.sendModel(2, softmaxParams(2))
      yield* peer.sendModel(3, softmaxParams(3))
      yield* Connection.collectBytes(first, 1 << 20)
      const next = yield* Queue.take(peer.transfers)
      yield* Connection.collectBytes(next, 1 << 20)
      assert.deepStrictEqual(
        [decodeUpdateMeta(first.meta).round, decodeUpdateMeta(next.meta).round],
        [1, 3],
        "round 1 (in training) is finished, round 2 (stale) skipped",
      )
      yield* TestClock.adjust("1 second")
      assert.strictEqual(yield* Queue.size(peer.transfers), 0)
      assert.deepStrictEqual(
        (yield* events.published("RoundTrained")).map((event) => event.round),
        [1, 3],
      )
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )
})
