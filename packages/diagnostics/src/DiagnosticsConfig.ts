/**
 * The diagnostics configuration: one Schema with defaults and descriptions,
 * loadable from a config file section or from environment variables, like
 * `MemoryCleanupConfig`.
 *
 * Durations are strings that `Duration.fromInput` parses (`"10 seconds"`)
 * or numbers of milliseconds. A collector interval of zero turns that
 * collector off. The defaults follow the seed's follow-up list (batching,
 * asynchronous reporting that never blocks training) with bounds chosen so
 * that diagnostics cannot grow without limit: at most `bufferCapacity`
 * reports wait, and each log-tail run reads at most `logTailMaxBytes`.
 *
 * @since 0.1.0
 */
import { RetryPolicy } from "@fedguard/retry"
import { Config, Duration, Effect, Schema } from "effect"

const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis])

const duration = (
  defaultValue: string,
  description: string,
  valid: (d: Duration.Duration) => boolean,
  expected: string,
) =>
  DurationInput.check(Schema.makeFilter((d) => valid(d) || expected))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

const positive = (defaultValue: string, description: string) =>
  duration(defaultValue, description, Duration.isPositive, "must be a positive duration")

const interval = (defaultValue: string, description: string) =>
  duration(
    defaultValue,
    `${description}; 0 turns it off`,
    (d) => !Duration.isNegative(d),
    "must be a duration of 0 (off) or more",
  )

const count = (defaultValue: number, description: string) =>
  Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

/**
 * The diagnostics options and their defaults:
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `batchSize` | `50` | a batch is sent once this many reports wait |
 * | `batchInterval` | `"10 seconds"` | … or once the oldest waiting report is this old, whichever comes first |
 * | `bufferCapacity` | `1000` | most reports waiting; a new one beyond it drops the oldest |
 * | `sendTimeout` | `"30 seconds"` | one send attempt still running after this long fails with `SinkTimeout` |
 * | `retry` | `@fedguard/retry` defaults | retries of a failed send: 3 retries, 1 s base, 30 s cap, jitter |
 * | `logTailPath` | none | the file the log-tail collector follows; no log tail without it |
 * | `logTailInterval` | `"10 seconds"` | cadence of the log tail |
 * | `logTailMaxBytes` | `65536` | most bytes the log tail reads per run |
 * | `logTailMaxLines` | `200` | most lines the log tail reports per run (the newest) |
 * | `metricsInterval` | `"60 seconds"` | cadence of the Effect metrics snapshot |
 * | `processReportInterval` | `"5 minutes"` | cadence of Node's diagnostic report (JS stack, handles) |
 * | `resourceUsageInterval` | `"10 seconds"` | cadence of CPU, memory and event-loop delay readings |
 *
 * @since 0.1.0
 * @category schemas
 */
export const DiagnosticsConfig = Schema.Struct({
  batchSize: count(50, "a batch is sent once this many reports wait"),
  batchInterval: positive("10 seconds", "a batch is sent once its oldest report waited this long"),
  bufferCapacity: count(1000, "most reports waiting to be sent; a new report beyond it drops the oldest"),
  sendTimeout: positive("30 seconds", "one send attempt still running after this long fails"),
  retry: RetryPolicy.RetryPolicy.pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  logTailPath: Schema.optional(
    Schema.String.check(Schema.isMinLength(1)).annotate({ description: "the file the log-tail collector follows" }),
  ),
  logTailInterval: interval("10 seconds", "cadence of the log-tail collector"),
  logTailMaxBytes: count(64 * 1024, "most bytes the log tail reads per run"),
  logTailMaxLines: count(200, "most lines the log tail reports per run"),
  metricsInterval: interval("60 seconds", "cadence of the metrics-snapshot collector"),
  processReportInterval: interval("5 minutes", "cadence of the process-report collector"),
  resourceUsageInterval: interval("10 seconds", "cadence of the resource-usage collector"),
}).annotate({ identifier: "DiagnosticsConfig", description: "diagnostics collectors and reporting" })

/**
 * @since 0.1.0
 * @category models
 */
export type DiagnosticsConfig = typeof DiagnosticsConfig.Type

/**
 * The configuration with every default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: DiagnosticsConfig = Schema.decodeUnknownSync(DiagnosticsConfig)({})

/**
 * Decodes an unknown value (a parsed config file section); fails with a
 * `Schema.SchemaError` whose message names each wrong key and why
 * (`batchSize: Expected a value greater than or equal to 1, got 0` at
 * `["batchSize"]`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<DiagnosticsConfig, Schema.SchemaError> =
  Schema.decodeUnknownEffect(DiagnosticsConfig)

/**
 * Reads the configuration under `path` (default `"diagnostics"`) from the
 * current `ConfigProvider`: `{ diagnostics: { batchSize: 20 } }` from an
 * object, or `DIAGNOSTICS_BATCH_SIZE=20` from the environment (with
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)`). Missing keys
 * take their defaults. A wrong value fails with a `Config.ConfigError` naming
 * the key's path (`["diagnostics"]["batchSize"]`). `retry` is read as a
 * section (`{ diagnostics: { retry: { maxRetries: 5 } } }`).
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "diagnostics"): Config.Config<DiagnosticsConfig> => {
  // Key by key, as in MemoryCleanupConfig: the environment provider finds each leaf
  // (DIAGNOSTICS_BATCH_SIZE) but not a whole multi-word section.
  const fields = DiagnosticsConfig.fields
  const field = <K extends keyof DiagnosticsConfig>(key: K): Config.Config<DiagnosticsConfig[K]> =>
    Config.schema(fields[key] as unknown as Schema.Codec<DiagnosticsConfig[K], unknown>, [path, key]).pipe(
      Config.withDefault(defaults[key]),
    )
  return Config.all({
    batchSize: field("batchSize"),
    batchInterval: field("batchInterval"),
    bufferCapacity: field("bufferCapacity"),
    sendTimeout: field("sendTimeout"),
    retry: field("retry"),
    logTailPath: field("logTailPath"),
    logTailInterval: field("logTailInterval"),
    logTailMaxBytes: field("logTailMaxBytes"),
    logTailMaxLines: field("logTailMaxLines"),
    metricsInterval: field("metricsInterval"),
    processReportInterval: field("processReportInterval"),
    resourceUsageInterval: field("resourceUsageInterval"),
  })
}
