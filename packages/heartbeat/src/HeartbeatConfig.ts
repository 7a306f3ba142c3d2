/**
 * The heartbeat configuration, shared by the client's sender and the server's
 * tracker: one Schema with defaults and descriptions, loadable from a config
 * file (JSON/YAML decoded to an object) or from environment variables.
 *
 * Durations are strings that `Duration.fromInput` parses (`"30 seconds"`,
 * `"500 millis"`, `"2 minutes"`) or numbers of milliseconds; a wrong value
 * fails with the key's path and the reason. Settings that cannot work are
 * rejected: `interval`, `timeout`, `peerTimeout` and `joinTimeout` must be
 * positive, and `peerTimeout` (and `timeout`, with the fixed-timeout
 * detector) must be longer than `interval`, or a live peer would be declared
 * lost between two beats. Those cross-field issues sit at the longer key's
 * path and carry a `relation` annotation (`{ other: "interval", must: "be
 * longer than", because }`) for applications that rename the keys.
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Schema, SchemaIssue } from "effect"

// A string `Duration.fromInput` parses, or a number of milliseconds (what an
// application that already decoded its own duration syntax passes on).
const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis])

const duration = (defaultValue: string, description: string) =>
  DurationInput.annotate({ description }).pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

// Zero beats in a busy loop and a zero timeout declares everyone dead at once.
const positiveDuration = (defaultValue: string, description: string) =>
  DurationInput.check(Schema.makeFilter((d) => Duration.isPositive(d) || "must be a positive duration"))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

// `relation` names the other key and the rule as data, so that an application
// embedding this schema under its own setting names (`--heartbeat-timeout`)
// can say which two settings disagree without parsing the message.
const longerThanInterval = (key: "timeout" | "peerTimeout", value: Duration.Duration, interval: Duration.Duration) => ({
  path: [key],
  issue: new SchemaIssue.InvalidValue(
    {
      message: `${key} (${Duration.format(value)}) must be longer than interval (${Duration.format(interval)})`,
      relation: {
        other: "interval",
        must: "be longer than",
        because: "a peer would be declared lost between two beats",
      },
    },
    value,
  ),
})

const count = (defaultValue: number, description: string) =>
  Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0)))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

/**
 * The heartbeat options and their defaults:
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `interval` | `"30 seconds"` | time between a client's beats |
 * | `peerTimeout` | `"90 seconds"` | client side: no ack for this long means the server is lost |
 * | `timeout` | `"90 seconds"` | server side: a client is offline this long after its last sign of life (fixed-timeout detector) |
 * | `joinTimeout` | `"120 seconds"` | a registered client not seen within this time is reported never-joined |
 * | `minClients` | `1` | quorum: `QuorumLost` when fewer are alive (0 disables) |
 * | `detector` | `"fixed-timeout"` | or `"phi-accrual"` |
 * | `phiThreshold` | `8` | phi-accrual threshold (`-log10` of the false-positive rate) |
 * | `phiMaxSampleSize` | `1000` | phi-accrual window per client |
 * | `phiMinStdDeviation` | `"100 millis"` | floor of the inter-arrival standard deviation |
 * | `phiAcceptableHeartbeatPause` | `"0 millis"` | pause added to the mean |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { HeartbeatConfig } from "@fedguard/heartbeat"
 * const config = Schema.decodeUnknownSync(HeartbeatConfig.HeartbeatConfig)({ timeout: "60 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const HeartbeatConfig = Schema.Struct({
  interval: positiveDuration("30 seconds", "time between a client's heartbeats"),
  peerTimeout: positiveDuration(
    "90 seconds",
    "client side: without an ack for this long the server is considered lost",
  ),
  timeout: positiveDuration("90 seconds", "server side: a client is offline this long after its last sign of life"),
  joinTimeout: positiveDuration(
    "120 seconds",
    "a registered client not seen within this time is reported never-joined",
  ),
  minClients: count(1, "quorum: QuorumLost when fewer clients are alive (0 disables the quorum signal)"),
  detector: Schema.Literals(["fixed-timeout", "phi-accrual"])
    .annotate({ description: "failure detector of the liveness tracker" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed("fixed-timeout" as const))),
  phiThreshold: Schema.Finite.pipe(Schema.check(Schema.isGreaterThan(0)))
    .annotate({ description: "phi-accrual threshold: -log10 of the accepted false-positive rate per beat" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(8))),
  phiMaxSampleSize: count(1000, "phi-accrual: inter-arrival samples kept per client"),
  phiMinStdDeviation: duration("100 millis", "phi-accrual: floor of the inter-arrival standard deviation"),
  phiAcceptableHeartbeatPause: duration("0 millis", "phi-accrual: pause added to the mean inter-arrival time"),
})
  .check(
    Schema.makeFilter((config) =>
      Duration.isGreaterThan(config.peerTimeout, config.interval)
        ? undefined
        : longerThanInterval("peerTimeout", config.peerTimeout, config.interval),
    ),
    // The phi-accrual detector ignores `timeout`, so only the fixed timeout must outlast a beat.
    Schema.makeFilter((config) =>
      config.detector !== "fixed-timeout" || Duration.isGreaterThan(config.timeout, config.interval)
        ? undefined
        : longerThanInterval("timeout", config.timeout, config.interval),
    ),
  )
  .annotate({ identifier: "HeartbeatConfig", description: "heartbeat and liveness options" })

/**
 * @since 0.1.0
 * @category models
 */
export type HeartbeatConfig = typeof HeartbeatConfig.Type

/**
 * The configuration with every default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: HeartbeatConfig = Schema.decodeUnknownSync(HeartbeatConfig)({})

/**
 * Reads the configuration under `path` (default `"heartbeat"`) from the
 * current `ConfigProvider`: `{ heartbeat: { timeout: "60 seconds" } }` from an
 * object, or `HEARTBEAT_TIMEOUT="60 seconds"` from the environment (with
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)` or equivalent).
 * Missing keys take their defaults; a missing section is all defaults.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "heartbeat"): Config.Config<HeartbeatConfig> =>
  Config.schema(HeartbeatConfig, path).pipe(Config.withDefault(defaults))
