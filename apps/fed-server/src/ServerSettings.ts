/**
 * fed-server's settings: one Schema with the defaults, decoded from flags,
 * `FED_SERVER_*` environment variables and an optional JSON config file, and
 * validated as a whole before the server listens.
 *
 * Design: the settings stay flat (one key per flag, `--retry-base-delay 200ms`,
 * durations as numbers of milliseconds), and the struct's checks validate
 * them as a whole:
 *
 * - every timeout of the deployment (round, heartbeat interval and timeout,
 *   join, and the stall guard's send, ack-progress, check and stall timeouts)
 *   is resolved by `@fedguard/stall-guard`'s `TimeoutBudget`: the ones given
 *   are kept, the others derived from them and from the round timeout
 *   (default 120 s), and the whole set is checked against the budget's rules
 *   (which include `@fedguard/heartbeat`'s: positive, timeout longer than the
 *   interval, and more: longer than two intervals); a broken rule names the
 *   flags that were given; {@link livenessOptions} decodes the resolved
 *   liveness values with `HeartbeatConfig`;
 * - the retry group (`maxRetries`, `retryBaseDelay`, `retryMaxDelay`) is
 *   decoded by `@fedguard/retry`'s `RetryPolicy` (positive base delay, max
 *   delay not shorter than the base delay) through `Settings.embed` and
 *   {@link retryKeys}: its rules are stated once, in the package;
 * - the server's own rules are stated here with `Settings.compare` and
 *   `Settings.rule`: `--min-clients` not above `--expected-clients`, and
 *   `--expected-clients` not above the number of `--client-ids`.
 *
 * @since 0.1.0
 */

import { Memory, Settings } from "@fedguard/app-kit"
import { Model, Partition } from "@fedguard/federation"
import { HeartbeatConfig, LivenessTracker } from "@fedguard/heartbeat"
import { RetryPolicy } from "@fedguard/retry"
import { TimeoutBudget } from "@fedguard/stall-guard"
import { Effect, Result, Schema } from "effect"
import * as Observability from "./Observability.ts"
import * as StatusPage from "./StatusPage.ts"

const { int, millis } = Settings

/**
 * Which setting holds each `RetryPolicy` key.
 *
 * @since 0.1.0
 * @category embedding
 */
export const retryKeys = { maxRetries: "maxRetries", baseDelay: "retryBaseDelay", maxDelay: "retryMaxDelay" } as const

/**
 * The ids of a `--client-ids` value: comma-separated, trimmed, empty entries
 * dropped (`"a, ,b"` is `["a", "b"]`).
 *
 * @since 0.2.0
 * @category parsing
 */
export const clientIdList = (clientIds: string): ReadonlyArray<string> =>
  clientIds
    .split(",")
    .map((id) => id.trim())
    .filter((id) => id !== "")

