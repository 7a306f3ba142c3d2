import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Weights } from "@fedguard/federation"
import { Effect, Random, Result, Stream } from "effect"
import { aggregateCanonical, aggregateSpilled } from "../src/CanonicalFedAvg.ts"
import * as RoundState from "../src/RoundState.ts"
import * as UpdateAdmission from "../src/UpdateAdmission.ts"
import * as UpdateIntake from "../src/UpdateIntake.ts"
import { UpdateSpill } from "../src/UpdateSpill.ts"
import { fedAvg } from "./support/Harness.ts"
import { spillSpy } from "./support/SpillSpy.ts"
import { bitsOf, cut, incomingTransfer, orderSensitive, type Update } from "./support/Uploads.ts"

const permutationsOf = (n: number): Array<Array<number>> =>
  n === 0
    ? [[]]
    : permutationsOf(n - 1).flatMap((p) =>
        Array.from({ length: n }, (_, at) => [...p.slice(0, at), n - 1, ...p.slice(at)]),
      )

// Every arrival order of n updates up to 4 (24 orders), 50 seeded ones beyond.
const arrivalOrders = Effect.fnUntraced(function* (n: number) {
  if (n <= 4) return permutationsOf(n)
  const orders: Array<Array<number>> = []
  for (let i = 0; i < 50; i++) orders.push(yield* Random.shuffle(Array.from({ length: n }, (_, k) => k)))
  return orders
})

/**
 * One round's uploads arriving in `arrival` order, each cut into seeded random chunks, streamed
 * through the coordinator's intake into spills and admitted as the coordinator does: the round's
 * state afterwards.
 */
const arrive = Effect.fnUntraced(function* (updates: ReadonlyArray<Update>, arrival: ReadonlyArray<number>) {
  const spills = yield* UpdateSpill
  const round = 1
  const directory = yield* spills.directory(round)
  let state = RoundState.start(
    round,
    updates.map((u) => u.id),
  )
  for (const k of arrival) {
    const update = updates[k]!
    const sizes = [yield* Random.nextIntBetween(1, 64), yield* Random.nextIntBetween(1, 64)]
    const { transfer } = incomingTransfer(Stream.fromIterable(cut(Weights.encode(update.weights), sizes)))
    const content = yield* UpdateIntake.read(transfer, {
      id: update.id,
      paramCount: update.weights.length,
      destination: { _tag: "Spill", directory },
      idleTimeout: "60 seconds",
    })
    const candidate = { id: update.id, round, samples: update.samples, content }
    const verdict = UpdateAdmission.check(candidate, {
      round,
      isParticipant: state.pending.has(update.id),
      alreadySubmitted: state.submitted.has(update.id),
      declaredSamples: 5000,
    })
    if (Result.isFailure(verdict)) {
      if (content._tag === "Spilled") yield* spills.remove(content.spill)
      state = RoundState.reject(state, verdict.failure)
    } else state = RoundState.accept(state, verdict.success)
  }
  return state
})

