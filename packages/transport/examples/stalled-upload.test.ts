import { assert, it } from "@effect/vitest"
import { InMemoryTransport } from "@fedguard/transport"
import { Effect, Fiber, Stream } from "effect"
import { TestClock } from "effect/testing"

it.effect("an upload to a stalled server waits at the window, and completes once the server resumes", () =>
  Effect.gen(function* () {
    const network = yield* InMemoryTransport.InMemoryNetwork
    const listener = yield* network.endpoint("server").listen("server")
    const serverReadsEverything = Stream.runForEach(listener.connections, (connection) =>
      Stream.runForEach(connection.inbound, (inbound) =>
        inbound._tag === "Transfer" ? Stream.runDrain(inbound.transfer.bytes) : Effect.void,
      ),
    )
    yield* Effect.forkChild(serverReadsEverything)
    const client = yield* network.endpoint("client").connect("server")

    yield* network.stall("server")
    const upload = yield* Effect.forkChild(client.sendBytes({ tag: "update" }, Stream.make(new Uint8Array(4 << 20))))
    yield* TestClock.adjust("1 minute")
    assert.strictEqual((yield* client.stats).bytesOut, 1 << 20) // windowBytes (default 1 MiB), then no ACK
    assert.isUndefined(upload.pollUnsafe()) // the upload is still running

    yield* network.resume("server")
    assert.strictEqual((yield* Fiber.join(upload)).bytes, 4 << 20)
  }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
)
