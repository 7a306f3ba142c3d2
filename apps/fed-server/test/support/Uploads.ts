/**
 * Test support: uploads as the coordinator receives them, without a
 * network: bytes cut into chunks of any size, and an incoming transfer that
 * records its aborts.
 */
import type { Connection, TransportError } from "@fedguard/transport"
import { Effect, Random, type Stream } from "effect"

/** Cuts `bytes` into chunks of the given sizes, cycling, as a transport's frames may (any alignment). */
export const cut = (bytes: Uint8Array, sizes: ReadonlyArray<number>): Array<Uint8Array> => {
  const chunks: Array<Uint8Array> = []
  for (let offset = 0, k = 0; offset < bytes.byteLength; k++) {
    const size = sizes[k % sizes.length]!
    chunks.push(bytes.slice(offset, offset + size))
    offset += size
  }
  return chunks
}

/** An incoming `update` transfer of `bytes`, and the reasons it was aborted with. */
export const incomingTransfer = (bytes: Stream.Stream<Uint8Array, TransportError.TransportError>) => {
  const aborts: Array<string> = []
  const transfer: Connection.IncomingTransfer = {
    id: 1,
    tag: "update",
    meta: {},
    totalBytes: null,
    bytes,
    abort: (reason) => Effect.sync(() => void aborts.push(reason)),
  }
  return { transfer, aborts }
}

/** An update as a client would upload it. */
export interface Update {
  readonly id: string
  readonly weights: Float32Array
  readonly samples: number
}

/** The bits of a float32 model: equal bits, not merely equal values (-0 and 0 differ here). */
export const bitsOf = (model: Float32Array) => Array.from(new Uint32Array(model.buffer, model.byteOffset, model.length))

// Seeded updates whose sums depend on the order they are added in, as 3e16 + 3 - 3e16 does: the
// first two clients train on as many samples and hold opposite large values (±1e15 to ±1e20) in
// every parameter, the others small ones (1e-3 to 1e3, both signs); when a small value is added
// between the two large ones it is partly lost. Random sample counts and ids whose order is not
// their index's (unless `given`).
export const orderSensitive = Effect.fnUntraced(function* (
  count: number,
  length: number,
  given?: ReadonlyArray<string>,
) {
  const ids = new Set<string>(given)
  while (ids.size < count) ids.add(`c${yield* Random.nextIntBetween(0, 1_000_000)}`)
  const samples: Array<number> = []
  for (let k = 0; k < count; k++) samples.push(k === 1 ? samples[0]! : yield* Random.nextIntBetween(1, 5000))
  const weights = Array.from({ length: count }, () => new Float32Array(length))
  for (let i = 0; i < length; i++) {
    const large = Math.fround(((yield* Random.next) + 0.5) * 10 ** (yield* Random.nextIntBetween(15, 20)))
    for (let k = 0; k < count; k++) {
      const small = ((yield* Random.next) - 0.5) * 10 ** (yield* Random.nextIntBetween(-3, 3))
      weights[k]![i] = k === 0 ? large : k === 1 ? -large : small
    }
  }
  return [...ids].map((id, k): Update => ({ id, weights: weights[k]!, samples: samples[k]! }))
})
