import { AckProgressWatchdog, StallMonitor } from "@fedguard/stall-guard"
import type { Connection } from "@fedguard/transport"
import { Effect, Stream } from "effect"

// One session's model send: fails with AckStalled when the receiver stops consuming for 60 s,
// and the connection is watched for sends that stop completing (warn-only by default).
export const sendModel = Effect.fn("sendModel")(function* (connection: Connection.Connection, model: Uint8Array) {
  const monitor = yield* StallMonitor.make(connection)
  const send = (onProgress: (acked: number) => Effect.Effect<void>) =>
    connection.sendBytes({ tag: "model", totalBytes: model.byteLength }, Stream.make(model), { onProgress })
  return yield* monitor.guard(AckProgressWatchdog.watch(send, { ackProgressTimeout: "60 seconds" }))
})
