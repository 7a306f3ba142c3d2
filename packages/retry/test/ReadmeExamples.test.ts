import { assert, describe, it } from "@effect/vitest"
import { NeighborRegistry } from "@fedguard/retry"
import { InMemoryTransport, PeerId } from "@fedguard/transport"
import { Effect, Fiber, Layer, Result, Stream } from "effect"
import { TestClock } from "effect/testing"
import { broadcast, NeighborsLive, uploaded } from "../examples/upload.ts"

/** Listens as `name` and drains every incoming transfer, acknowledging it all. */
const receiver = (network: InMemoryTransport.InMemoryNetwork["Service"], name: string) =>
  Effect.gen(function* () {
    const listener = yield* network.endpoint(name).listen(name)
    yield* Effect.forkChild(
      Stream.runForEach(listener.connections, (connection) =>
        Effect.forkChild(
          Stream.runForEach(connection.inbound, (inbound) =>
            inbound._tag === "Transfer" ? Stream.runDrain(inbound.transfer.bytes) : Effect.void,
          ),
        ),
      ),
    )
  })

const network = InMemoryTransport.layerNetwork
const fromServer = Layer.provideMerge(InMemoryTransport.layer("server"), network)

describe("README example (examples/upload.ts)", () => {
  it.effect("uploads to a server that starts listening while the upload is backing off, not before", () =>
    Effect.gen(function* () {
      const upload = yield* Effect.forkChild(uploaded.pipe(Effect.provide(InMemoryTransport.layer("client-1"))))
      yield* TestClock.adjust("3 seconds") // attempt 1 and the retry ~1-2 s later fail: nobody listens yet
      assert.isUndefined(upload.pollUnsafe())
      yield* receiver(yield* InMemoryTransport.InMemoryNetwork, "server")
      yield* TestClock.adjust("1 minute")
      assert.strictEqual((yield* Fiber.join(upload)).bytes, 1024 * 1024)
    }).pipe(Effect.provide(network)),
  )

  it.effect("broadcasts to the online clients and marks the unreachable one offline, not the others", () =>
    Effect.gen(function* () {
      const net = yield* InMemoryTransport.InMemoryNetwork
      yield* receiver(net, "client-1")
      yield* receiver(net, "client-2")
      const sending = yield* Effect.forkChild(broadcast)
      yield* TestClock.adjust("5 minutes")
      const results = yield* Fiber.join(sending)
      assert.strictEqual(results.filter(Result.isSuccess).length, 2)
      assert.deepStrictEqual(
        results.filter(Result.isFailure).map((result) => result.failure._tag),
        ["PeerUnreachable"],
      )
      const neighbors = yield* NeighborRegistry.NeighborRegistry
      assert.deepStrictEqual((yield* neighbors.online).toSorted(), ["client-1", "client-2"])
      assert.strictEqual((yield* neighbors.status(PeerId.make("client-3"))).state, "offline")
    }).pipe(Effect.provide(Layer.merge(NeighborsLive, fromServer))),
  )
})
