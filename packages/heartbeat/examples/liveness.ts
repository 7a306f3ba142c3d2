import { Heartbeat, HeartbeatSender, LivenessTracker } from "@fedguard/heartbeat"
import { type Connection, Envelope, type PeerId } from "@fedguard/transport"
import { Effect, Schema, Stream } from "effect"

// server: `authenticated` is the id the connection proved when it joined
export const onHeartbeat = Effect.fn("onHeartbeat")(function* (
  connection: Connection.Connection,
  authenticated: PeerId.PeerId,
  body: unknown,
) {
  const tracker = yield* LivenessTracker.LivenessTracker
  const beat = yield* Schema.decodeUnknownEffect(Heartbeat.Heartbeat)(body)
  const ack = yield* tracker.beat(authenticated, beat) // ImpersonationRejected | UnknownClient
  yield* connection.send(Envelope.make(Heartbeat.ackTag, ack))
})

// client, in the session Scope: beats go out, acks come back to the sender, and the
// session returns when the server is lost (then close it and reconnect with backoff)
export const heartbeatSession = Effect.fn("heartbeatSession")(function* (
  connection: Connection.Connection,
  me: PeerId.PeerId,
) {
  const sender = yield* HeartbeatSender.make({
    from: me,
    send: (beat) => connection.send(Envelope.make(Heartbeat.heartbeatTag, beat)),
  })
  yield* Effect.forkScoped(
    Stream.runForEach(connection.inbound, (inbound) =>
      inbound._tag === "Message" && inbound.envelope.tag === Heartbeat.ackTag
        ? Effect.flatMap(Schema.decodeUnknownEffect(Heartbeat.HeartbeatAck)(inbound.envelope.body), sender.acknowledge)
        : Effect.void,
    ),
  )
  return yield* sender.lost
})