const Fields = Schema.Struct({
  host: Schema.String.pipe(Schema.withDecodingDefaultKey(Effect.succeed("127.0.0.1"))),
  port: int(0, 65535, "7070"),
  expectedClients: int(1, 10_000, "4"),
  minClients: int(1, 10_000, "2"),
  rounds: int(1, 100_000, "10"),
  localEpochs: int(1, 1000, "1"),
  localSteps: Schema.optionalKey(int(1, 1_000_000)),
  batchSize: int(1, 100_000, "10"),
  learningRate: Schema.FiniteFromString.pipe(
    Schema.check(Schema.isGreaterThan(0)),
    Schema.withDecodingDefaultKey(Effect.succeed("0.05")),
  ),
  model: Model.Name.pipe(Schema.withDecodingDefaultKey(Effect.succeed("softmax" as const))),
  partition: Partition.Kind.pipe(Schema.withDecodingDefaultKey(Effect.succeed("iid" as const))),
  seed: int(0, 2 ** 31 - 1, "42"),
  secret: Schema.RedactedFromValue(
    Schema.String.pipe(Schema.check(Schema.isMinLength(8, { message: "must be at least 8 characters" }))),
  ),
  clientIds: Schema.optionalKey(
    Schema.String.pipe(
      Schema.check(
        Schema.makeFilter((ids: string) => clientIdList(ids).length > 0 || "expected comma-separated ids, got none"),
      ),
    ),
  ),
  report: Schema.optionalKey(Settings.OutputFile),
  state: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1, { message: "must not be empty (use :memory: to keep no state)" })),
    Schema.withDecodingDefaultKey(Effect.succeed("./fedguard-state.db")),
  ),
  jobName: Schema.String.pipe(
    Schema.check(Schema.isMinLength(1, { message: "must not be empty" })),
    Schema.withDecodingDefaultKey(Effect.succeed("mnist-fedavg")),
  ),
  // The timeouts: each optional, resolved as a whole by `timeouts` (a lone --round-timeout sets
  // the scale of all the others).
  joinTimeout: Schema.optionalKey(Settings.PositiveMillis),
  roundTimeout: Schema.optionalKey(Settings.PositiveMillis),
  heartbeatInterval: Schema.optionalKey(Settings.PositiveMillis),
  heartbeatTimeout: Schema.optionalKey(Settings.PositiveMillis),
  maxRetries: int(0, 100, "3"),
  retryBaseDelay: millis("1s"),
  retryMaxDelay: millis("30s"),
  // The stall guard's timeouts: derived from the round and heartbeat timeouts when not given
  // (see `timeouts`), so one --round-timeout yields a consistent set.
  sendTimeout: Schema.optionalKey(Settings.PositiveMillis),
  ackProgressTimeout: Schema.optionalKey(Settings.PositiveMillis),
  checkInterval: Schema.optionalKey(Settings.PositiveMillis),
  stallTimeout: Schema.optionalKey(Settings.PositiveMillis),
  consecutiveChecks: Schema.optionalKey(int(1, 100)),
  closeStalled: Schema.Literals(["true", "false"]).pipe(
    Schema.withDecodingDefaultKey(Effect.succeed("false" as const)),
  ),
  memoryCleanupRounds: int(0, 1_000_000, "0"),
  memoryThreshold: Schema.optionalKey(Memory.Threshold),
  // --accept-diagnostics, --metrics-port, --metrics-host, --otlp-endpoint
  ...Observability.fields,
  // --status-port, --status-host, --status-token, --report-html
  ...StatusPage.fields,
})

type Fields = typeof Fields.Type

/**
 * The round timeout when none is given (the seed's 120 s).
 *
 * @since 0.2.0
 * @category timeouts
 */
export const defaultRoundTimeout = 120_000

/**
 * The join timeout when none is given: how long the server waits for the
 * expected clients (and a named client to show up). Not scaled with the
 * heartbeats: it covers starting processes and loading data, not beats.
 *
 * @since 0.2.0
 * @category timeouts
 */
export const defaultJoinTimeout = 60_000

/**
 * Every timeout of the deployment, resolved by `TimeoutBudget.derive`: the
 * values given are kept, the others derived from them and from the round
 * timeout (default 120 s, which yields the seeds' values: beats every 30 s,
 * offline after 90 s, FLARE's 30 / 60 / 45 s × 3 stall guard). A lone
 * `--round-timeout 20s` scales all of them down together, except the join
 * timeout (default 60 s: it covers starting processes, not beats). `sources` says
 * which were given, derived, or left at the default. (FLARE's lesson:
 * timeouts tuned one by one drift apart; here they come from one chain, and
 * `TimeoutBudget.check` refuses an inconsistent set at start-up.)
 *
 * @since 0.2.0
 * @category timeouts
 */
