/**
 * The stall-guard configuration: one Schema with defaults and descriptions,
 * loadable from a config file (JSON/YAML decoded to an object) or from
 * environment variables, like `HeartbeatConfig`.
 *
 * Durations are strings that `Duration.fromInput` parses (`"30 seconds"`,
 * `"500 millis"`) or numbers of milliseconds; each must be positive, and
 * `consecutiveChecks` a positive integer. Whether the timeouts make sense
 * together (and with the heartbeat and round timeouts) is `TimeoutBudget`'s
 * job, so that one place states every cross-setting rule.
 *
 * The defaults are those of NVIDIA FLARE's 2.7 stream guardrails (PR #4206:
 * a 30 s bounded send, fix A; a 60 s ACK-progress timeout, fix B; a 45 s
 * stall timeout on 3 consecutive checks with closing off by default, fix C)
 * and of FlareAgent's progress-aware wait for result uploads (idle timeout,
 * completion grace).
 *
 * @since 0.1.0
 */
import { Config, Duration, Effect, Schema } from "effect"

// A string `Duration.fromInput` parses, or a number of milliseconds.
const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis])

// A zero timeout would declare every stream stalled at its first check.
const positiveDuration = (defaultValue: string, description: string) =>
  DurationInput.check(Schema.makeFilter((d) => Duration.isPositive(d) || "must be a positive duration"))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

/**
 * The stall-guard options and their defaults:
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `sendTimeout` | `"30 seconds"` | bounded send (fix A): one frame the socket does not accept within it fails with `SendTimeout` and closes the connection (pass it to `NodeTransport.layer({ writeTimeout })`) |
 * | `ackProgressTimeout` | `"60 seconds"` | `AckProgressWatchdog` (fix B): a byte stream whose acknowledged offset does not advance for this long fails with `AckStalled` |
 * | `checkInterval` | `"5 seconds"` | how often the watchdog and the stall monitor look (clamped to [10 ms, the timeout it checks]) |
 * | `stallTimeout` | `"45 seconds"` | `StallMonitor` (fix C): a guarded send pending this long counts as a stalled check |
 * | `consecutiveChecks` | `3` | stalled checks in a row before `StallDetected` |
 * | `closeStalled` | `false` | close the connection on `StallDetected` (otherwise only warn) |
 * | `transferIdleTimeout` | `"60 seconds"` | `TransferTracker`: a receiver gives up on an upload without a new byte for this long (or without a first byte: did-not-start) |
 * | `completionGrace` | `"5 seconds"` | `TransferTracker`: with every expected byte in, how long to wait for the stream's end before calling it complete |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { StallGuardConfig } from "@fedguard/stall-guard"
 * const config = Schema.decodeUnknownSync(StallGuardConfig.StallGuardConfig)({ ackProgressTimeout: "20 seconds" })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const StallGuardConfig = Schema.Struct({
  sendTimeout: positiveDuration(
    "30 seconds",
    "bounded send: a frame the socket does not accept within it fails with SendTimeout and closes the connection",
  ),
  ackProgressTimeout: positiveDuration(
    "60 seconds",
    "a byte stream whose acknowledged offset does not advance for this long fails with AckStalled",
  ),
  checkInterval: positiveDuration("5 seconds", "how often the ack-progress watchdog and the stall monitor check"),
  stallTimeout: positiveDuration("45 seconds", "a guarded send pending this long makes a stalled check"),
  consecutiveChecks: Schema.Int.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(1)))
    .annotate({ description: "stalled checks in a row before StallDetected" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(3))),
  closeStalled: Schema.Boolean.annotate({
    description: "close the connection on StallDetected (false: only warn)",
  }).pipe(Schema.withDecodingDefaultKey(Effect.succeed(false))),
  transferIdleTimeout: positiveDuration(
    "60 seconds",
    "a receiver gives up on a transfer without a new byte (or without a first byte) for this long",
  ),
  completionGrace: positiveDuration(
    "5 seconds",
    "with every expected byte received, how long to wait for the end of the stream before completing it",
  ),
}).annotate({ identifier: "StallGuardConfig", description: "stall-guard options" })

/**
 * @since 0.1.0
 * @category models
 */
export type StallGuardConfig = typeof StallGuardConfig.Type

/**
 * The configuration with every default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: StallGuardConfig = Schema.decodeUnknownSync(StallGuardConfig)({})

/**
 * Reads the configuration under `path` (default `"stallGuard"`) from the
 * current `ConfigProvider`: `{ stallGuard: { ackProgressTimeout: "20 seconds" } }`
 * from an object, or `STALL_GUARD_ACK_PROGRESS_TIMEOUT="20 seconds"` from the
 * environment (with `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)`
 * or equivalent). Missing keys take their defaults; a missing section is all
 * defaults. A wrong value fails with the key's path and the reason.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "stallGuard"): Config.Config<StallGuardConfig> => {
  // Key by key rather than `Config.schema(StallGuardConfig, path)`: the environment provider
  // splits variable names at every underscore, so it never finds a multi-word section such as
  // STALL_GUARD as a whole; each leaf (STALL_GUARD_SEND_TIMEOUT) it does find.
  const field = <K extends keyof StallGuardConfig>(key: K): Config.Config<StallGuardConfig[K]> =>
    Config.schema(StallGuardConfig.fields[key] as unknown as Schema.Codec<StallGuardConfig[K], unknown>, [
      path,
      key,
    ]).pipe(Config.withDefault(defaults[key]))
  return Config.all({
    sendTimeout: field("sendTimeout"),
    ackProgressTimeout: field("ackProgressTimeout"),
    checkInterval: field("checkInterval"),
    stallTimeout: field("stallTimeout"),
    consecutiveChecks: field("consecutiveChecks"),
    closeStalled: field("closeStalled"),
    transferIdleTimeout: field("transferIdleTimeout"),
    completionGrace: field("completionGrace"),
  })
}
