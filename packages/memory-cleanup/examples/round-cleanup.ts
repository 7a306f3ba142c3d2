import { MemoryCleanup } from "@fedguard/memory-cleanup"
import { Effect, Stream } from "effect"

// A trainer that keeps each round's weights: every 5 rounds (or when RSS passes 6 GiB) the cleanup
// releases all but the latest, then runs a full GC, and reports the memory before and after.
export const train = Effect.fn("train")(function* (rounds: number, trainRound: (round: number) => Float32Array) {
  const cleanup = yield* MemoryCleanup.MemoryCleanup
  const weights = new Map<number, Float32Array>()
  const releaseOldRounds = Effect.sync(() => {
    const latest = Math.max(...weights.keys())
    for (const round of weights.keys()) if (round < latest) weights.delete(round)
  })
  yield* cleanup.register("old-rounds-weights", releaseOldRounds)
  const runs = yield* cleanup.subscribe
  yield* Effect.forkScoped(Stream.runForEach(runs, (run) => Effect.logInfo(`freed ${run.freed.heapUsed} B of heap`)))
  for (let round = 1; round <= rounds; round++) {
    weights.set(round, trainRound(round))
    yield* cleanup.roundCompleted(round)
  }
  return [...weights.keys()]
})

export const CleanupLive = MemoryCleanup.layer({ everyRounds: 5, thresholdRss: 6 * 1024 ** 3 })
