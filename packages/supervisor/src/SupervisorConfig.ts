/**
 * The supervisor's configuration: one Schema with defaults and descriptions,
 * decodable from a config file's object (see `SupervisorFile` for the
 * `workers` / `monitoring` / `recovery` file shape) or from environment
 * variables, with errors that name the wrong key.
 *
 * The defaults and their seeds:
 *
 * - `checkInterval` 1 s, `zombie` on, `probeTimeout` 10 s: the torchft-derived
 *   process guard's `monitoring` block (interval 1.0, zombie_detection true,
 *   heartbeat_timeout 10.0).
 * - `unhealthyChecks` 3: a breach must hold for three checks in a row, the
 *   consecutive-check guard of our stall guard; one slow sample (a GC pause,
 *   a zombie its parent reaps a moment later) does not restart a worker.
 * - `strategy` `"restart-one"`: OTP's `one_for_one`, the default there.
 * - `maxRestarts` 5 in `restartPeriod` 60 s: OTP's default intensity is 1 in
 *   5 s, made for processes that start in microseconds. A training worker
 *   takes seconds to start (imports, data loaders, device init), and one node
 *   fault may fail several workers at once, so the window is longer and the
 *   count higher; with the backoff below a worker that dies on start is
 *   restarted 5 times (1 + 2 + 4 + 8 + 16 s) before the supervisor escalates,
 *   and sporadic failures (fewer than one every 12 s on average) never do.
 * - `backoffBase` 1 s, `backoffFactor` 2, `backoffCap` 30 s, `jitter` on: the
 *   retry policy of the whole project (3 retries, 1 s base, 30 s cap,
 *   jitter). A worker that stayed up for `restartPeriod` starts again at the
 *   base.
 * - `stopGrace` 30 s: Kubernetes' termination grace period; enough for a
 *   trainer to write a checkpoint on SIGTERM before SIGKILL.
 * - `maxCpuPercent` and `maxRssBytes` off: a trainer legitimately saturates
 *   its cores and its memory budget is the operator's to set.
 *
 * @since 0.1.0
 */
import { ByteSize, Config, Duration, Effect, Schema, SchemaGetter } from "effect"

// A string `Duration.fromInput` parses, or a number of milliseconds.
const DurationInput = Schema.Union([Schema.DurationFromString, Schema.DurationFromMillis])

const duration = (defaultValue: string, description: string, nonNegativeOnly = false) =>
  DurationInput.check(
    Schema.makeFilter((d) =>
      nonNegativeOnly
        ? !Duration.isNegative(d) || "must not be negative"
        : Duration.isPositive(d) || "must be a positive duration",
    ),
  )
    .annotate({ description })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(defaultValue)))

// "2 GiB" → 2147483648: Effect's byte-size syntax (a unit is required; `KB` is ambiguous and rejected).
const ByteSizeString = Schema.ByteSizeFromString.pipe(
  Schema.decodeTo(Schema.Number, {
    decode: SchemaGetter.transform((size: ByteSize.ByteSize) => ByteSize.toNumberUnsafe(size)),
    encode: SchemaGetter.transform((bytes: number) => ByteSize.bytes(bytes)),
  }),
)

const Bytes = Schema.Union([Schema.Int, ByteSizeString]).check(
  Schema.makeFilter((n) => (Number.isSafeInteger(n) && n > 0) || "must be a positive number of bytes"),
)

const Percent = Schema.Finite.check(Schema.makeFilter((p) => p > 0 || "must be a positive percentage"))

/**
 * Health thresholds, supervisor-wide in `SupervisorConfig` and per worker in
 * `WorkerSpec.health` (a worker's own value wins):
 *
 * - `maxCpuPercent`: CPU use above this between two checks is a breach; 100 is
 *   one core fully busy, so 400 allows four cores. Off by default.
 * - `maxRssBytes`: resident set size (VmRSS) above this is a breach; an
 *   integer or a size such as `"2 GiB"`. Off by default.
 * - `zombie`: a worker (or its `pidFile` target) in state Z is a breach.
 *
 * @since 0.1.0
 * @category schemas
 */
export const HealthThresholds = Schema.Struct({
  maxCpuPercent: Schema.optional(Percent.annotate({ description: "CPU % above which a worker is unhealthy" })),
  maxRssBytes: Schema.optional(Bytes.annotate({ description: "resident set size above which a worker is unhealthy" })),
  zombie: Schema.optional(Schema.Boolean.annotate({ description: "a zombie worker is unhealthy" })),
}).annotate({ identifier: "HealthThresholds" })

/**
 * @since 0.1.0
 * @category models
 */
export type HealthThresholds = typeof HealthThresholds.Type

/**
 * What the supervisor does when a worker fails:
 *
 * - `"restart-one"`: restart that worker (OTP `one_for_one`).
 * - `"restart-all"`: stop every other worker, then restart them all (OTP
 *   `one_for_all`); for jobs whose workers must start together.
 * - `"reassign"`: move the failed worker's open tasks to the healthy worker
 *   with the fewest, then restart it (the process guard's task reassignment).
 * - `"stop-all"`: stop every worker and end the supervisor with
 *   `StoppedOnFailure` (the process guard's `stop_all_on_failure` without
 *   recovery); for jobs a lost worker invalidates.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Strategy = Schema.Literals(["restart-one", "restart-all", "reassign", "stop-all"]).annotate({
  identifier: "Strategy",
})

/**
 * @since 0.1.0
 * @category models
 */
