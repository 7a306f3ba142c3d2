import { NeighborRegistry, Retry, RetryPolicy } from "@fedguard/retry"
import { PeerId, Transport } from "@fedguard/transport"
import { Effect, Stream } from "effect"

const server = PeerId.make("server")
const clients = ["client-1", "client-2", "client-3"].map(PeerId.make)
const weights = new Uint8Array(1024 * 1024) // this round's model

// One attempt: dial the peer and stream the weights until all are acknowledged.
const upload = Effect.fn("upload")(function* (peer: PeerId.PeerId) {
  const connection = yield* (yield* Transport.Transport).connect(peer)
  return yield* connection.sendBytes({ tag: "model" }, Stream.make(weights))
}, Effect.scoped)

// One call: 3 retries = 4 attempts, ~1 s, ~2 s, ~4 s apart; final errors return at once.
export const uploaded = Retry.retry(upload(server), RetryPolicy.make({ maxRetries: 3 }), { peer: server })

// Many neighbours: offline ones fail at once with NeighborOffline; exhausted retries mark a peer offline.
export const broadcast = Effect.gen(function* () {
  const neighbors = yield* NeighborRegistry.NeighborRegistry
  const peers = yield* neighbors.online
  return yield* Effect.forEach(peers, (p) => Effect.result(neighbors.send(p, upload(p))), { concurrency: 16 })
})

// One registry per process, so a peer's status outlives a broadcast; on every inbound
// message: neighbors.observeInbound(from)
export const NeighborsLive = NeighborRegistry.layerConfig("retry", { peers: clients })
