import { assert, describe, it } from "@effect/vitest"
import { Heartbeat, LivenessTracker } from "@fedguard/heartbeat"
import { InMemoryTransport, PeerId } from "@fedguard/transport"
import { Effect, Exit, Layer, Option, Stream } from "effect"
import { TestClock } from "effect/testing"
import { heartbeatSession, onHeartbeat } from "../examples/liveness.ts"

const me = PeerId.make("client-1")

describe("README example (examples/liveness.ts)", () => {
  it.effect(
    "keeps a beating client online, and ends its session with PeerLost 90 s after the last ack, not before",
    () =>
      Effect.gen(function* () {
        const network = yield* InMemoryTransport.InMemoryNetwork
        const tracker = yield* LivenessTracker.LivenessTracker
        yield* tracker.register(me)
        const listener = yield* network.endpoint("server").listen("server")
        const client = yield* network.endpoint("client-1").connect("server")
        const server = Option.getOrThrow(yield* Stream.runHead(listener.connections))
        yield* Effect.forkChild(
          Stream.runForEach(server.inbound, (inbound) =>
            inbound._tag === "Message" && inbound.envelope.tag === Heartbeat.heartbeatTag
              ? onHeartbeat(server, me, inbound.envelope.body)
              : Effect.void,
          ),
        )
        const session = yield* Effect.forkChild(heartbeatSession(client, me))

        yield* TestClock.adjust("10 minutes")
        assert.strictEqual((yield* tracker.client(me)).state, "online")
        assert.isUndefined(session.pollUnsafe())

        yield* network.partition("client-1", "server")
        yield* TestClock.adjust(90_000 - 1)
        assert.isUndefined(session.pollUnsafe())
        yield* TestClock.adjust(1)
        const lost = session.pollUnsafe()
        assert.isTrue(lost !== undefined && Exit.isSuccess(lost) && lost.value._tag === "PeerLost")
        assert.strictEqual((yield* tracker.client(me)).state, "offline")
      }).pipe(Effect.provide(Layer.merge(InMemoryTransport.layerNetwork, LivenessTracker.layer()))),
  )
})
