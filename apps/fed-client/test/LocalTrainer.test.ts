import { assert, describe, it } from "@effect/vitest"
import { Protocol } from "@fedguard/app-kit"
import { Model, Training, Weights } from "@fedguard/federation"
import { Connection } from "@fedguard/transport"
import { Effect, Queue, Schema } from "effect"
import { TestClock } from "effect/testing"
import {
  environment,
  FakeServer,
  recordEvents,
  settingsOf,
  softmaxParams,
  startClient,
  tinyData,
  welcome,
  welcomed,
} from "./support/FakeServer.ts"

const decodeUpdateMeta = Schema.decodeUnknownSync(Protocol.UpdateMeta)

describe("LocalTrainer", () => {
  it.effect("uploads each round's update as an 'update' transfer with its UpdateMeta, and publishes RoundTrained", () =>
    Effect.gen(function* () {
      const { events, peer } = yield* welcomed()
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

  it.effect(
    "trains at most the welcome's localSteps SGD steps per round, and every step of the epochs without it",
    () =>
      Effect.gen(function* () {
        const server = yield* FakeServer
        const events = yield* recordEvents
        yield* startClient(settingsOf())
        const peer = yield* server.nextPeer
        // 20 samples in minibatches of 10: one local epoch is 2 steps; the welcome caps it at 1.
        yield* peer.welcomeClient("n1", welcome("c0", { localSteps: 1 }))
        yield* events.next("Joined")
        yield* peer.sendModel(1, softmaxParams(1))
        const update = yield* Queue.take(peer.transfers)
        const uploaded = yield* Weights.decode(yield* Connection.collectBytes(update, 1 << 20), 7850)
        const model = Model.make("softmax")
        const options = { seed: Training.roundSeed(42, 1, 0), epochs: 1, batchSize: 10, learningRate: 0.05 }
        const oneStep = yield* Training.train(model, softmaxParams(1), tinyData, { ...options, maxSteps: 1 })
        const fullEpoch = yield* Training.train(model, softmaxParams(1), tinyData, options)
        assert.strictEqual(oneStep.steps, 1)
        assert.strictEqual(fullEpoch.steps, 2)
        assert.deepStrictEqual(uploaded, oneStep.params)
        assert.notDeepEqual(uploaded, fullEpoch.params)
        // FedAvg still weighs the update by the client's whole shard.
        assert.strictEqual(decodeUpdateMeta(update.meta).samples, 20)
      }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("without localSteps in the welcome, a round trains every step of its local epochs", () =>
    Effect.gen(function* () {
      const { peer } = yield* welcomed()
      yield* peer.sendModel(1, softmaxParams(1))
      const update = yield* Queue.take(peer.transfers)
      const uploaded = yield* Weights.decode(yield* Connection.collectBytes(update, 1 << 20), 7850)
      const full = yield* Training.train(Model.make("softmax"), softmaxParams(1), tinyData, {
        seed: Training.roundSeed(42, 1, 0),
        epochs: 1,
        batchSize: 10,
        learningRate: 0.05,
      })
      assert.deepStrictEqual(uploaded, full.params)
    }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect("a newer model supersedes a queued older one: the older round is never trained or uploaded", () =>
    Effect.gen(function* () {
      const { events, peer } = yield* welcomed()
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

// Moves the TestClock in small steps, letting fibers react between them (sleeps registered along
// the way are honoured), until `done` or `limitMs` of virtual time passed.
const advance = (limitMs: number, done: Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    for (let t = 0; t < limitMs && !(yield* done); t += 50) {
      yield* TestClock.adjust("50 millis")
      for (let i = 0; i < 50; i++) yield* Effect.yieldNow
    }
  })

describe("LocalTrainer uploads under the stall guard", () => {
  it.effect(
    "an upload that freezes is given up after the ack-progress timeout, not before, and retried on a fresh stream that gets through",
    () =>
      Effect.gen(function* () {
        const server = yield* FakeServer
        const events = yield* recordEvents
        // The welcome's ack-progress timeout is 400 ms, checked every 50 ms; retries start at 1 s.
        yield* startClient(settingsOf({ faultStallUpload: "1" }))
        const peer = yield* server.nextPeer
        yield* peer.welcomeClient("n1")
        yield* peer.sendModel(1, softmaxParams(1))
        const frozen = yield* Queue.take(peer.transfers)
        yield* Effect.forkChild(Connection.collectBytes(frozen, 1 << 20))
        yield* advance(350, Effect.succeed(false))
        assert.strictEqual(yield* Queue.size(peer.transfers), 0)
        // Stalled at 400-450 ms, then the retry after its backoff (1 s base + jitter of at most 1 s).
        yield* advance(
          3_000,
          Effect.map(Queue.size(peer.transfers), (n) => n > 0),
        )
        const retried = yield* Queue.take(peer.transfers)
        assert.deepInclude(decodeUpdateMeta(retried.meta), { round: 1 })
        assert.strictEqual((yield* Connection.collectBytes(retried, 1 << 20)).byteLength, 7850 * 4)
        yield* events.next("RoundTrained")
        assert.lengthOf(yield* events.published("UploadFailed"), 0)
        assert.isTrue(yield* peer.connection.isOpen)
      }).pipe(Effect.scoped, Effect.provide(environment)),
  )

  it.effect(
    "an upload that stays stalled past its retries fails that round only: the session goes on and the next round is uploaded",
    () =>
      Effect.gen(function* () {
        const server = yield* FakeServer
        const events = yield* recordEvents
        // No retries: the frozen first attempt is the only one.
        yield* startClient(settingsOf({ faultStallUpload: "1", maxRetries: "0" }))
        const peer = yield* server.nextPeer
        yield* peer.welcomeClient("n1")
        yield* peer.sendModel(1, softmaxParams(1))
        const frozen = yield* Queue.take(peer.transfers)
        yield* Effect.forkChild(Connection.collectBytes(frozen, 1 << 20))
        const failed = yield* events
          .next("UploadFailed")
          .pipe(Effect.raceFirst(advance(2_000, Effect.succeed(false)).pipe(Effect.andThen(Effect.never))))
        assert.strictEqual(failed.round, 1)
        assert.match(failed.reason, /^the acknowledged offset stayed at \d+ bytes for \d+ ms$/)
        assert.isTrue(yield* peer.connection.isOpen)
        yield* peer.sendModel(2, softmaxParams(2))
        const second = yield* Queue.take(peer.transfers)
        assert.deepInclude(decodeUpdateMeta(second.meta), { round: 2 })
        yield* Connection.collectBytes(second, 1 << 20)
        yield* events.next("RoundTrained")
      }).pipe(Effect.scoped, Effect.provide(environment)),
  )
})
