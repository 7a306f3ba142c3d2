import { assert, describe, it } from "@effect/vitest"
import { GarbageCollector, MemoryCleanup, MemoryReadings } from "@fedguard/memory-cleanup"
import { Effect, Layer, Ref, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as ClientEvent from "../src/ClientEvent.ts"
import * as ClientEvents from "../src/ClientEvents.ts"
import { cleanUpMemory } from "../src/FedClient.ts"

const MiB = 1024 * 1024
const reading = (rss: number) => ({
  heapUsed: 10 * MiB,
  heapTotal: 20 * MiB,
  heapSizeLimit: 4096 * MiB,
  external: MiB,
  arrayBuffers: MiB,
  rss,
})

// The client's cleanup over scripted readings (RSS set by the test) and a GC that is not available.
const setup = (options: MemoryCleanup.Options) =>
  Effect.gen(function* () {
    const rss = yield* Ref.make(reading(100 * MiB))
    const services = yield* Layer.build(
      Layer.mergeAll(
        ClientEvents.layer,
        MemoryCleanup.layerNoDeps(options).pipe(
          Layer.provide([MemoryReadings.layerFromRef(rss), GarbageCollector.layerUnavailable("not in this test")]),
        ),
      ),
    )
    const events = yield* ClientEvents.ClientEvents.pipe(Effect.provideContext(services))
    const seen: Array<ClientEvent.ClientEvent> = []
    const stream = yield* events.subscribe
    yield* Effect.forkScoped(Stream.runForEach(stream, (event) => Effect.sync(() => seen.push(event))))
    yield* cleanUpMemory("c0").pipe(Effect.provideContext(services))
    const trained = (round: number) =>
      events.publish(new ClientEvent.RoundTrained({ id: "c0", round, samples: 10, trainLoss: 0.5, durationMs: 1 }))
    return { seen, trained, rss }
  })

const settle = Effect.gen(function* () {
  for (let i = 0; i < 200; i++) yield* Effect.yieldNow
})

const cleaned = (seen: ReadonlyArray<ClientEvent.ClientEvent>) =>
  seen.flatMap((e) => (e._tag === "MemoryCleaned" ? [e] : []))

describe("fed-client memory cleanup", () => {
  it.effect("runs after every N-th round the client trained, never between, and says so with its figures", () =>
    Effect.gen(function* () {
      const { seen, trained } = yield* setup({ everyRounds: 2 })
      for (const round of [1, 2, 3, 4, 5]) {
        yield* trained(round)
        yield* settle
      }
      assert.deepStrictEqual(
        cleaned(seen).map((e) => [e.id, e.trigger, e.round]),
        [
          ["c0", "rounds", 2],
          ["c0", "rounds", 4],
        ],
      )
      const run = cleaned(seen)[0]!
      assert.strictEqual(run.before.rss, 100 * MiB)
      assert.deepInclude(run.steps[0], { name: "gc", status: "skipped" })
    }).pipe(Effect.scoped),
  )

  it.effect("with --memory-threshold, runs when RSS crosses it (on the check interval), not before", () =>
    Effect.gen(function* () {
      const { seen, rss } = yield* setup({ thresholdRss: 512 * MiB, checkInterval: "10 seconds" })
      yield* TestClock.adjust("30 seconds")
      yield* settle
      assert.deepStrictEqual(cleaned(seen), [])
      yield* Ref.set(rss, reading(600 * MiB))
      yield* TestClock.adjust("10 seconds")
      yield* settle
      assert.deepStrictEqual(
        cleaned(seen).map((e) => [e.trigger, e.before.rss]),
        [["threshold", 600 * MiB]],
      )
    }).pipe(Effect.scoped),
  )
})
