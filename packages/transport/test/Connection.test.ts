import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as Connection from "../src/Connection.ts"
import * as Envelope from "../src/Envelope.ts"
import * as InMemoryTransport from "../src/InMemoryTransport.ts"
import { Transport } from "../src/Transport.ts"

const payload = (size: number) => {
  const out = new Uint8Array(size)
  for (let i = 0; i < size; i++) out[i] = (i * 31 + 7) & 0xff
  return out
}

const pair = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const server = network.endpoint("server", { chunkBytes: 1024, windowBytes: 4096 })
  const client = network.endpoint("client", { chunkBytes: 1024, windowBytes: 4096 })
  const listener = yield* server.listen("server")
  const clientSide = yield* client.connect("server")
  const serverSide = yield* listener.connections.pipe(
    Stream.runHead,
    Effect.map((o) => (o._tag === "Some" ? o.value : undefined)),
  )
  return { network, clientSide, serverSide: serverSide! }
})

describe("Connection", () => {
  it.effect("delivers messages and a chunked byte stream in order", () =>
    Effect.gen(function* () {
      const { clientSide, serverSide } = yield* pair
      yield* clientSide.send(Envelope.make("hello", { n: 1 }))
      const data = payload(10_000)
      const sending = yield* Effect.forkChild(
        clientSide.sendBytes({ tag: "blob", totalBytes: data.byteLength }, Stream.make(data)),
      )
      const items = yield* serverSide.inbound.pipe(Stream.take(2), Stream.runCollect)
      const [first, second] = items
      assert.strictEqual(first?._tag, "Message")
      assert.strictEqual(second?._tag, "Transfer")
      if (second?._tag !== "Transfer") return
      const received = yield* Connection.collectBytes(second.transfer, 1 << 20)
      assert.deepStrictEqual(received, data)
      const receipt = yield* Fiber.join(sending)
      assert.strictEqual(receipt.bytes, 10_000)
      assert.strictEqual(receipt.chunks, 10)
    }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
  )

  it.effect("a receiver that stops reading stops the sender at the window", () =>
    Effect.gen(function* () {
      const { clientSide, serverSide } = yield* pair
      const acked: Array<number> = []
      const sending = yield* Effect.forkChild(
        clientSide.sendBytes({ tag: "blob" }, Stream.make(payload(20_000)), {
          onProgress: (n) => Effect.sync(() => acked.push(n)),
        }),
      )
      const first = yield* serverSide.inbound.pipe(Stream.runHead)
      assert.strictEqual(first._tag, "Some")
      yield* TestClock.adjust("1 second")
      const stats = yield* clientSide.stats
      assert.strictEqual(stats.bytesOut, 4096)
      assert.deepStrictEqual(acked, [])
      assert.isUndefined(sending.pollUnsafe())
    }).pipe(Effect.provide(InMemoryTransport.layerNetwork)),
  )
})
