/**
 * Reads one uploaded update as it streams in: under stall-guard's
 * `TransferTracker` (an upload that stops moving is given up, one longer than
 * the model is cut off), through admission's chunk-by-chunk checks
 * (`UpdateAdmission.scanWeights`), into a spill file of the running round.
 * Nothing of an update is held in memory beyond the chunk in hand, and
 * nothing of a refused update outlives its upload: the spill of an update
 * whose NaN shows up in its last chunk is deleted before the round ever sees
 * the candidate.
 *
 * @since 0.3.0
 */
import { TransferTracker } from "@fedguard/stall-guard"
import type { Connection } from "@fedguard/transport"
import { type Duration, Effect, Option, References } from "effect"
import * as UpdateAdmission from "./UpdateAdmission.ts"
import { UpdateSpill } from "./UpdateSpill.ts"

/**
 * Where an upload's bytes go: into a new spill in the running round's
 * `directory`, or, when its metadata already decided the `refusal`, nowhere
 * (they are read to their end, so the sender finishes normally, and
 * dropped).
 *
 * @since 0.3.0
 * @category models
 */
export type Destination =
  | { readonly _tag: "Spill"; readonly directory: string }
  | { readonly _tag: "Drop"; readonly refusal: UpdateAdmission.UpdateRefused }

/**
 * Options of {@link read}: who sent the update, the model's `paramCount`,
 * where its bytes go, and the upload's `idleTimeout`.
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly id: string
  readonly paramCount: number
  readonly destination: Destination
  readonly idleTimeout: Duration.Input
}

/**
 * Reads `transfer`'s bytes to their end and says what they came to:
 * `Spilled` (finite, the model's length, in a new spill of the destination's
 * directory) or `Refused` (nothing kept). Fails as `TransferTracker.forEach` does
 * (`TransferIdle`, `TransferDidNotStart`, `TransferTooLarge`, each aborting
 * the transfer; the transport's error when the connection breaks), and
 * with `UpdateSpillError` when the spill cannot be written (the transfer is
 * then aborted too). On every failure or interruption the spill is deleted.
 *
 * @since 0.3.0
 * @category reading
 */
export const read = Effect.fnUntraced(function* (transfer: Connection.IncomingTransfer, options: Options) {
  const track = <E, R>(onChunk: (chunk: Uint8Array) => Effect.Effect<void, E, R>) =>
    // Under FlareAgent's progress tracker: an upload that does not start, or stops moving, for
    // the ack-progress timeout is given up (the sender is told), whatever its heartbeats say.
    TransferTracker.forEach(transfer.bytes, onChunk, {
      idleTimeout: options.idleTimeout,
      maxBytes: options.paramCount * 4,
      abort: transfer.abort,
    }).pipe(Effect.provideService(References.MinimumLogLevel, "Error"))

  const { destination } = options
  if (destination._tag === "Drop") {
    yield* track(() => Effect.void)
    return { _tag: "Refused", refusal: destination.refusal } satisfies UpdateAdmission.Content
  }
  const spills = yield* UpdateSpill
  return yield* Effect.scoped(
    Effect.gen(function* () {
      const scan = UpdateAdmission.scanWeights(options.id, options.paramCount)
      // The sender learns that the server could not keep its update, not where the server keeps them.
      const unstored = transfer.abort("the server could not store the update")
      const writer = yield* spills.create(destination.directory).pipe(Effect.tapError(() => unstored))
      // A spill whose upload failed or was interrupted goes with it.
      yield* Effect.addFinalizer((exit) => (exit._tag === "Success" ? Effect.void : writer.discard))
      // Once a value is not finite the update is refused whatever follows: what was written goes
      // at once, and the rest is only counted (its length decides the reason).
      const bytes = yield* track((chunk) => (scan.feed(chunk) ? writer.append(chunk) : writer.discard)).pipe(
        Effect.tapError((error) => (error._tag === "UpdateSpillError" ? unstored : Effect.void)),
      )
      const refusal = scan.verdict()
      if (Option.isSome(refusal)) {
        yield* writer.discard
        return { _tag: "Refused", refusal: refusal.value } satisfies UpdateAdmission.Content
      }
      return { _tag: "Spilled", spill: writer.spill, bytes } satisfies UpdateAdmission.Content
    }),
  )
})
