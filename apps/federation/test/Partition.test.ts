import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Dataset from "../src/Dataset.ts"
import * as Partition from "../src/Partition.ts"
import { mnist, synthetic } from "./fixtures.ts"

const train = Effect.gen(function* () {
  return (yield* Dataset.split(yield* mnist, { seed: 1 })).train
})

// Share of a shard held by its two most frequent digits.
const topTwoShare = (data: Dataset.Dataset, shard: Uint32Array): number => {
  const counts = Dataset.classCounts(data, shard).sort((a, b) => b - a)
  return (counts[0]! + counts[1]!) / shard.length
}

const assertDisjointAndCovering = (shards: ReadonlyArray<Uint32Array>, count: number): void => {
  const seen = new Uint8Array(count)
  for (const shard of shards) for (const i of shard) seen[i] = seen[i]! + 1
  assert.isTrue(
    seen.every((n) => n === 1),
    "every sample is in exactly one shard",
  )
}

// FNV-1a over the shard indices: pins the algorithm, because client processes
// of different builds must still agree on who holds which sample.
const fingerprint = (shards: ReadonlyArray<Uint32Array>): number => {
  let h = 0x811c9dc5
  for (const shard of shards) {
    for (const i of shard) h = Math.imul(h ^ i, 0x01000193) >>> 0
    h = Math.imul(h ^ 0xffff, 0x01000193) >>> 0
  }
  return h
}

describe("Partition", () => {
  it.effect("gives the same shards for the same seed and different shards for another seed", () =>
    Effect.gen(function* () {
      const data = yield* train
      for (const kind of ["iid", "noniid"] as const) {
        const a = yield* Partition.shards(data, { kind, clients: 4, seed: 9 })
        const b = yield* Partition.shards(data, { kind, clients: 4, seed: 9 })
        const c = yield* Partition.shards(data, { kind, clients: 4, seed: 10 })
        assert.deepStrictEqual(b, a)
        assert.notDeepEqual(c, a)
      }
    }),
  )

  it.effect("computes exactly the shards pinned for seed 1, as every client build must", () =>
    Effect.gen(function* () {
      const data = synthetic(1000)
      const iid = yield* Partition.shards(data, { kind: "iid", clients: 4, seed: 1 })
      const noniid = yield* Partition.shards(data, { kind: "noniid", clients: 4, seed: 1 })
      assert.strictEqual(fingerprint(iid), IID_FINGERPRINT)
      assert.strictEqual(fingerprint(noniid), NONIID_FINGERPRINT)
    }),
  )

  it.effect("lets a client compute just its own shard, equal to its entry in the full partition", () =>
    Effect.gen(function* () {
      const data = yield* train
      const all = yield* Partition.shards(data, { kind: "noniid", clients: 5, seed: 3 })
      for (let index = 0; index < 5; index++) {
        const mine = yield* Partition.shard(data, { kind: "noniid", clients: 5, seed: 3, index })
        assert.deepStrictEqual(mine, all[index])
      }
    }),
  )

  it.effect("cuts iid shards that are disjoint, cover every sample and differ in size by at most one", () =>
    Effect.gen(function* () {
      const data = synthetic(1003)
      const shards = yield* Partition.shards(data, { kind: "iid", clients: 4, seed: 2 })
      assertDisjointAndCovering(shards, 1003)
      const sizes = shards.map((s) => s.length)
      assert.isAtMost(Math.max(...sizes) - Math.min(...sizes), 1)
    }),
  )

  it.effect("gives each of 10 non-IID clients mostly two digits, while iid clients see all ten", () =>
    Effect.gen(function* () {
      const data = yield* train
      const noniid = yield* Partition.shards(data, { kind: "noniid", clients: 10, seed: 1 })
      assertDisjointAndCovering(noniid, data.count)
      const shares = noniid.map((shard) => topTwoShare(data, shard))
      for (const share of shares) assert.isAtLeast(share, 0.7)
      // Shards of 400 within classes of ~800: half the clients hold (almost) only two digits.
      assert.isAtLeast(shares.filter((share) => share >= 0.95).length, 5)
      const iid = yield* Partition.shards(data, { kind: "iid", clients: 10, seed: 1 })
      for (const shard of iid) {
        assert.isAtMost(topTwoShare(data, shard), 0.35)
        assert.isTrue(Dataset.classCounts(data, shard).every((n) => n > 0))
      }
    }),
  )

  it.effect("keeps 4 non-IID clients skewed although 8 shards of 1,000 straddle the ~800-sample digits", () =>
    Effect.gen(function* () {
      const data = yield* train
      const noniid = yield* Partition.shards(data, { kind: "noniid", clients: 4, seed: 1 })
      const iid = yield* Partition.shards(data, { kind: "iid", clients: 4, seed: 1 })
      assertDisjointAndCovering(noniid, data.count)
      for (let k = 0; k < 4; k++) {
        assert.isAtLeast(topTwoShare(data, noniid[k]!), 0.55)
        assert.isAtMost(Dataset.classCounts(data, noniid[k]!).filter((n) => n > 0).length, 5)
        assert.isAtMost(topTwoShare(data, iid[k]!), 0.3)
      }
    }),
  )

  it.effect("refuses zero or fractional client counts, more shards than samples, and foreign shard indices", () =>
    Effect.gen(function* () {
      const data = synthetic(10)
      const failures: ReadonlyArray<Effect.Effect<unknown, Partition.InvalidPartition>> = [
        Partition.shards(data, { kind: "iid", clients: 0, seed: 1 }),
        Partition.shards(data, { kind: "iid", clients: 1.5, seed: 1 }),
        Partition.shards(data, { kind: "iid", clients: 11, seed: 1 }),
        Partition.shards(data, { kind: "noniid", clients: 6, seed: 1 }),
        Partition.shard(data, { kind: "iid", clients: 2, seed: 1, index: 2 }),
        Partition.shard(data, { kind: "iid", clients: 2, seed: 1, index: -1 }),
      ]
      for (const failure of failures) {
        const error = yield* Effect.flip(failure)
        assert.strictEqual(error._tag, "InvalidPartition")
      }
      const edge = yield* Partition.shards(data, { kind: "noniid", clients: 5, seed: 1 })
      assert.strictEqual(edge.length, 5)
    }),
  )
})

const IID_FINGERPRINT = 2240066269
const NONIID_FINGERPRINT = 2582936377
