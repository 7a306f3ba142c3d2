/**
 * The wire form of a parameter vector: its float32 values as raw
 * little-endian bytes (4 per parameter, no header). The transport frames and
 * chunks the bytes; this module only converts.
 *
 * On little-endian hosts (every platform Node ships for) both directions are
 * zero-copy views when alignment allows; on a big-endian host they copy
 * through a `DataView`, so the bytes are the same everywhere.
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"

const hostIsLittleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1

/**
 * The byte length is not a multiple of 4, so the bytes cannot be float32
 * values (a truncated or corrupted upload). Final.
 *
 * @since 0.1.0
 * @category errors
 */
export class MisalignedWeights extends Schema.TaggedError<MisalignedWeights>()("MisalignedWeights", {
  byteLength: Schema.Number,
}) {
  override get message(): string {
    return `${this.byteLength} bytes is not a whole number of float32 weights (not a multiple of 4)`
  }
}

/**
 * The bytes hold a different number of parameters than the model expects.
 * Final.
 *
 * @since 0.1.0
 * @category errors
 */
export class WeightCountMismatch extends Schema.TaggedError<WeightCountMismatch>()("WeightCountMismatch", {
  expected: Schema.Number,
  actual: Schema.Number,
}) {
  override get message(): string {
    return `expected ${this.expected} weights (${this.expected * 4} bytes), got ${this.actual} (${this.actual * 4} bytes)`
  }
}

/**
 * Every way {@link decode} can fail.
 *
 * @since 0.1.0
 * @category errors
 */
export type WeightsError = MisalignedWeights | WeightCountMismatch

/**
 * The little-endian bytes of `weights`. Zero-copy on little-endian hosts:
 * the result is a view of the same memory, so do not mutate `weights` while
 * the bytes are being sent.
 *
 * @example
 * ```ts
 * const bytes = Weights.encode(params) // params.length * 4 bytes
 * ```
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (weights: Float32Array): Uint8Array => {
  if (hostIsLittleEndian) return new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength)
  const out = new Uint8Array(weights.byteLength)
  const view = new DataView(out.buffer)
  for (let i = 0; i < weights.length; i++) view.setFloat32(i * 4, weights[i]!, true)
  return out
}

/**
 * Reads little-endian float32 weights back from `bytes`, checking that the
 * length is a multiple of 4 ({@link MisalignedWeights}) and, when
 * `expectedCount` is given (use `model.paramCount`), that it holds exactly
 * that many ({@link WeightCountMismatch}). A view of `bytes` when the host is
 * little-endian and `bytes.byteOffset` is 4-aligned, otherwise a copy; call
 * `.slice()` on the result to own it if the transport reuses its buffers.
 *
 * @example
 * ```ts
 * const params = yield* Weights.decode(bytes, model.paramCount)
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (bytes: Uint8Array, expectedCount?: number): Effect.Effect<Float32Array, WeightsError> => {
  if (bytes.byteLength % 4 !== 0) return Effect.fail(new MisalignedWeights({ byteLength: bytes.byteLength }))
  const count = bytes.byteLength / 4
  if (expectedCount !== undefined && count !== expectedCount) {
    return Effect.fail(new WeightCountMismatch({ expected: expectedCount, actual: count }))
  }
  if (hostIsLittleEndian) {
    if (bytes.byteOffset % 4 === 0) return Effect.succeed(new Float32Array(bytes.buffer, bytes.byteOffset, count))
    return Effect.succeed(new Float32Array(bytes.slice().buffer))
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true)
  return Effect.succeed(out)
}