export const timeouts = (settings: Omit<Fields, "secret">): TimeoutBudget.TimeoutBudget => {
  const budget = TimeoutBudget.derive(settings.roundTimeout ?? defaultRoundTimeout, {
    heartbeatInterval: settings.heartbeatInterval,
    heartbeatTimeout: settings.heartbeatTimeout,
    joinTimeout: settings.joinTimeout ?? defaultJoinTimeout,
    sendTimeout: settings.sendTimeout,
    ackProgressTimeout: settings.ackProgressTimeout,
    checkInterval: settings.checkInterval,
    stallTimeout: settings.stallTimeout,
    consecutiveChecks: settings.consecutiveChecks,
  })
  return {
    ...budget,
    sources: {
      ...budget.sources,
      roundTimeout: settings.roundTimeout === undefined ? "default" : "given",
      joinTimeout: settings.joinTimeout === undefined ? "default" : "given",
    },
  }
}

// The budget's keys are the settings' keys. A broken rule is reported with the flags the user
// gave: values derived from them break rules only as a consequence, and are not the mistake.
const budgetRule = Settings.rule<Fields>("roundTimeout", "heartbeatTimeout", (settings, flag) => {
  const budget = timeouts(settings)
  const checked = TimeoutBudget.check(budget)
  if (Result.isSuccess(checked)) return undefined
  const given = (key: string) => budget.sources?.[key as TimeoutBudget.Key] === "given"
  const givenKeys = Object.keys(budget.sources ?? {}).filter(given)
  const blamed = checked.failure.broken.filter((rule) => rule.keys.some(given))
  return (blamed.length > 0 ? blamed : checked.failure.broken)
    .map((rule) => {
      // A rule broken only by derived values: they were derived from the given ones.
      const keys = rule.keys.some(given) ? rule.keys.filter(given) : givenKeys.length > 0 ? givenKeys : rule.keys
      return `${keys.map((key) => flag(key as keyof Fields & string)).join(", ")}: ${rule.message}`
    })
    .join("; ")
})

/**
 * Every setting, its default, and (in `descriptions`) what it means; decoding
 * also checks the rules listed in the module documentation, reporting a
 * broken one at the setting at fault with a message naming both flags.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerSettings = Fields.check(
  Settings.embed<Fields, typeof retryKeys>(RetryPolicy.RetryPolicy, retryKeys, { kind: "duration" }),
  Settings.compare<Fields>("minClients", "<=", "expectedClients", {
    because: "the server would wait for clients that are not expected",
  }),
  budgetRule,
  StatusPage.tokenRule,
  Settings.rule<Fields>("expectedClients", "clientIds", (settings, flag) => {
    if (settings.clientIds === undefined) return undefined
    const allowed = new Set(clientIdList(settings.clientIds)).size
    return settings.expectedClients <= allowed
      ? undefined
      : `${flag("expectedClients")} (${settings.expectedClients}) must not be greater than the ${allowed} distinct ids of ${flag("clientIds")}: the server would wait forever`
  }),
)

/**
 * @since 0.1.0
 * @category models
 */
export type ServerSettings = typeof ServerSettings.Type

/**
 * One line of help per setting, used for `--help`.
 *
 * @since 0.1.0
 * @category docs
 */
