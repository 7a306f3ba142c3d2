import { assert, describe, it } from "@effect/vitest"
import { Envelope } from "@fedguard/transport"
import { Effect } from "effect"
import * as Protocol from "../src/Protocol.ts"

describe("Protocol", () => {
  it.effect("every message survives an envelope round trip", () =>
    Effect.gen(function* () {
      const messages: ReadonlyArray<Protocol.Message> = [
        { _tag: "challenge", nonce: "n" },
        { _tag: "join", id: "c1", proof: "ab", samples: 2000 },
        { _tag: "refused", reason: "no" },
        {
          _tag: "welcome",
          id: "c1",
          model: "softmax",
          localEpochs: 1,
          batchSize: 10,
          learningRate: 0.05,
          heartbeatIntervalMs: 200,
          heartbeatTimeoutMs: 1000,
          ackProgressTimeoutMs: 600,
          checkIntervalMs: 100,
        },
        {
          _tag: "welcome",
          id: "c2",
          model: "mlp:4096,3302",
          localEpochs: 1,
          localSteps: 20,
          batchSize: 10,
          learningRate: 0.05,
          heartbeatIntervalMs: 200,
          heartbeatTimeoutMs: 1000,
          ackProgressTimeoutMs: 600,
          checkIntervalMs: 100,
        },
        { _tag: "training-completed", finalAccuracy: 0.9, rounds: 10 },
      ]
      for (const message of messages) {
        const envelope = Protocol.toEnvelope(message)
        assert.strictEqual(envelope.tag, message._tag)
        assert.deepStrictEqual(yield* Protocol.fromEnvelope(envelope, "peer"), message)
      }
    }),
  )

  it.effect("an unknown message, a mismatched tag or a bad field is a DecodeError naming the peer", () =>
    Effect.gen(function* () {
      const unknown = yield* Effect.flip(Protocol.fromEnvelope(Envelope.make("gossip", { x: 1 }), "c9"))
      assert.strictEqual(unknown._tag, "DecodeError")
      assert.strictEqual(unknown.peer, "c9")
      const mismatch = yield* Effect.flip(
        Protocol.fromEnvelope(Envelope.make("join", { _tag: "refused", reason: "x" }), "c9"),
      )
      assert.match(mismatch.message, /join carries refused/)
      const badField = yield* Effect.flip(
        Protocol.fromEnvelope(Envelope.make("join", { _tag: "join", id: "c1", proof: 3, samples: 1 }), "c9"),
      )
      assert.match(badField.message, /proof/)
      // Heartbeats are the heartbeat package's own messages, not part of this protocol.
      const beat = yield* Effect.flip(Protocol.fromEnvelope(Envelope.make("heartbeat", { from: "c1", seq: 1 }), "c9"))
      assert.strictEqual(beat._tag, "DecodeError")
    }),
  )

  it.effect("a welcome without localSteps (from a server before --local-steps) still decodes, with no cap", () =>
    Effect.gen(function* () {
      const body = {
        _tag: "welcome",
        id: "c1",
        model: "2nn",
        localEpochs: 1,
        batchSize: 10,
        learningRate: 0.1,
        heartbeatIntervalMs: 200,
        heartbeatTimeoutMs: 1000,
        ackProgressTimeoutMs: 600,
        checkIntervalMs: 100,
      }
      const message = yield* Protocol.fromEnvelope(Envelope.make("welcome", body), "server")
      assert.strictEqual(message._tag, "welcome")
      if (message._tag === "welcome") {
        assert.isFalse("localSteps" in message)
        assert.strictEqual(message.model, "2nn")
      }
    }),
  )

  it.effect("a welcome with a bad model name or a non-positive localSteps is a DecodeError naming the field", () =>
    Effect.gen(function* () {
      const body = {
        _tag: "welcome",
        id: "c1",
        model: "softmax",
        localEpochs: 1,
        batchSize: 10,
        learningRate: 0.1,
        heartbeatIntervalMs: 200,
        heartbeatTimeoutMs: 1000,
        ackProgressTimeoutMs: 600,
        checkIntervalMs: 100,
      }
      const badModel = yield* Effect.flip(
        Protocol.fromEnvelope(Envelope.make("welcome", { ...body, model: "mlp:200,,200" }), "server"),
      )
      assert.strictEqual(badModel._tag, "DecodeError")
      assert.include(badModel.message, "hidden layer 2 has no width")
      for (const localSteps of [0, -1, 2.5]) {
        const bad = yield* Effect.flip(
          Protocol.fromEnvelope(Envelope.make("welcome", { ...body, localSteps }), "server"),
        )
        assert.strictEqual(bad._tag, "DecodeError")
        assert.include(bad.message, "localSteps", String(localSteps))
      }
    }),
  )

  it.effect("update metadata must carry a round and numbers (the sample rules belong to admission)", () =>
    Effect.gen(function* () {
      const ok = yield* Protocol.decodeMeta(Protocol.UpdateMeta, { round: 1, samples: 10, trainLoss: 0.5 }, "c1")
      assert.strictEqual(ok.samples, 10)
      const bad = yield* Effect.flip(
        Protocol.decodeMeta(Protocol.UpdateMeta, { round: "one", samples: 10, trainLoss: 0.5 }, "c1"),
      )
      assert.strictEqual(bad._tag, "DecodeError")
    }),
  )
})
