import { assert, describe, it } from "@effect/vitest"
import { Cause, ConfigProvider, Duration, Effect, Option, Schema, SchemaIssue } from "effect"
import * as RetryPolicy from "../src/RetryPolicy.ts"

const millis = (policy: RetryPolicy.RetryPolicy) => ({
  maxRetries: policy.maxRetries,
  baseDelay: Duration.toMillis(policy.baseDelay),
  maxDelay: Duration.toMillis(policy.maxDelay),
  jitter: policy.jitter,
  additiveJitter: Duration.toMillis(policy.additiveJitter),
  budget: policy.budget === undefined ? undefined : Duration.toMillis(policy.budget),
})

const env = (vars: Record<string, string>) => ConfigProvider.fromEnv({ env: vars }).pipe(ConfigProvider.constantCase)

describe("RetryPolicy", () => {
  it("defaults to the seed: 3 retries, 1 s base, 30 s cap, additive jitter of 1 s, no budget", () => {
    assert.deepStrictEqual(millis(RetryPolicy.defaults), {
      maxRetries: 3,
      baseDelay: 1000,
      maxDelay: 30_000,
      jitter: "additive",
      additiveJitter: 1000,
      budget: undefined,
    })
  })

  it("accepts durations as strings, milliseconds (numbers or numeric strings) and Duration values", () => {
    const policy = RetryPolicy.make({
      baseDelay: "200 millis",
      maxDelay: 5000,
      additiveJitter: "50",
      budget: Duration.minutes(1),
    })
    assert.deepStrictEqual(millis(policy), {
      maxRetries: 3,
      baseDelay: 200,
      maxDelay: 5000,
      jitter: "additive",
      additiveJitter: 50,
      budget: 60_000,
    })
  })

  it.effect("rejects bad values with errors that name the key", () =>
    Effect.gen(function* () {
      const messageOf = (input: unknown) => Effect.map(Effect.flip(RetryPolicy.decode(input)), (e) => e.message)
      const unparsable = yield* messageOf({ baseDelay: "soon" })
      assert.include(unparsable, '["baseDelay"]')
      assert.include(unparsable, '"200 millis"')
      assert.include(yield* messageOf({ maxDelay: "-1 second" }), '["maxDelay"]')
      assert.include(yield* messageOf({ baseDelay: 0 }), '["baseDelay"]')
      assert.include(yield* messageOf({ maxRetries: -1 }), '["maxRetries"]')
      assert.include(yield* messageOf({ maxRetries: 2.5 }), '["maxRetries"]')
      assert.include(yield* messageOf({ jitter: "half" }), '["jitter"]')
      const inverted = yield* messageOf({ baseDelay: "10 seconds", maxDelay: "5 seconds" })
      assert.include(inverted, '["maxDelay"]')
      assert.include(inverted, "must not be shorter than baseDelay")
    }),
  )

  it("carries the maxDelay/baseDelay rule as data, for applications that rename the keys", () => {
    const exit = Schema.decodeUnknownExit(RetryPolicy.RetryPolicy)({ baseDelay: 500, maxDelay: 499 })
    if (exit._tag !== "Failure") return assert.fail("expected a decoding failure")
    const issue = Option.getOrThrow(Cause.findErrorOption(exit.cause)).issue
    const relations = SchemaIssue.makeFormatterStandardSchemaV1({
      leafHook: (leaf) => (leaf._tag === "InvalidValue" ? JSON.stringify(leaf.annotations?.relation) : ""),
    })(issue).issues
    assert.deepStrictEqual(relations[0]?.path, ["maxDelay"])
    assert.deepStrictEqual(JSON.parse(relations[0]?.message ?? "null"), {
      other: "baseDelay",
      must: "not be shorter than",
    })
    assert.isTrue(
      Schema.decodeUnknownExit(RetryPolicy.RetryPolicy)({ baseDelay: 500, maxDelay: 500 })._tag === "Success",
    )
  })

  it("accepts a maxDelay equal to baseDelay but not shorter", () => {
    assert.strictEqual(Duration.toMillis(RetryPolicy.make({ baseDelay: 500, maxDelay: 500 }).maxDelay), 500)
    assert.throws(() => RetryPolicy.make({ baseDelay: 500, maxDelay: 499 }))
  })

  it("encodes to milliseconds and decodes back to the same policy", () => {
    const policy = RetryPolicy.make({ jitter: "full", budget: "1 minute" })
    const encoded = Schema.encodeSync(RetryPolicy.RetryPolicy)(policy)
    assert.deepStrictEqual(encoded, {
      maxRetries: 3,
      baseDelay: 1000,
      maxDelay: 30_000,
      jitter: "full",
      additiveJitter: 1000,
      budget: 60_000,
    })
    assert.deepStrictEqual(millis(RetryPolicy.make(encoded)), millis(policy))
  })

  it.effect("loads from environment variables (RETRY_MAX_RETRIES, RETRY_BASE_DELAY, …)", () =>
    Effect.gen(function* () {
      const policy = yield* RetryPolicy.config().parse(
        env({ RETRY_MAX_RETRIES: "5", RETRY_BASE_DELAY: "200 millis", RETRY_JITTER: "full", RETRY_BUDGET: "1 minute" }),
      )
      assert.deepStrictEqual(millis(policy), {
        maxRetries: 5,
        baseDelay: 200,
        maxDelay: 30_000,
        jitter: "full",
        additiveJitter: 1000,
        budget: 60_000,
      })
    }),
  )

  it.effect("falls back to the defaults when nothing is configured, and only then", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(millis(yield* RetryPolicy.config().parse(env({}))), millis(RetryPolicy.defaults))
      const other = yield* RetryPolicy.config().parse(env({ RETRY_MAX_RETRIES: "1" }))
      assert.strictEqual(other.maxRetries, 1)
    }),
  )

  it.effect("loads from a parsed JSON file under a chosen key", () =>
    Effect.gen(function* () {
      const file = ConfigProvider.fromUnknown({ uplink: { retry: { maxDelay: "5 seconds", jitter: "none" } } })
      const policy = yield* RetryPolicy.config("retry").parse(ConfigProvider.nested(file, "uplink"))
      assert.strictEqual(Duration.toMillis(policy.maxDelay), 5000)
      assert.strictEqual(policy.jitter, "none")
    }),
  )

  it.effect("fails on a wrong configured value with a ConfigError naming the full key", () =>
    Effect.gen(function* () {
      const badDelay = yield* Effect.flip(RetryPolicy.config().parse(env({ RETRY_MAX_DELAY: "forever" })))
      assert.include(badDelay.message, '["retry"]["maxDelay"]')
      const badCount = yield* Effect.flip(RetryPolicy.config().parse(env({ RETRY_MAX_RETRIES: "many" })))
      assert.include(badCount.message, '["retry"]["maxRetries"]')
    }),
  )
})
