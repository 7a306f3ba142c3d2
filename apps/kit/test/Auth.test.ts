import { assert, describe, it } from "@effect/vitest"
import { Effect, Redacted } from "effect"
import * as Auth from "../src/Auth.ts"

const secret = Redacted.make("federation-secret")

describe("Auth", () => {
  it.effect("a proof made with the secret verifies; it never contains the secret", () =>
    Effect.gen(function* () {
      const nonce = yield* Auth.nonce
      const proof = Auth.prove(secret, nonce, "c1")
      assert.isTrue(Auth.verify(secret, nonce, "c1", proof))
      assert.notInclude(proof, "federation-secret")
    }),
  )

  it.effect("a wrong secret, another nonce, another id or a mangled proof does not verify", () =>
    Effect.gen(function* () {
      const nonce = yield* Auth.nonce
      const proof = Auth.prove(secret, nonce, "c1")
      assert.isFalse(Auth.verify(Redacted.make("other-secret"), nonce, "c1", proof))
      assert.isFalse(Auth.verify(secret, yield* Auth.nonce, "c1", proof))
      assert.isFalse(Auth.verify(secret, nonce, "c2", proof))
      assert.isFalse(Auth.verify(secret, nonce, "c1", proof.slice(2)))
      assert.isFalse(Auth.verify(secret, nonce, "c1", "not hex at all"))
    }),
  )

  it.effect("nonces are fresh", () =>
    Effect.gen(function* () {
      const nonces = new Set<string>()
      for (let i = 0; i < 100; i++) nonces.add(yield* Auth.nonce)
      assert.strictEqual(nonces.size, 100)
    }),
  )
})
