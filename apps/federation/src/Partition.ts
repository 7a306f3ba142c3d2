/**
 * How the training set is dealt out to clients, McMahan et al. (2017) style:
 *
 * - `"iid"`: shuffle, then cut into `clients` equal shards (sizes differ by at
 *   most one); every client sees every digit.
 * - `"noniid"` (pathological non-IID): sort by label, cut into `2 × clients`
 *   equal shards and give each client two of them at random, so each client
 *   holds mostly two digits.
 *
 * Shards are index arrays into the dataset. Each client computes its own
 * shard from `(seed, kind, clients, index)` with no coordination, so the
 * computation is integer-only and bit-identical in every process.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import type * as Dataset from "./Dataset.ts"
import * as Prng from "./internal/Prng.ts"

/**
 * The partition schemes: `"iid"` or `"noniid"`. A Schema so CLI flags
 * (`--partition noniid`) decode into it.
 *
 * @since 0.1.0
 * @category models
 */
export const Kind = Schema.Literals(["iid", "noniid"])

/**
 * A partition scheme, `"iid"` or `"noniid"` (the type of {@link Kind}).
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = typeof Kind.Type

/**
 * Options of {@link shards}: the scheme, the number of clients and the seed
 * every process shares.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly kind: Kind
  readonly clients: number
  readonly seed: number
}

/**
 * The partition cannot be made: a client count that is not a positive
 * integer or exceeds what the samples allow, or a shard index out of range.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidPartition extends Schema.TaggedError<InvalidPartition>()("InvalidPartition", {
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid partition: ${this.reason}`
  }
}

// Boundaries of `parts` near-equal consecutive pieces of `n` items.
const cut = (n: number, parts: number, part: number): readonly [number, number] => [
  Math.floor((part * n) / parts),
  Math.floor(((part + 1) * n) / parts),
]

const iid = (count: number, clients: number, prng: Prng.Prng): Array<Uint32Array> => {
  const order = Prng.shuffle(prng, Prng.range(count))
  return Array.from({ length: clients }, (_, k) => {
    const [from, to] = cut(count, clients, k)
    return order.slice(from, to)
  })
}

const noniid = (labels: Uint8Array, clients: number, prng: Prng.Prng): Array<Uint32Array> => {
  const count = labels.length
  // Shuffle first so the order within a label is random, then a stable sort by label.
  const order = Array.from(Prng.shuffle(prng, Prng.range(count)))
  order.sort((a, b) => labels[a]! - labels[b]!)
  const pieces = 2 * clients
  const assignment = Prng.shuffle(prng, Prng.range(pieces))
  return Array.from({ length: clients }, (_, k) => {
    const [a0, a1] = cut(count, pieces, assignment[2 * k]!)
    const [b0, b1] = cut(count, pieces, assignment[2 * k + 1]!)
    const shard = new Uint32Array(a1 - a0 + (b1 - b0))
    shard.set(order.slice(a0, a1), 0)
    shard.set(order.slice(b0, b1), a1 - a0)
    return shard
  })
}

/**
 * All `clients` shards of `data`, as indices into it. Shards are disjoint and
 * together cover every sample. Fails with {@link InvalidPartition} when
 * `clients` is not a positive integer or the data has fewer samples than
 * shards (`clients` for iid, `2 × clients` for non-IID).
 *
 * @example
 * ```ts
 * const shards = yield* Partition.shards(train, { kind: "noniid", clients: 4, seed: 1 })
 * ```
 *
 * @since 0.1.0
 * @category partitioning
 */
export const shards = Effect.fnUntraced(function* (
  data: Dataset.Dataset,
  options: Options,
): Effect.fn.Return<ReadonlyArray<Uint32Array>, InvalidPartition> {
  const { clients, kind } = options
  if (!Number.isInteger(clients) || clients < 1) {
    return yield* new InvalidPartition({ reason: `client count ${clients} is not a positive integer` })
  }
  const pieces = kind === "iid" ? clients : 2 * clients
  if (pieces > data.count) {
    return yield* new InvalidPartition({
      reason: `${data.count} samples cannot be cut into ${pieces} non-empty ${kind} shards for ${clients} clients`,
    })
  }
  const prng = Prng.make(Prng.mixSeed(options.seed, kind === "iid" ? 0x11d : 0x4011d))
  return kind === "iid" ? iid(data.count, clients, prng) : noniid(data.labels, clients, prng)
})

/**
 * The shard of client `index` (0-based, below `clients`): what a client
 * process computes from `--seed --shard-index --shard-count --partition`.
 * Identical to `shards(data, options)[index]`.
 *
 * @since 0.1.0
 * @category partitioning
 */
export const shard = Effect.fnUntraced(function* (
  data: Dataset.Dataset,
  options: Options & { readonly index: number },
): Effect.fn.Return<Uint32Array, InvalidPartition> {
  const all = yield* shards(data, options)
  const mine = all[options.index]
  if (!Number.isInteger(options.index) || mine === undefined) {
    return yield* new InvalidPartition({
      reason: `shard index ${options.index} is outside 0..${options.clients - 1}`,
    })
  }
  return mine
})
