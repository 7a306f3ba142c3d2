/**
 * A rogue participant over real TCP, run inside the test process: it proves
 * the secret, beats like an honest client (so liveness keeps it online), and
 * answers every model with the update the test chooses (NaN weights, …).
 */

import { Auth, Protocol } from "@fedguard/app-kit"
import { Weights } from "@fedguard/federation"
import { Heartbeat, HeartbeatSender } from "@fedguard/heartbeat"
import { Connection, Envelope, PeerId, Transport } from "@fedguard/transport"
import { NodeTransport } from "@fedguard/transport-node"
import { Effect, Redacted, Schema, type Scope, Stream } from "effect"

const encodeBeat = Schema.encodeSync(Heartbeat.Heartbeat)
const decodeAck = Schema.decodeUnknownEffect(Heartbeat.HeartbeatAck)

/** Joins `127.0.0.1:port` as `id` and answers each model with `poison(model)`, until the scope closes. */
export const rogue = (
  port: number,
  options: {
    readonly id: string
    readonly secret: string
    readonly samples: number
    readonly poison: (model: Float32Array) => Float32Array
    /** Runs on the session's connection before each upload (e.g. to send a malformed diagnostics message). */
    readonly beforeUpload?: (connection: Connection.Connection, round: number) => Effect.Effect<void, unknown>
  },
): Effect.Effect<{ readonly uploads: () => number }, never, Scope.Scope | Transport.Transport> =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const connection = yield* transport.connect(`127.0.0.1:${port}`).pipe(Effect.orDie)
    let uploads = 0
    let sender: HeartbeatSender.HeartbeatSender["Service"] | undefined
    const handle = (item: Connection.Inbound) =>
      Effect.gen(function* () {
        if (item._tag === "Transfer") {
          if (item.transfer.tag !== "model") return
          const meta = yield* Protocol.decodeMeta(Protocol.ModelMeta, item.transfer.meta, "server")
          const bytes = yield* Connection.collectBytes(item.transfer, meta.paramCount * 4)
          const model = yield* Weights.decode(bytes.slice(), meta.paramCount)
          const upload = Weights.encode(options.poison(model))
          if (options.beforeUpload !== undefined) yield* options.beforeUpload(connection, meta.round)
          yield* connection.sendBytes(
            {
              tag: "update",
              meta: { round: meta.round, samples: options.samples, trainLoss: 0 },
              totalBytes: upload.byteLength,
            },
            Stream.make(upload),
          )
          uploads++
          return
        }
        if (item.envelope.tag === Heartbeat.ackTag) {
          const ack = yield* decodeAck(item.envelope.body)
          if (sender !== undefined) yield* sender.acknowledge(ack)
          return
        }
        const message = yield* Protocol.fromEnvelope(item.envelope, "server")
        if (message._tag === "challenge") {
          const proof = Auth.prove(Redacted.make(options.secret), message.nonce, options.id)
          yield* connection.send(Protocol.toEnvelope({ _tag: "join", id: options.id, proof, samples: options.samples }))
        } else if (message._tag === "welcome") {
          sender = yield* HeartbeatSender.make({
            from: PeerId.make(options.id),
            interval: message.heartbeatIntervalMs,
            peerTimeout: "1 hour",
            send: (beat) => connection.send(Envelope.make(Heartbeat.heartbeatTag, encodeBeat(beat))),
          })
        }
      })
    yield* Effect.forkScoped(connection.inbound.pipe(Stream.runForEach(handle), Effect.ignore))
    return { uploads: () => uploads }
  })

/** The TCP transport the rogue needs, for `Effect.provide` at the test's top level. */
export const tcp = NodeTransport.layer()
