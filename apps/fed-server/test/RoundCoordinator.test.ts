import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Model, Weights } from "@fedguard/federation"
import { Effect, Fiber, Random } from "effect"
import { TestClock } from "effect/testing"
import { aggregateCanonical, defaultAggregationChunk } from "../src/CanonicalFedAvg.ts"
import { RoundCoordinator } from "../src/RoundCoordinator.ts"
import * as ServerSettings from "../src/ServerSettings.ts"
import { UpdateSpill, UpdateSpillError } from "../src/UpdateSpill.ts"
import {
  fedAvg,
  honest,
  paramCount,
  type Reply,
  scriptedClient,
  serverUp,
  settingsWith,
  settle,
  shifted,
  until,
  withServer,
} from "./support/Harness.ts"
import { type SpillSpy, spillSpy } from "./support/SpillSpy.ts"
import { bitsOf, orderSensitive } from "./support/Uploads.ts"

const settings = settingsWith()
const global = Model.make("softmax").init(7)
const ids = ["c0", "c1", "c2", "c3"]
// Honest clients c0, c2, c3: shifted by +0.1, +0.3, +0.4 with 100, 300, 400 samples.
const honestReplies: Record<string, Reply> = {
  c0: honest(0.1, 100),
  c1: honest(0.2, 200),
  c2: honest(0.3, 300),
  c3: honest(0.4, 400),
}
const honestUpdate = (id: string) => {
  const delta = { c0: 0.1, c1: 0.2, c2: 0.3, c3: 0.4 }[id]!
  const samples = { c0: 100, c1: 200, c2: 300, c3: 400 }[id]!
  return { weights: shifted(global, delta), samples }
}

/** Four joined clients, c1 answering with `rogue`; runs round 1 and returns its outcome and events. */
const roundWith = (rogue: Reply, options: { readonly beforeRun?: Effect.Effect<void> } = {}) =>
  Effect.gen(function* () {
    const { network, seen } = yield* serverUp
    for (const id of ids) {
      const { welcomed } = yield* scriptedClient(network, id, 1000, id === "c1" ? rogue : honestReplies[id]!)
      assert.isTrue(welcomed)
    }
    const coordinator = yield* RoundCoordinator
    if (options.beforeRun !== undefined) yield* options.beforeRun
    const outcome = yield* coordinator.run(1, global, ids)
    return { outcome, seen, network }
  })

const exclusionsOf = (
  outcome: RoundCoordinator["Service"] extends { run: (...a: never) => Effect.Effect<infer O> } ? O : never,
) =>
  outcome.state.excluded.map(({ id, reason }) => ({
    id,
    reason: reason._tag === "Rejected" ? reason.refusal.exclusion : reason._tag,
  }))

const assertHonestThreeAveraged = Effect.fnUntraced(function* (outcome: {
  readonly global: Float32Array
  readonly state: { readonly accepted: ReadonlyArray<{ readonly id: string }> }
}) {
  assert.deepStrictEqual(outcome.state.accepted.map((u) => u.id).sort(), ["c0", "c2", "c3"])
  const expected = yield* fedAvg(["c0", "c2", "c3"].map(honestUpdate))
  // Bit for bit: the same float32 values as FedAvg of the admitted updates alone.
  assert.deepStrictEqual(Array.from(outcome.global), Array.from(expected))
  for (const w of outcome.global) assert.isTrue(Number.isFinite(w))
})

