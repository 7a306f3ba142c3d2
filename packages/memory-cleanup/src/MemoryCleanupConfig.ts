/**
 * The memory-cleanup configuration: one Schema with defaults and
 * descriptions, loadable from a config file (JSON/YAML decoded to an object)
 * or from environment variables, like `StallGuardConfig`.
 *
 * Durations are strings that `Duration.fromInput` parses (`"10 seconds"`,
 * `"500 millis"`) or numbers of milliseconds. Byte sizes are integers of
 * bytes or strings with a unit (`"512 MiB"`, `"2 GB"`: `kB`/`MB`/`GB` are
 * powers of 1000, `KiB`/`MiB`/`GiB` powers of 1024).
 *
 * The defaults follow NVIDIA FLARE's memory management (PR #4036 on the
 * server, PR #4211 on the client): cleanup every N rounds is off (`0`) unless
 * a job turns it on, and a run is gc plus the release steps. The threshold
 * trigger is this package's own: off unless a threshold is given.
 *
 * @since 0.1.0
 */
import { ByteSize, Config, Duration, Effect, Schema, SchemaGetter } from "effect"

// A string `Duration.fromInput` parses, or a number of milliseconds.
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

// "512 MiB" → 536870912. Effect's byte-size syntax: a unit is required, `KB` and `mb` are
// rejected as ambiguous, and the result must be a whole number of bytes.
const ByteSizeString = Schema.ByteSizeFromString.pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transform((size: ByteSize.ByteSize) => ByteSize.toNumberUnsafe(size)),
    encode: SchemaGetter.transform((bytes: number) => ByteSize.bytes(bytes)),
  }),
)

// A zero threshold would be crossed on every check: each run would be one `minInterval` apart.
const bytes = (description: string) =>
  Schema.optional(
    Schema.Union([Schema.Int, ByteSizeString])
      .check(Schema.makeFilter((n) => (Number.isSafeInteger(n) && n > 0) || "must be a positive number of bytes"))
      .annotate({ description }),
  )

/**
 * The memory-cleanup options and their defaults:
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `everyRounds` | `0` (off) | run after every N-th completed round (`roundCompleted(N)`, `2N`, …); an integer ≥ 0 |
 * | `thresholdBytes` | none | run when V8's heap used exceeds this many bytes |
 * | `thresholdRss` | none | run when the resident set size exceeds this many bytes |
 * | `heapFraction` | none | run when heap used exceeds this fraction (0 < f ≤ 1) of V8's heap size limit |
 * | `checkInterval` | `"10 seconds"` | how often the thresholds are checked (only when one is set) |
 * | `minInterval` | `"60 seconds"` | a threshold crossing less than this after the last run does not run again |
 * | `gc` | `true` | end each run with a full GC (when the runtime has one) |
 * | `stepTimeout` | `"30 seconds"` | a release hook still running after this long is interrupted and reported failed |
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { MemoryCleanupConfig } from "@fedguard/memory-cleanup"
 * const config = Schema.decodeUnknownSync(MemoryCleanupConfig.MemoryCleanupConfig)({
 *   everyRounds: 5,
 *   thresholdRss: "6 GiB",
 * })
 * ```
 *
 * @since 0.1.0
 * @category schemas
 */
export const MemoryCleanupConfig = Schema.Struct({
  everyRounds: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
    .annotate({ description: "run after every N-th completed round; 0 turns the round cadence off" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(0))),
  thresholdBytes: bytes("run when V8's heap used exceeds this many bytes"),
  thresholdRss: bytes("run when the resident set size exceeds this many bytes"),
  heapFraction: Schema.optional(
    Schema.Number.check(
      Schema.makeFilter((f) => (f > 0 && f <= 1) || "must be a fraction greater than 0 and at most 1"),
    ).annotate({ description: "run when heap used exceeds this fraction of V8's heap size limit" }),
  ),
  checkInterval: duration(
    "10 seconds",
    "how often the thresholds are checked",
    Duration.isPositive,
    "must be a positive duration",
  ),
  minInterval: duration(
    "60 seconds",
    "a threshold crossing less than this after the last run does not run again",
    (d) => !Duration.isNegative(d),
    "must not be negative",
  ),
  gc: Schema.Boolean.annotate({ description: "end each run with a full GC when the runtime has one" }).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(true)),
  ),
  stepTimeout: duration(
    "30 seconds",
    "a release hook still running after this long is interrupted and reported failed",
    Duration.isPositive,
    "must be a positive duration",
  ),
}).annotate({ identifier: "MemoryCleanupConfig", description: "memory cleanup options" })

/**
 * @since 0.1.0
 * @category models
 */
export type MemoryCleanupConfig = typeof MemoryCleanupConfig.Type

/**
 * The configuration with every default: no round cadence, no threshold,
 * 10 s checks, 60 s minimum interval, GC on, 30 s step timeout.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: MemoryCleanupConfig = Schema.decodeUnknownSync(MemoryCleanupConfig)({})

/**
 * Decodes an unknown value (a parsed config file section) into the
 * configuration; fails with a `Schema.SchemaError` whose message names each
 * wrong key and why (`everyRounds: Expected a value greater than or equal to
 * 0, got -1`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<MemoryCleanupConfig, Schema.SchemaError> =
  Schema.decodeUnknownEffect(MemoryCleanupConfig)

/**
 * Reads the configuration under `path` (default `"memoryCleanup"`) from the
 * current `ConfigProvider`: `{ memoryCleanup: { everyRounds: 5 } }` from an
 * object, or `MEMORY_CLEANUP_EVERY_ROUNDS=5` from the environment (with
 * `ConfigProvider.fromEnv().pipe(ConfigProvider.constantCase)` or
 * equivalent). Missing keys take their defaults; a missing section is all
 * defaults. A wrong value fails with a `Config.ConfigError` naming the key's
 * path and the reason.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "memoryCleanup"): Config.Config<MemoryCleanupConfig> => {
  // Key by key rather than `Config.schema(MemoryCleanupConfig, path)`: the environment provider
  // splits variable names at every underscore, so it never finds a multi-word section such as
  // MEMORY_CLEANUP as a whole; each leaf (MEMORY_CLEANUP_EVERY_ROUNDS) it does find.
  const fields = MemoryCleanupConfig.fields
  const field = <K extends keyof MemoryCleanupConfig>(key: K): Config.Config<MemoryCleanupConfig[K]> =>
    Config.schema(fields[key] as unknown as Schema.Codec<MemoryCleanupConfig[K], unknown>, [path, key]).pipe(
      Config.withDefault(defaults[key]),
    )
  return Config.all({
    everyRounds: field("everyRounds"),
    thresholdBytes: field("thresholdBytes"),
    thresholdRss: field("thresholdRss"),
    heapFraction: field("heapFraction"),
    checkInterval: field("checkInterval"),
    minInterval: field("minInterval"),
    gc: field("gc"),
    stepTimeout: field("stepTimeout"),
  })
}