export const descriptions: Record<keyof ServerSettings | "explainTimeouts" | "newJob", string> = {
  host: "Address to listen on (default 127.0.0.1)",
  port: "TCP port; 0 picks a free one (default 7070)",
  expectedClients: "Clients to wait for before the first round (default 4)",
  minClients: "Fewest clients a round may run with; below it the server pauses; at most expected clients (default 2)",
  rounds: "Federated rounds to run (default 10)",
  localEpochs: "Local epochs each client trains per round (default 1)",
  localSteps:
    "Cap on SGD steps (minibatches of --batch-size) each client takes per round, even mid-epoch: the knob for big models (default: none, every step of the local epochs)",
  batchSize: "Client minibatch size (default 10)",
  learningRate: "Client SGD learning rate (default 0.05)",
  model:
    "softmax, 2nn (784-200-200-10 ReLU) or mlp:W1,W2,… (ReLU perceptron 784-W1-W2-…-10: 1-64 hidden layers of 1-65536 units, <= 512 Mi parameters; mlp:4096,3302 is 64 MiB); clients learn it from the welcome (default softmax)",
  partition: "iid or noniid (default iid); clients must use the same",
  seed: "Seed of the data split and model initialisation (default 42)",
  secret: "Federation secret clients prove they hold (required, >= 8 characters)",
  clientIds: "Comma-separated ids allowed to join (default: any id that proves the secret)",
  report: "Write the JSON report to this file (its directory must exist and be writable)",
  state:
    "SQLite state file of the job: each round commits there, and a restarted server resumes its running job (default ./fedguard-state.db; :memory: keeps none)",
  jobName: "The job's name in the state file and the report (default mnist-fedavg)",
  newJob: "Abort the running job in the state file, if any, and start a new one",
  joinTimeout: "How long to wait for expected clients, and for a never-seen client (default 60s)",
  roundTimeout:
    "Longest a round waits for updates; later ones are stragglers; sets the scale of every timeout not given (default 120s)",
  heartbeatInterval: "How often clients beat (default: round timeout / 4, 30s)",
  heartbeatTimeout: "Silence after which a client is offline; above 2 x the interval (default: 3 x interval, 90s)",
  maxRetries: "Retries of a failed send (3 retries = 4 attempts; default 3)",
  retryBaseDelay: "First retry delay, doubled each retry (default 1s)",
  retryMaxDelay: "Cap of the retry delay, after jitter; at least the base delay (default 30s)",
  sendTimeout:
    "Longest one socket write may block before the connection is closed (default: heartbeat timeout / 3, 30s)",
  ackProgressTimeout:
    "A transfer whose acknowledged offset does not move for this long is stalled (default: 2 x send timeout, 60s)",
  checkInterval: "How often the stall guard checks progress (default: send timeout / 6, 5s)",
  stallTimeout: "A send blocked this long counts as a stalled check (default: 1.5 x send timeout, 45s)",
  consecutiveChecks: "Stalled checks in a row before a connection is reported stalled (default 3)",
  closeStalled: "true: close a connection the stall monitor reports stalled; false: warn only (default false)",
  ...Memory.descriptions,
  ...Observability.descriptions,
  ...StatusPage.descriptions,
  explainTimeouts: "Print every timeout, where it comes from and the rule that bounds it, then exit",
}

/**
 * The retry policy of the server's sends, from the retry settings (already
 * validated by `RetryPolicy` when the settings were decoded).
 *
 * @since 0.1.0
 * @category embedding
 */
export const retryPolicy = (settings: ServerSettings): RetryPolicy.RetryPolicy =>
  RetryPolicy.make(Settings.project(retryKeys, settings))

/**
 * The liveness tracker's options (fixed timeout, join timeout, quorum): the
 * resolved heartbeat timings, decoded by `@fedguard/heartbeat`'s
 * `HeartbeatConfig` (its rules hold: the timeout budget is stricter).
 *
 * @since 0.1.0
 * @category embedding
 */
export const livenessOptions = (settings: ServerSettings): LivenessTracker.Options => {
  const resolved = timeouts(settings)
  return LivenessTracker.optionsFromConfig(
    Schema.decodeUnknownSync(HeartbeatConfig.HeartbeatConfig)({
      interval: resolved.heartbeatInterval,
      timeout: resolved.heartbeatTimeout,
      peerTimeout: resolved.heartbeatTimeout,
      joinTimeout: resolved.joinTimeout,
      minClients: settings.minClients,
    }),
  )
}

/**
 * The settings as the report's `config`: every decoded value and every
 * resolved timeout (durations in milliseconds), the secret replaced by
 * `"<redacted>"`.
 *
 * @since 0.2.0
 * @category report
 */
export const reportConfig = (settings: ServerSettings): Record<string, Schema.Json> => {
  const { secret: _secret, statusToken: _statusToken, ...rest } = settings
  const { sources: _sources, ...resolved } = timeouts(settings)
  const token = settings.statusToken === undefined ? {} : { statusToken: "<redacted>" }
  return { ...rest, ...resolved, secret: "<redacted>", ...token }
}
