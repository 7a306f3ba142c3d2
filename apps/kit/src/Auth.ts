/**
 * Proof that a client holds the federation secret without sending it: an
 * HMAC-SHA256 over the server's fresh nonce and the client's id.
 *
 * @since 0.1.0
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto"
import { Effect, type Redacted } from "effect"
import * as R from "effect/Redacted"

/**
 * A fresh 32-byte nonce, hex-encoded. Nonces are never reused, so a recorded
 * proof cannot be replayed on another connection.
 *
 * @since 0.1.0
 * @category constructors
 */
export const nonce: Effect.Effect<string> = Effect.sync(() => randomBytes(32).toString("hex"))

/**
 * The proof a client sends: hex HMAC-SHA256(secret, nonce + ":" + id).
 *
 * @since 0.1.0
 * @category proofs
 */
export const prove = (secret: Redacted.Redacted<string>, challenge: string, id: string): string =>
  createHmac("sha256", R.value(secret)).update(`${challenge}:${id}`).digest("hex")

/**
 * Whether `proof` is right for this nonce and id, compared in constant time.
 *
 * @since 0.1.0
 * @category proofs
 */
export const verify = (secret: Redacted.Redacted<string>, challenge: string, id: string, proof: string): boolean => {
  const expected = Buffer.from(prove(secret, challenge, id), "hex")
  const given = Buffer.from(proof, "hex")
  return given.length === expected.length && timingSafeEqual(given, expected)
}
