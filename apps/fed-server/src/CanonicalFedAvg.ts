/**
 * FedAvg in a canonical order: the updates of a round are averaged in
 * client-id order, never in arrival order. Float sums depend on their order,
 * so this is what makes the same participants give a bit-identical model
 * whatever the timing, and two runs with the same seed provably train the
 * same model (`modelSha256`).
 *
 * Two forms with one result: {@link aggregateCanonical} over updates held in
 * memory (the reference), and {@link aggregateSpilled}, which the rounds use,
 * over updates in their spill files, read chunk by chunk so that memory does
 * not grow with the number of clients.
 *
 * @since 0.3.0
 */
import { FedAvg, Weights } from "@fedguard/federation"
import { Effect } from "effect"
import { byId } from "./internal/byId.ts"
import type * as UpdateAdmission from "./UpdateAdmission.ts"
import { UpdateSpill } from "./UpdateSpill.ts"

/**
 * FedAvg of updates held in memory, in a canonical order (by client id), not
 * in arrival order: float sums depend on their order, so the same
 * participants give a bit-identical model whatever the timing, and two runs
 * with the same seed can be proved to have trained the same model
 * (`modelSha256`). The reference that {@link aggregateSpilled}, which the
 * rounds use, matches bit for bit.
 *
 * @since 0.2.0
 * @category aggregation
 */
export const aggregateCanonical = (
  updates: ReadonlyArray<{ readonly id: string; readonly weights: Float32Array; readonly samples: number }>,
) => FedAvg.aggregate(updates.toSorted(byId))

/**
 * The parameters {@link aggregateSpilled} reduces at a time by default:
 * 262 144, i.e. 1 MiB read per update and a 2 MiB float64 accumulator.
 *
 * @since 0.3.0
 * @category aggregation
 */
export const defaultAggregationChunk = 262_144

/**
 * FedAvg of admitted updates from their spills, in client-id order, `chunk`
 * parameters at a time (`FedAvg.aggregateChunked`, default
 * {@link defaultAggregationChunk}): each chunk is read from every spill in
 * turn into one shared buffer and added into one float64 accumulator, then
 * rounded into the result. Per parameter this is exactly the sum
 * {@link aggregateCanonical} computes (shares `n_k / n`, products added from
 * 0 in client-id order, one rounding to float32), so the two are
 * bit-identical whatever the chunk. Memory: the result, one chunk of bytes
 * and one of float64, and one open file per update, whatever their number.
 *
 * @since 0.3.0
 * @category aggregation
 */
export const aggregateSpilled = Effect.fnUntraced(function* (
  updates: ReadonlyArray<UpdateAdmission.Admitted>,
  options: { readonly chunk?: number | undefined } = {},
) {
  const spills = yield* UpdateSpill
  const ordered = updates.toSorted(byId)
  const readers = yield* Effect.forEach(ordered, (update) => spills.open(update.spill))
  const chunk = Math.max(1, Math.min(options.chunk ?? defaultAggregationChunk, (ordered[0]?.bytes ?? 0) / 4))
  // One buffer for every read: a chunk is consumed before the next one is read.
  const scratch = new Uint8Array(chunk * 4)
  return yield* FedAvg.aggregateChunked(
    ordered.map((update, k) => ({
      samples: update.samples,
      length: update.bytes / 4,
      read: (start: number, length: number) => {
        const bytes = scratch.subarray(0, length * 4)
        return Effect.andThen(readers[k]!.read(start * 4, bytes), Weights.decode(bytes, length))
      },
    })),
    { chunkSize: chunk },
  )
}, Effect.scoped)
