import { Collector, Diagnostics, MetricsSnapshot, TransportSink } from "@fedguard/diagnostics"
import type { Connection } from "@fedguard/transport"
import { Effect, Layer, Option, Ref } from "effect"

// A client's training loop with two collectors: the round in progress every 10 s, the Effect metrics every minute.
// Both reach the server on the session's connection, in batches; a server that does not take them never stops a round.
export const train = Effect.fn("train")(function* (
  rounds: number,
  trainRound: (round: number) => Effect.Effect<number>,
) {
  const diagnostics = yield* Diagnostics.Diagnostics
  const current = yield* Ref.make(0)
  const progress = Effect.map(Ref.get(current), (round) => (round === 0 ? Option.none() : Option.some({ round })))
  yield* diagnostics.run(Collector.make({ name: "round", interval: "10 seconds", collect: progress }))
  yield* diagnostics.run(MetricsSnapshot.collector({ interval: "1 minute" }))
  const losses: Array<number> = []
  for (let round = 1; round <= rounds; round++) {
    yield* Ref.set(current, round)
    losses.push(yield* trainRound(round))
  }
  return losses
})

export const DiagnosticsLive = (connection: Connection.Connection) =>
  Diagnostics.layer({ batchSize: 20, batchInterval: "30 seconds" }).pipe(Layer.provide(TransportSink.layer(connection)))
