import { NodeRuntime } from "@effect/platform-node"
import { Envelope, Transport } from "@fedguard/transport"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect, Stream } from "effect"

const weights = new Uint8Array(64 * 1024 * 1024) // this round's model update
const upload = Effect.gen(function* () {
  const transport = yield* Transport.Transport
  const server = yield* transport.connect("10.0.0.5:7070")
  yield* server.send(Envelope.make("join", { client: "client-7" }))
  yield* server.sendBytes({ tag: "update", meta: { round: 3 } }, Stream.make(weights))
  yield* server.close("round done")
})

upload.pipe(Effect.scoped, Effect.provide(NodeTransport.layer({ writeTimeout: "20 seconds" })), NodeRuntime.runMain)
