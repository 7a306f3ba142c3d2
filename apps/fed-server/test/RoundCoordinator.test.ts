import { assert, describe, it } from "@effect/vitest"
import { Model, Weights } from "@fedguard/federation"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { aggregateCanonical, RoundCoordinator } from "../src/RoundCoordinator.ts"
import * as ServerSettings from "../src/ServerSettings.ts"
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

describe("RoundCoordinator.aggregateCanonical", () => {
  // Float sums depend on their order: with these values (1e16 + 1 is not a float64), FedAvg in
  // arrival order gives 0 or 1 depending on who came first.
  const update = (id: string, w: number) => ({ id, weights: Float32Array.of(w), samples: 100, bytes: 4 })
  const a = update("a", 3e16)
  const b = update("b", 3)
  const c = update("c", -3e16)

  it.effect("averages the same updates to a bit-identical model whatever their arrival order", () =>
    Effect.gen(function* () {
      const arrivalOrders = [
        [a, b, c],
        [a, c, b],
        [b, a, c],
        [b, c, a],
        [c, a, b],
        [c, b, a],
      ]
      const results = new Set<number>()
      for (const order of arrivalOrders) results.add((yield* aggregateCanonical(order))[0]!)
      assert.strictEqual(results.size, 1)
      // Without the canonical order the arrival order shows: the test would see it.
      const plain = new Set<number>()
      for (const order of arrivalOrders) plain.add((yield* fedAvg(order))[0]!)
      assert.isAbove(plain.size, 1)
    }),
  )
})