describe("CanonicalFedAvg.aggregateSpilled", () => {
  it.effect(
    "gives the bit-identical model of aggregateCanonical for every arrival order: seeded sets of 1 to 8 order-sensitive updates, every order of up to 4 and 50 seeded orders beyond, any chunking",
    () =>
      Effect.gen(function* () {
        const spy = yield* spillSpy
        let arrivalOrderShows = 0
        for (let set = 0; set < 16; set++) {
          const count = 1 + (set % 8)
          const length = 37
          const updates = yield* orderSensitive(count, length)
          const expected = bitsOf(yield* aggregateCanonical(updates).pipe(Effect.orDie))
          const plainInArrivalOrder = new Set<string>()
          for (const arrival of yield* arrivalOrders(count)) {
            const chunk = [1, 3, 8, 36, 37, undefined][yield* Random.nextIntBetween(0, 5)]
            const actual = yield* Effect.gen(function* () {
              const state = yield* arrive(updates, arrival)
              assert.deepStrictEqual(
                state.accepted.map((u) => u.id),
                arrival.map((k) => updates[k]!.id),
              )
              return yield* aggregateSpilled(state.accepted, { chunk })
            }).pipe(Effect.provideService(UpdateSpill, spy.service), Effect.scoped, Effect.orDie)
            assert.deepStrictEqual(bitsOf(actual), expected, `set ${set}, arrival ${arrival}, chunk ${chunk}`)
            plainInArrivalOrder.add(bitsOf(yield* fedAvg(arrival.map((k) => updates[k]!))).join())
          }
          if (plainInArrivalOrder.size > 1) arrivalOrderShows++
        }
        // The values are order-sensitive: for every set of 3 or more (two terms add the same either
        // way), FedAvg in arrival order would have given different models.
        assert.strictEqual(arrivalOrderShows, 12)
        // Every round's spills went with its Scope.
        assert.deepStrictEqual(spy.files(), [])
      }).pipe(Random.withSeed("aggregateSpilled"), Effect.scoped),
    // About 3.5 s alone; CPU-bound, so a loaded machine stretches it (30.5 s measured under a load
    // average of 14): a generous bound, not a speed target.
    120_000,
  )

  it.effect(
    "reads chunk by chunk, each chunk from every spill in client-id order, never more than the chunk at once, each spill exactly once in all",
    () =>
      Effect.gen(function* () {
        const spy = yield* spillSpy
        const updates = yield* orderSensitive(3, 10).pipe(Random.withSeed(7))
        const byPath = new Map<string, string>()
        const model = yield* Effect.gen(function* () {
          const state = yield* arrive(updates, [2, 0, 1]).pipe(Random.withSeed(8))
          for (const u of state.accepted) byPath.set(u.spill.path, u.id)
          return yield* aggregateSpilled(state.accepted, { chunk: 4 })
        }).pipe(Effect.provideService(UpdateSpill, spy.service), Effect.scoped, Effect.orDie)
        assert.deepStrictEqual(bitsOf(model), bitsOf(yield* aggregateCanonical(updates).pipe(Effect.orDie)))
        const ids = updates.map((u) => u.id).sort()
        assert.deepStrictEqual(
          spy.reads.map((r) => [byPath.get(r.path), r.position, r.length]),
          [0, 16, 32].flatMap((position) => ids.map((id) => [id, position, position === 32 ? 8 : 16])),
        )
        // One reader per update, open while the reduction runs.
        assert.strictEqual(spy.open.most, 3)
        assert.strictEqual(spy.open.now, 0)
      }).pipe(Effect.scoped),
  )

  it.effect(
    "a NaN in the last chunk of an update leaves nothing of it in the sum: refused, its spill deleted, the others' average bit for bit what it is without it",
    () =>
      Effect.gen(function* () {
        const spy = yield* spillSpy
        const updates = yield* orderSensitive(4, 300).pipe(Random.withSeed(11))
        const poisoned = updates[1]!.weights.slice()
        poisoned[poisoned.length - 1] = Number.NaN
        const withNaN = updates.map((u, k) => (k === 1 ? { ...u, weights: poisoned } : u))
        const others = updates.filter((_, k) => k !== 1)
        for (const arrival of [
          [0, 1, 2, 3],
          [1, 3, 2, 0],
          [3, 2, 0, 1],
        ]) {
          const model = yield* Effect.gen(function* () {
            const state = yield* arrive(withNaN, arrival).pipe(Random.withSeed(arrival.join()))
            assert.deepStrictEqual(state.accepted.map((u) => u.id).sort(), others.map((u) => u.id).sort())
            assert.strictEqual(state.rejectedUpdates, 1)
            assert.deepStrictEqual(
              state.excluded.map(({ id, reason }) => [id, RoundState.reasonText(reason)]),
              [[updates[1]!.id, "rejected: non-finite weights"]],
            )
            // Of the poisoned update nothing is on disk: only the three admitted spills remain.
            assert.deepStrictEqual(spy.files().filter((f) => f.endsWith(".f32le")).length, 3)
            for (const u of state.accepted) assert.isTrue(fs.existsSync(u.spill.path))
            return yield* aggregateSpilled(state.accepted)
          }).pipe(Effect.provideService(UpdateSpill, spy.service), Effect.scoped, Effect.orDie)
          assert.deepStrictEqual(bitsOf(model), bitsOf(yield* aggregateCanonical(others).pipe(Effect.orDie)))
          for (const w of model) assert.isTrue(Number.isFinite(w))
        }
        // It was being spilled until its last chunk showed the NaN, then discarded.
        const discarded = spy.created.filter((c) => c.discarded)
        assert.strictEqual(discarded.length, 3)
        for (const c of discarded) {
          assert.isAbove(c.appended, 0)
          assert.isBelow(c.appended, 300 * 4)
        }
      }).pipe(Effect.scoped),
  )
})

describe("CanonicalFedAvg.aggregateCanonical", () => {
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