export type Strategy = typeof Strategy.Type

/**
 * The cross-key rule of the restart backoff: `backoffCap` is not shorter than
 * `backoffBase` (reported at `backoffCap`). Shared by `SupervisorConfig` and
 * the `recovery` block of `SupervisorFile`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const backoffCapAtLeastBase = () =>
  Schema.makeFilter((config: { readonly backoffBase: Duration.Duration; readonly backoffCap: Duration.Duration }) =>
    Duration.isGreaterThanOrEqualTo(config.backoffCap, config.backoffBase)
      ? undefined
      : { path: ["backoffCap"], issue: "must not be shorter than backoffBase" },
  )

/**
 * The supervisor options and their defaults (seeds in the module docs):
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `strategy` | `"restart-one"` | what a failure does (`Strategy`) |
 * | `checkInterval` | `"1 second"` | time between two health checks of a worker |
 * | `unhealthyChecks` | `3` | consecutive breaching checks that make a worker unhealthy |
 * | `zombie` | `true` | a zombie worker is unhealthy |
 * | `maxCpuPercent` | off | CPU % (100 = one core) above which a check breaches |
 * | `maxRssBytes` | off | resident set size above which a check breaches |
 * | `probeTimeout` | `"10 seconds"` | a liveness probe not done in this time breaches |
 * | `backoffBase` | `"1 second"` | delay before the first restart of a worker |
 * | `backoffFactor` | `2` | each consecutive restart of a worker waits this much longer |
 * | `backoffCap` | `"30 seconds"` | longest restart delay |
 * | `jitter` | `true` | each delay scaled by a random factor in [0.8, 1.2] (before the cap) |
 * | `maxRestarts` | `5` | restarts allowed within `restartPeriod`; one more escalates |
 * | `restartPeriod` | `"60 seconds"` | the intensity window; also the uptime that resets a worker's backoff |
 * | `stopGrace` | `"30 seconds"` | time between SIGTERM and SIGKILL when stopping a worker |
 *
 * @since 0.1.0
 * @category schemas
 */
export const SupervisorConfig = Schema.Struct({
  strategy: Strategy.annotate({ description: "what the supervisor does when a worker fails" }).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("restart-one" as const)),
  ),
  checkInterval: duration("1 second", "time between two health checks of a worker"),
  unhealthyChecks: Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))
    .annotate({ description: "consecutive breaching checks that make a worker unhealthy" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(3))),
  zombie: Schema.Boolean.annotate({ description: "a zombie worker is unhealthy" }).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(true)),
  ),
  maxCpuPercent: HealthThresholds.fields.maxCpuPercent,
  maxRssBytes: HealthThresholds.fields.maxRssBytes,
  probeTimeout: duration("10 seconds", "a liveness probe not done in this time is a breach"),
  backoffBase: duration("1 second", "delay before the first restart of a worker"),
  backoffFactor: Schema.Finite.check(Schema.makeFilter((f) => f >= 1 || "must be at least 1"))
    .annotate({ description: "each consecutive restart of a worker waits this much longer" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(2))),
  backoffCap: duration("30 seconds", "longest restart delay"),
  jitter: Schema.Boolean.annotate({ description: "scale each restart delay by a random factor in [0.8, 1.2]" }).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed(true)),
  ),
  maxRestarts: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0))
    .annotate({ description: "restarts allowed within restartPeriod before the supervisor escalates" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed(5))),
  restartPeriod: duration("60 seconds", "the restart intensity window"),
  stopGrace: duration("30 seconds", "time between SIGTERM and SIGKILL when stopping a worker", true),
})
  .check(backoffCapAtLeastBase())
  .annotate({ identifier: "SupervisorConfig", description: "worker supervisor options" })

/**
 * @since 0.1.0
 * @category models
 */
export type SupervisorConfig = typeof SupervisorConfig.Type

/**
 * The configuration with every default.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaults: SupervisorConfig = Schema.decodeUnknownSync(SupervisorConfig)({})

/**
 * Decodes the configuration from untrusted input; the `SchemaError` names the
 * wrong key and why.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<SupervisorConfig, Schema.SchemaError> =
  Schema.decodeUnknownEffect(SupervisorConfig)

/**
 * Reads the configuration under `path` (default `"supervisor"`) from the
 * current `ConfigProvider`: an object section, or variables such as
 * `SUPERVISOR_MAX_RESTARTS` with `ConfigProvider.constantCase`. Missing keys
 * take their defaults.
 *
 * @since 0.1.0
 * @category config
 */
export const config = (path: string = "supervisor"): Config.Config<SupervisorConfig> =>
  Config.schema(SupervisorConfig, path).pipe(Config.withDefault(defaults))

/**
 * The thresholds that apply to a worker: its own, else the supervisor's.
 *
 * @since 0.1.0
 * @category combinators
 */
export const thresholdsFor = (
  config: SupervisorConfig,
  own: HealthThresholds | undefined,
): {
  readonly maxCpuPercent: number | undefined
  readonly maxRssBytes: number | undefined
  readonly zombie: boolean
} => ({
  maxCpuPercent: own?.maxCpuPercent ?? config.maxCpuPercent,
  maxRssBytes: own?.maxRssBytes ?? config.maxRssBytes,
  zombie: own?.zombie ?? config.zombie,
})
