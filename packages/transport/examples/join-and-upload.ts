import { Connection, Envelope, InMemoryTransport } from "@fedguard/transport"
import { Effect, Option, Stream } from "effect"

export const program = Effect.gen(function* () {
  const network = yield* InMemoryTransport.InMemoryNetwork
  const listener = yield* network.endpoint("server").listen("server")
  const client = yield* network.endpoint("client-1").connect("server")
  const server = Option.getOrThrow(yield* Stream.runHead(listener.connections))

  yield* client.send(Envelope.make("join", { id: "client-1" }))
  const weights = new Uint8Array(10 * 1024 * 1024)
  yield* Effect.forkScoped(client.sendBytes({ tag: "update", meta: { round: 1 } }, Stream.make(weights)))

  const join = yield* Stream.runHead(server.inbound) // Some({ _tag: "Message", envelope })
  const upload = yield* Stream.runHead(server.inbound) // Some({ _tag: "Transfer", transfer })
  if (upload._tag === "None" || upload.value._tag !== "Transfer") return yield* Effect.die("expected the upload")
  const bytes = yield* Connection.collectBytes(upload.value.transfer, 64 * 1024 * 1024)
  return { join, bytes }
}).pipe(Effect.scoped, Effect.provide(InMemoryTransport.layerNetwork))