describe("RoundCoordinator (TestClock, in-memory transport)", () => {
  it.effect("four honest clients: every update is averaged, nobody is excluded, the round takes no waiting", () =>
    Effect.gen(function* () {
      const { outcome } = yield* roundWith(honestReplies.c1!)
      assert.deepStrictEqual(outcome.state.accepted.map((u) => u.id).sort(), ids)
      assert.deepStrictEqual(outcome.state.excluded, [])
      assert.strictEqual(outcome.state.rejectedUpdates, 0)
      assert.isTrue(outcome.modelUpdated)
      const expected = yield* fedAvg(ids.map(honestUpdate))
      assert.deepStrictEqual(Array.from(outcome.global), Array.from(expected))
      assert.strictEqual(outcome.durationMs, 0)
      assert.strictEqual(outcome.bytesIn, 4 * paramCount * 4)
      assert.strictEqual(outcome.bytesOut, 4 * paramCount * 4)
    }).pipe(withServer(settings)),
  )

  it.effect(
    "a NaN update is rejected at once and never averaged: the global model is FedAvg of the three honest updates",
    () =>
      Effect.gen(function* () {
        const nan: Reply = (round, model) => {
          const weights = shifted(model, 0.2)
          weights[5] = Number.NaN
          return [{ round, samples: 200, bytes: Weights.encode(weights) }]
        }
        const { outcome, seen } = yield* roundWith(nan)
        assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c1", reason: "rejected: non-finite weights" }])
        assert.strictEqual(outcome.state.rejectedUpdates, 1)
        yield* assertHonestThreeAveraged(outcome)
        assert.strictEqual(outcome.durationMs, 0)
        assert.isTrue(
          seen.some((e) => e._tag === "UpdateRejected" && e.id === "c1" && e.reason === "non-finite weights"),
        )
      }).pipe(withServer(settings)),
  )

  it.effect("+Infinity and -Infinity updates are rejected as non-finite", () =>
    Effect.gen(function* () {
      const infinite: Reply = (round, model) => {
        const weights = shifted(model, 0.2)
        weights[0] = Number.POSITIVE_INFINITY
        weights[paramCount - 1] = Number.NEGATIVE_INFINITY
        return [{ round, samples: 200, bytes: Weights.encode(weights) }]
      }
      const { outcome } = yield* roundWith(infinite)
      assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c1", reason: "rejected: non-finite weights" }])
      yield* assertHonestThreeAveraged(outcome)
      // Rejected at once: the round ends when the last honest update arrives, no clock moved.
      assert.strictEqual(outcome.durationMs, 0)
    }).pipe(withServer(settings)),
  )

  it.effect("a wrong-length update (one float short, or one too many) is rejected", () =>
    Effect.gen(function* () {
      const short: Reply = (round, model) => [
        { round, samples: 200, bytes: Weights.encode(shifted(model, 0.2).subarray(1)) },
      ]
      const { outcome } = yield* roundWith(short)
      assert.match(exclusionsOf(outcome)[0]!.reason, /^rejected: wrong length: 31396 bytes, expected 31400/)
      yield* assertHonestThreeAveraged(outcome)
      // Rejected at once: the round ends when the last honest update arrives, no clock moved.
      assert.strictEqual(outcome.durationMs, 0)
    }).pipe(withServer(settings)),
  )

  it.effect("an update larger than the model is cut off while it streams and rejected", () =>
    Effect.gen(function* () {
      const long: Reply = (round, model) => [
        { round, samples: 200, bytes: Weights.encode(Float32Array.from([...shifted(model, 0.2), 1])) },
      ]
      const { outcome } = yield* roundWith(long)
      assert.match(exclusionsOf(outcome)[0]!.reason, /^rejected: wrong length: more than 31400 bytes/)
      yield* assertHonestThreeAveraged(outcome)
      // Rejected at once: the round ends when the last honest update arrives, no clock moved.
      assert.strictEqual(outcome.durationMs, 0)
    }).pipe(withServer(settings)),
  )

  it.effect("an update for another round is rejected as stale and excludes its sender", () =>
    Effect.gen(function* () {
      const stale: Reply = (_round, model) => [{ round: 7, samples: 200, bytes: Weights.encode(shifted(model, 0.2)) }]
      const { outcome } = yield* roundWith(stale)
      assert.deepStrictEqual(exclusionsOf(outcome), [
        { id: "c1", reason: "rejected: stale round 7 (round 1 is running)" },
      ])
      yield* assertHonestThreeAveraged(outcome)
      // Rejected at once: the round ends when the last honest update arrives, no clock moved.
      assert.strictEqual(outcome.durationMs, 0)
    }).pipe(withServer(settings)),
  )

  it.effect("a duplicate update is counted and refused; the first one stays averaged", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      const twice: Reply = (round, model) => [
        { round, samples: 200, bytes: Weights.encode(shifted(model, 0.2)) },
        { round, samples: 200, bytes: Weights.encode(shifted(model, 99)) },
      ]
      // c3 never answers, so the round is still open when c1's duplicate arrives.
      const replies: Record<string, Reply> = { c0: honestReplies.c0!, c1: twice, c2: honestReplies.c2!, c3: () => [] }
      for (const id of ids) yield* scriptedClient(network, id, 1000, replies[id]!)
      const coordinator = yield* RoundCoordinator
      const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
      yield* until(seen, (e) => e._tag === "UpdateRejected")
      yield* TestClock.adjust("5 seconds")
      const outcome = yield* Fiber.join(fiber)
      assert.deepStrictEqual(outcome.state.accepted.map((u) => u.id).sort(), ["c0", "c1", "c2"])
      assert.strictEqual(outcome.state.rejectedUpdates, 1)
      assert.isTrue(seen.some((e) => e._tag === "UpdateRejected" && e.id === "c1" && /duplicate/.test(e.reason)))
      // The duplicate never replaced the first update.
      const expected = yield* fedAvg(["c0", "c1", "c2"].map(honestUpdate))
      assert.deepStrictEqual(Array.from(outcome.global), Array.from(expected))
      assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c3", reason: "Offline" }])
    }).pipe(withServer(settings)),
  )

  it.effect("an update claiming more samples than the client declared at join is rejected", () =>
    Effect.gen(function* () {
      const inflated: Reply = (round, model) => [{ round, samples: 5000, bytes: Weights.encode(shifted(model, 0.2)) }]
      const { outcome } = yield* roundWith(inflated)
      assert.deepStrictEqual(exclusionsOf(outcome), [
        { id: "c1", reason: "rejected: claims 5000 samples, more than the 1000 declared at join" },
      ])
      yield* assertHonestThreeAveraged(outcome)
      // Rejected at once: the round ends when the last honest update arrives, no clock moved.
      assert.strictEqual(outcome.durationMs, 0)
    }).pipe(withServer(settings)),
  )

  it.effect(
    "a client that dies mid-round is excluded as offline at once; the round does not wait for any timeout",
    () =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        for (const id of ids) {
          // c1 receives the model and dies before answering.
          yield* scriptedClient(network, id, 1000, id === "c1" ? () => [] : honestReplies[id]!)
        }
        const coordinator = yield* RoundCoordinator
        const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
        yield* settle()
        yield* network.kill("c1")
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c1", reason: "Offline" }])
        yield* assertHonestThreeAveraged(outcome)
        assert.strictEqual(outcome.durationMs, 0)
        assert.strictEqual(seen.filter((e) => e._tag === "ClientWentOffline").length, 1)
      }).pipe(withServer(settings)),
  )

  it.effect(
    "a client that stops reading is excluded as stalled once its model send makes no ACK progress for the ack-progress timeout, not before, while still online by heartbeat",
    () =>
      Effect.gen(function* () {
        const { ackProgressTimeout, checkInterval, heartbeatTimeout } = ServerSettings.timeouts(settings)
        const { network, seen } = yield* serverUp
        const clients: Array<{ readonly uploads: () => number }> = []
        for (const id of ids)
          clients.push(yield* scriptedClient(network, id, 1000, id === "c1" ? () => [] : honestReplies[id]!))
        // c1 stops reading (SIGSTOP-like): the model's bytes sit unacknowledged.
        yield* network.stall("c1")
        const coordinator = yield* RoundCoordinator
        const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
        yield* settle(() => clients.every((client, i) => i === 1 || client.uploads() === 1), "three honest uploads")
        yield* TestClock.adjust(ackProgressTimeout - 1)
        yield* settle()
        assert.isUndefined(fiber.pollUnsafe())
        // Detection comes within one check interval after the timeout (FLARE's fix B).
        yield* TestClock.adjust(checkInterval + 1)
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c1", reason: "Stalled" }])
        yield* assertHonestThreeAveraged(outcome)
        assert.isAtLeast(outcome.durationMs, ackProgressTimeout)
        assert.isAtMost(outcome.durationMs, ackProgressTimeout + checkInterval)
        // Data stopped; liveness did not: no offline mark before the heartbeat timeout.
        assert.isBelow(outcome.durationMs, heartbeatTimeout)
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
      }).pipe(withServer(settings)),
  )

  it.effect(
    "an upload that freezes mid-stream is excluded as stalled at the ack-progress timeout, not before; the client stays online and takes part in the next round",
    () =>
      Effect.gen(function* () {
        const { ackProgressTimeout, checkInterval } = ServerSettings.timeouts(settings)
        const { network, seen } = yield* serverUp
        const freezeInRound1: Reply = (round, model) => [
          { round, samples: 200, bytes: Weights.encode(shifted(model, 0.2)), freeze: round === 1 },
        ]
        for (const id of ids)
          yield* scriptedClient(network, id, 1000, id === "c1" ? freezeInRound1 : honestReplies[id]!)
        const coordinator = yield* RoundCoordinator
        const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
        yield* settle()
        yield* TestClock.adjust(ackProgressTimeout - 1)
        yield* settle()
        assert.isUndefined(fiber.pollUnsafe())
        yield* TestClock.adjust(checkInterval + 1)
        const outcome = yield* Fiber.join(fiber)
        assert.deepStrictEqual(exclusionsOf(outcome), [{ id: "c1", reason: "Stalled" }])
        yield* assertHonestThreeAveraged(outcome)
        assert.isFalse(seen.some((e) => e._tag === "ClientWentOffline"))
        // Round 2: c1 uploads normally and is averaged in again.
        const next = yield* coordinator.run(2, outcome.global, ids)
        assert.deepStrictEqual(next.state.accepted.map((u) => u.id).sort(), ids)
        assert.deepStrictEqual(next.state.excluded, [])
      }).pipe(withServer(settings)),
  )

  it.effect("a client that went offline and rejoined before the round is not excluded by its old departure", () =>
    Effect.gen(function* () {
      const { network, seen } = yield* serverUp
      yield* scriptedClient(network, "c0", 1000, honestReplies.c0!)
      yield* scriptedClient(network, "c1", 1000, honestReplies.c1!)
      yield* network.kill("c1")
      yield* until(seen, (e) => e._tag === "ClientWentOffline" && e.id === "c1")
      yield* network.revive("c1")
      yield* scriptedClient(network, "c1", 1000, honestReplies.c1!)
      yield* until(seen, (e) => e._tag === "ClientRejoined" && e.id === "c1")
      const coordinator = yield* RoundCoordinator
      const outcome = yield* coordinator.run(1, global, ["c0", "c1"])
      assert.deepStrictEqual(outcome.state.excluded, [])
      assert.deepStrictEqual(outcome.state.accepted.map((u) => u.id).sort(), ["c0", "c1"])
    }).pipe(withServer(settings)),
  )

  it.effect("a round where every update is refused keeps the previous global model and says so", () =>
    Effect.gen(function* () {
      const { network } = yield* serverUp
      const nan: Reply = (round) => [
        { round, samples: 10, bytes: Weights.encode(new Float32Array(paramCount).fill(Number.NaN)) },
      ]
      yield* scriptedClient(network, "c0", 1000, nan)
      const coordinator = yield* RoundCoordinator
      const outcome = yield* coordinator.run(1, global, ["c0"])
      assert.isFalse(outcome.modelUpdated)
      assert.strictEqual(outcome.global, global)
      assert.strictEqual(outcome.state.rejectedUpdates, 1)
    }).pipe(withServer(settings)),
  )
})

