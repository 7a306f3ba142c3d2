import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as TransportError from "../src/TransportError.ts"

const retryable = [
  new TransportError.SendTimeout({ peer: "client-1", timeoutMs: 30_000 }),
  new TransportError.ConnectionClosed({ peer: "client-1", reason: "closed by peer: bye" }),
  new TransportError.PeerUnreachable({ peer: "10.0.0.7:7070", reason: "connection refused" }),
]

const final = [
  new TransportError.Rejected({ peer: "server", reason: "unknown client" }),
  new TransportError.DecodeError({ peer: "client-2", reason: "Missing key", path: "body" }),
  new TransportError.FrameTooLarge({ peer: "client-3", size: 2_000_000, maxBytes: 1_048_576 }),
]

describe("TransportError", () => {
  describe("classification", () => {
    it.effect("classifies timeouts, closed connections and unreachable peers as retryable, not final", () =>
      Effect.sync(() => {
        for (const error of retryable) {
          assert.isTrue(TransportError.isRetryable(error), error._tag)
          assert.isFalse(TransportError.isFinal(error), error._tag)
        }
      }),
    )

    it.effect("classifies rejections, undecodable input and oversized frames as final, not retryable", () =>
      Effect.sync(() => {
        for (const error of final) {
          assert.isTrue(TransportError.isFinal(error), error._tag)
          assert.isFalse(TransportError.isRetryable(error), error._tag)
        }
      }),
    )

    it.effect("puts every tag in exactly one of the two sets", () =>
      Effect.sync(() => {
        const tags = [...retryable, ...final].map((error) => error._tag)
        assert.deepStrictEqual([...TransportError.retryableTags].sort(), retryable.map((e) => e._tag).sort())
        assert.deepStrictEqual([...TransportError.finalTags].sort(), final.map((e) => e._tag).sort())
        for (const tag of tags) {
          assert.notStrictEqual(TransportError.retryableTags.has(tag), TransportError.finalTags.has(tag), tag)
        }
      }),
    )

    it.effect("does not retry errors it does not know, nor values that are not tagged errors", () =>
      Effect.sync(() => {
        const unknowns: Array<unknown> = [
          new Error("ECONNRESET"),
          { _tag: "TimeoutError" },
          { _tag: 42 },
          { tag: "SendTimeout" },
          "SendTimeout",
          42,
          null,
          undefined,
        ]
        for (const value of unknowns) {
          assert.isFalse(TransportError.isRetryable(value), String(value))
          assert.isFalse(TransportError.isFinal(value), String(value))
        }
      }),
    )

    it.effect("decides on the tag alone, never on the message text", () =>
      Effect.sync(() => {
        assert.isTrue(TransportError.isRetryable({ _tag: "ConnectionClosed", message: "rejected, invalid, final" }))
        assert.isFalse(TransportError.isRetryable({ _tag: "Rejected", message: "timeout, retry later" }))
      }),
    )

    it.effect("is recoverable by tag with Effect.catchTag", () =>
      Effect.gen(function* () {
        const failing: Effect.Effect<string, TransportError.TransportError> = Effect.fail(retryable[0]!)
        const recovered = yield* failing.pipe(Effect.catchTag("SendTimeout", (error) => Effect.succeed(error.peer)))
        assert.strictEqual(recovered, "client-1")
      }),
    )
  })

  describe("messages", () => {
    it.effect("name the peer and what is wrong", () =>
      Effect.sync(() => {
        const messages = [...retryable, ...final].map((error) => error.message)
        assert.deepStrictEqual(messages, [
          "send to client-1 did not complete within 30000 ms",
          "connection to client-1 closed: closed by peer: bye",
          "peer 10.0.0.7:7070 is unreachable: connection refused",
          "rejected by server: unknown client",
          "undecodable input from client-2 at body: Missing key",
          "frame of 2000000 bytes from client-3 exceeds the maximum of 1048576 bytes",
        ])
      }),
    )

    it.effect("leave out the location of a decode error that has no path", () =>
      Effect.sync(() => {
        const error = new TransportError.DecodeError({ peer: "client-2", reason: "Expected a valid JSON string" })
        assert.strictEqual(error.message, "undecodable input from client-2: Expected a valid JSON string")
        assert.notInclude(error.message, " at ")
      }),
    )
  })
})
