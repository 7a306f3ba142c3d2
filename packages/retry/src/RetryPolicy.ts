/**
 * How often and how patiently to retry: the configuration of a backoff policy,
 * as a Schema with the seed's defaults (FederatedScope's gRPC retry: 3
 * retries, 1 s base, 30 s cap, jitter).
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Schema, SchemaIssue } from "effect"
import { DurationInput } from "./internal/durationInput.ts"

/**
 * How randomness spreads the exponential delays `base * 2^(n-1)` (n = the
 * number of the attempt that just failed):
 *
 * - `"additive"` (default, as in the seed): adds a uniform `0..additiveJitter`
 *   (1 s by default) to the delay.
 * - `"full"`: AWS "full jitter", a uniform `0..delay`.
 * - `"decorrelated"`: AWS "decorrelated jitter", `min(maxDelay,
 *   uniform(baseDelay, previous * 3))`; it ignores the exponential sequence.
 * - `"none"`: exactly `base * 2^(n-1)`.
 *
 * Whatever the mode, `maxDelay` is applied after the jitter: no delay ever
 * exceeds it.
 *
 * @since 0.1.0
 * @category models
 */
export const JitterMode = Schema.Literals(["additive", "full", "decorrelated", "none"]).annotate({
  description: "How randomness spreads the delays: additive (seed default), full, decorrelated or none",
})

/**
 * @since 0.1.0
 * @category models
 */
export type JitterMode = typeof JitterMode.Type

const withDefault = <S extends Schema.Top>(schema: S, value: S["Encoded"]) =>
  schema.pipe(Schema.withDecodingDefaultKey(Effect.succeed(value)))

/**
 * A retry policy: at most `maxRetries` retries after the first attempt
 * (**3 retries = 4 attempts**), waiting `baseDelay * 2^(n-1)` before retry n
 * (1 s, 2 s, 4 s, 8 s…), spread by `jitter`, never more than `maxDelay`, and
 * giving up early when the next delay would overrun the optional total
 * `budget`.
 *
 * Every field is optional on input and defaults to the seed's value; durations
 * are accepted as strings (`"1 second"`, `"200 millis"`), numbers of
 * milliseconds, or `Duration` values. Decoding errors name the offending key
 * (`maxDelay must not be shorter than baseDelay … at ["maxDelay"]`); the
 * issue of that cross-field rule also carries a `relation` annotation
 * (`{ other: "baseDelay", must: "not be shorter than" }`) so that an
 * application that exposes these keys under other names (`--retry-max-delay`)
 * can name both of its settings without parsing the message.
 *
 * | key              | default      |
 * | ---------------- | ------------ |
 * | `maxRetries`     | `3`          |
 * | `baseDelay`      | `"1 second"` |
 * | `maxDelay`       | `"30 seconds"` |
 * | `jitter`         | `"additive"` |
 * | `additiveJitter` | `"1 second"` |
 * | `budget`         | none         |
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@fedguard/retry"
 *
 * const policy = RetryPolicy.make({ maxRetries: 5, baseDelay: "200 millis", jitter: "full" })
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const RetryPolicy = Schema.Struct({
  maxRetries: withDefault(
    Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)).annotate({
      description: "Retries after the first attempt (3 retries = 4 attempts in all); 0 disables retrying",
    }),
    3,
  ),
  baseDelay: withDefault(
    DurationInput.check(Schema.makeFilter((d) => Duration.isPositive(d) || "must be a positive duration")).annotate({
      description: "Delay before the first retry; retry n waits baseDelay * 2^(n-1) before jitter",
    }),
    "1 second",
  ),
  maxDelay: withDefault(
    DurationInput.annotate({ description: "Upper bound of every delay, applied after jitter and retryAfter hints" }),
    "30 seconds",
  ),
  jitter: withDefault(JitterMode, "additive"),
  additiveJitter: withDefault(
    DurationInput.annotate({ description: 'Largest amount the "additive" jitter mode adds to a delay' }),
    "1 second",
  ),
  budget: Schema.optionalKey(
    DurationInput.annotate({
      description:
        "Total time allowed from the first attempt; retrying stops when the next delay would exceed what remains",
    }),
  ),
})
  .check(
    Schema.makeFilter((policy) =>
      Duration.isGreaterThanOrEqualTo(policy.maxDelay, policy.baseDelay)
        ? undefined
        : {
            path: ["maxDelay"],
            // `relation` names the other key and the rule as data, so that an
            // application embedding this schema under its own setting names can
            // say which two settings disagree without parsing the message.
            issue: new SchemaIssue.InvalidValue(
              {
                message: `maxDelay (${Duration.format(policy.maxDelay)}) must not be shorter than baseDelay (${Duration.format(policy.baseDelay)})`,
                relation: { other: "baseDelay", must: "not be shorter than" },
              },
              policy.maxDelay,
            ),
          },
    ),
  )
  .annotate({ identifier: "RetryPolicy", description: "Backoff policy for retrying transient transport failures" })

/**
 * A decoded retry policy: every field present, durations as `Duration`.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryPolicy = typeof RetryPolicy.Type

/**
 * What a configuration source may hold for a policy: every key optional,
 * durations as strings, milliseconds or `Duration` values.
 *
 * @since 0.1.0
 * @category models
 */
export type RetryPolicyInput = typeof RetryPolicy.Encoded

/**
 * Decodes untrusted input (a parsed JSON file, a plain object) into a policy,
 * failing with a `SchemaError` whose message names the wrong key.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<RetryPolicy, Schema.SchemaError> =
  Schema.decodeUnknownEffect(RetryPolicy)

/**
 * Builds a policy from trusted literals, filling in the defaults and throwing
 * on invalid values. Use {@link decode} or {@link config} for external input.
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@fedguard/retry"
 *
 * RetryPolicy.make({}) // 3 retries, 1 s base, 30 s cap, additive jitter
 * RetryPolicy.make({ jitter: "none", maxDelay: "5 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (input: RetryPolicyInput = {}): RetryPolicy => Schema.decodeUnknownSync(RetryPolicy)(input)

/**
 * The seed's policy: 3 retries (4 attempts), 1 s base delay, 30 s cap,
 * additive jitter of up to 1 s, no total budget.
 *
 * @since 0.1.0
 * @category constructors
 */
export const defaults: RetryPolicy = make()

/**
 * Reads a policy from the current `ConfigProvider` under `path` (default
 * `"retry"`), falling back to {@link defaults} when nothing is configured
 * there. Invalid values fail with a `ConfigError` naming the key, e.g.
 * `Expected a non-negative duration … at ["retry"]["maxDelay"]`.
 *
 * With `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)` the keys
 * are `RETRY_MAX_RETRIES`, `RETRY_BASE_DELAY`, `RETRY_MAX_DELAY`,
 * `RETRY_JITTER`, `RETRY_ADDITIVE_JITTER` and `RETRY_BUDGET`; with
 * `ConfigProvider.fromUnknown(json)` they are the field names nested under
 * `retry`.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "retry"): Config.Config<RetryPolicy> =>
  Config.schema(RetryPolicy, path).pipe(Config.withDefault(defaults))