/** Runs `body` on a server whose updates spill through a spy, in a directory of the test's own. */
const withSpy = <A, E, R>(serverSettings: typeof settings, body: (spy: SpillSpy) => Effect.Effect<A, E, R>) =>
  Effect.gen(function* () {
    const spy = yield* spillSpy
    return yield* body(spy).pipe(withServer(serverSettings), Effect.provideService(UpdateSpill, spy.service))
  }).pipe(Effect.scoped)

// Every typed array or buffer reachable from `value`: what a round state must not hold.
const buffersIn = (value: unknown, seen = new Set<unknown>()): Array<unknown> => {
  if (typeof value !== "object" || value === null || seen.has(value)) return []
  seen.add(value)
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return [value]
  const children =
    value instanceof Map ? [...value.entries()] : value instanceof Set ? [...value] : Object.values(value)
  return children.flatMap((child) => buffersIn(child, seen))
}

describe("RoundCoordinator: updates spill to disk, memory independent of the number of clients", () => {
  it.effect(
    "the same updates arriving in different orders give a bit-identical global model, equal to aggregateCanonical of them",
    () =>
      withSpy(settings, () =>
        Effect.gen(function* () {
          const { network } = yield* serverUp
          const five = ["c0", "c1", "c2", "c3", "c4"]
          const updates = yield* orderSensitive(5, paramCount, five).pipe(Random.withSeed("arrival orders"))
          for (const update of updates) {
            const bytes = Weights.encode(update.weights)
            yield* scriptedClient(network, update.id, 5000, (round) => [{ round, samples: update.samples, bytes }])
          }
          const expected = bitsOf(yield* aggregateCanonical(updates).pipe(Effect.orDie))
          const coordinator = yield* RoundCoordinator
          const orders = [
            [0, 1, 2, 3, 4],
            [4, 3, 2, 1, 0],
            [2, 0, 4, 1, 3],
            [1, 4, 0, 3, 2],
            [3, 2, 1, 4, 0],
          ]
          const models = new Set<string>()
          for (const [index, order] of orders.entries()) {
            // The k-th to arrive is held on the wire k × 10 ms.
            for (const [position, k] of order.entries()) {
              yield* network.delay(five[k]!, "server:1", `${(position + 1) * 10} millis`)
            }
            const fiber = yield* Effect.forkChild(coordinator.run(index + 1, global, five))
            for (let step = 0; step < order.length; step++) {
              yield* settle()
              yield* TestClock.adjust("10 millis")
            }
            const outcome = yield* Fiber.join(fiber)
            assert.deepStrictEqual(
              outcome.state.accepted.map((u) => u.id),
              order.map((k) => five[k]!),
            )
            assert.deepStrictEqual(bitsOf(outcome.global), expected)
            models.add(bitsOf(outcome.global).join())
          }
          assert.strictEqual(models.size, 1)
          // In arrival order the same updates would not have given one model.
          const plain = new Set<string>()
          for (const order of orders) plain.add(bitsOf(yield* fedAvg(order.map((k) => updates[k]!))).join())
          assert.isAbove(plain.size, 1)
        }),
      ),
  )

  it.effect(
    "an update whose NaN is in its last chunk is spilled up to that chunk, then rejected and its spill deleted at once, before the round ends; nothing of it is averaged",
    () => {
      const big = settingsWith({ model: "2nn" })
      const model = Model.make("2nn")
      const modelBytes = model.paramCount * 4
      const start = model.init(7)
      return withSpy(big, (spy) =>
        Effect.gen(function* () {
          const { network, seen } = yield* serverUp
          const nanLast: Reply = (round, received) => {
            const weights = shifted(received, 0.2)
            weights[weights.length - 1] = Number.NaN
            return [{ round, samples: 200, bytes: Weights.encode(weights) }]
          }
          // c3 dies without answering once the others are judged, so the round is still open then.
          const replies: Record<string, Reply> = {
            c0: honest(0.1, 100),
            c1: nanLast,
            c2: honest(0.3, 300),
            c3: () => [],
          }
          for (const id of ids) yield* scriptedClient(network, id, 1000, replies[id]!)
          const coordinator = yield* RoundCoordinator
          const fiber = yield* Effect.forkChild(coordinator.run(1, start, ids))
          yield* until(seen, (e) => e._tag === "UpdateRejected" && e.id === "c1")
          yield* settle(() => spy.created.filter((c) => c.appended === modelBytes).length === 2, "two spilled updates")
          assert.isUndefined(fiber.pollUnsafe())
          // Written chunk by chunk until the last one showed the NaN, then deleted: only the two
          // honest spills are on disk while the round still runs.
          const poisoned = spy.created.filter((c) => c.discarded)
          assert.strictEqual(poisoned.length, 1)
          assert.isAbove(poisoned[0]!.appended, 0)
          assert.isBelow(poisoned[0]!.appended, modelBytes)
          assert.isFalse(fs.existsSync(poisoned[0]!.path))
          assert.strictEqual(spy.files().filter((f) => f.endsWith(".f32le")).length, 2)
          yield* network.kill("c3")
          const outcome = yield* Fiber.join(fiber)
          assert.deepStrictEqual(exclusionsOf(outcome), [
            { id: "c1", reason: "rejected: non-finite weights" },
            { id: "c3", reason: "Offline" },
          ])
          const expected = yield* fedAvg([
            { weights: shifted(start, 0.1), samples: 100 },
            { weights: shifted(start, 0.3), samples: 300 },
          ])
          assert.deepStrictEqual(bitsOf(outcome.global), bitsOf(expected))
          assert.deepStrictEqual(spy.files(), [])
        }),
      )
    },
  )

  it.effect("a refused update's spill is deleted when it is refused, not at the end of the round", () =>
    withSpy(settings, (spy) =>
      Effect.gen(function* () {
        const { network, seen } = yield* serverUp
        const twice: Reply = (round, model) => [
          { round, samples: 200, bytes: Weights.encode(shifted(model, 0.2)) },
          { round, samples: 200, bytes: Weights.encode(shifted(model, 99)) },
        ]
        const replies: Record<string, Reply> = { c0: honestReplies.c0!, c1: twice, c2: honestReplies.c2!, c3: () => [] }
        for (const id of ids) yield* scriptedClient(network, id, 1000, replies[id]!)
        const coordinator = yield* RoundCoordinator
        const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
        yield* until(seen, (e) => e._tag === "UpdateRejected" && /duplicate/.test(e.reason))
        assert.isUndefined(fiber.pollUnsafe())
        assert.strictEqual(spy.removed.length, 1)
        assert.isFalse(fs.existsSync(spy.removed[0]!))
        assert.strictEqual(spy.files().filter((f) => f.endsWith(".f32le")).length, 3)
        yield* TestClock.adjust("5 seconds")
        yield* Fiber.join(fiber)
        assert.deepStrictEqual(spy.files(), [])
      }),
    ),
  )

  it.effect(
    "every spill of a round is deleted when the round is interrupted, and when the next one ends normally",
    () =>
      withSpy(settings, (spy) =>
        Effect.gen(function* () {
          const { network } = yield* serverUp
          for (const id of ids) yield* scriptedClient(network, id, 1000, id === "c3" ? () => [] : honestReplies[id]!)
          const coordinator = yield* RoundCoordinator
          const fiber = yield* Effect.forkChild(coordinator.run(1, global, ids))
          yield* settle(
            () => spy.created.filter((c) => c.appended === paramCount * 4).length === 3,
            "three spilled updates",
          )
          // The round's directory and three spills, while c3 is awaited.
          assert.strictEqual(spy.files().length, 4)
          yield* Fiber.interrupt(fiber)
          assert.deepStrictEqual(spy.files(), [])
          const next = yield* coordinator.run(2, global, ["c0", "c1", "c2"])
          assert.isTrue(next.modelUpdated)
          assert.strictEqual(spy.directories.length, 2)
          assert.deepStrictEqual(spy.files(), [])
        }),
      ),
  )

  it.effect(
    "a round holds no update in memory: its state keeps ids, sample counts, byte counts and spills; each update goes to disk whole and is read back once, in bounded chunks; every client is sent the same model bytes",
    () =>
      withSpy(settings, (spy) =>
        Effect.gen(function* () {
          const { network } = yield* serverUp
          const received: Array<Float32Array> = []
          for (const id of ids) {
            yield* scriptedClient(network, id, 1000, (round, model) => {
              received.push(model)
              return honestReplies[id]!(round, model)
            })
          }
          const coordinator = yield* RoundCoordinator
          const outcome = yield* coordinator.run(1, global, ids)
          assert.deepStrictEqual(buffersIn(outcome.state), [])
          assert.deepStrictEqual(
            outcome.state.accepted.map((u) => Object.keys(u).sort()),
            ids.map(() => ["bytes", "id", "samples", "spill"]),
          )
          assert.deepStrictEqual(
            spy.created.map((c) => c.appended),
            ids.map(() => paramCount * 4),
          )
          const readBack = new Map<string, number>()
          for (const read of spy.reads) readBack.set(read.path, (readBack.get(read.path) ?? 0) + read.length)
          assert.deepStrictEqual(
            [...readBack.values()],
            ids.map(() => paramCount * 4),
          )
          for (const read of spy.reads) assert.isAtMost(read.length, defaultAggregationChunk * 4)
          assert.deepStrictEqual(
            received.map(bitsOf),
            ids.map(() => bitsOf(global)),
          )
          assert.deepStrictEqual(bitsOf(outcome.global), bitsOf(yield* fedAvg(ids.map(honestUpdate))))
          assert.deepStrictEqual(spy.files(), [])
        }),
      ),
  )

  it.effect(
    "an update the server cannot store is refused as not stored, never averaged, and the round still ends at once",
    () =>
      Effect.gen(function* () {
        const spy = yield* spillSpy
        const full = {
          ...spy.service,
          create: (dir: string) =>
            Effect.flatMap(spy.service.create(dir), (writer) =>
              Effect.fail(
                new UpdateSpillError({ operation: "create", path: writer.spill.path, reason: "ENOSPC: disk full" }),
              ),
            ),
        }
        const { outcome } = yield* roundWith(honestReplies.c1!).pipe(
          withServer(settings),
          Effect.provideService(UpdateSpill, full),
        )
        assert.isFalse(outcome.modelUpdated)
        assert.strictEqual(outcome.global, global)
        assert.deepStrictEqual(
          exclusionsOf(outcome).map((e) => e.reason),
          ids.map(() => "rejected: not stored by the server: ENOSPC: disk full"),
        )
        assert.strictEqual(outcome.durationMs, 0)
        assert.deepStrictEqual(spy.files(), [])
      }).pipe(Effect.scoped),
  )
})
