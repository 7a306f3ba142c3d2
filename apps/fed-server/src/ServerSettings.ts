/**
 * fed-server's settings: one Schema with the defaults, decoded from flags,
 * `FED_SERVER_*` environment variables and an optional JSON config file, and
 * validated as a whole before the server listens.
 *
 * Design: the settings stay flat (one key per flag, `--retry-base-delay 200ms`,
 * durations as numbers of milliseconds), and the struct's checks validate
 * them as a whole:
 *
 * - the liveness group (`heartbeatInterval`, `heartbeatTimeout` as both the
 *   server's timeout and the clients' peer timeout, `joinTimeout`,
 *   `minClients`) is decoded by `@fedguard/heartbeat`'s
 *   `HeartbeatConfig` (positive durations, timeout longer than the interval),
 *   and the retry group (`maxRetries`, `retryBaseDelay`, `retryMaxDelay`) by
 *   `@fedguard/retry`'s `RetryPolicy` (positive base delay, max delay not
 *   shorter than the base delay): their rules are stated once, in the
 *   packages, through `Settings.embed` and the key maps {@link livenessKeys}
 *   and {@link retryKeys};
 * - the server's own rules are stated here with `Settings.compare` and
 *   `Settings.rule`: `--min-clients` not above `--expected-clients`,
 *   `--round-timeout` positive and not shorter than `--heartbeat-timeout`,
 *   and `--expected-clients` not above the number of `--client-ids`.
 *
 * The same key maps derive the packages' options ({@link retryPolicy},
 * {@link livenessOptions}), so the server never restates them.
 *
 * @since 0.1.0
 */

import { Settings } from "@fedguard/app-kit"
import { Model, Partition } from "@fedguard/federation"
import { HeartbeatConfig, LivenessTracker } from "@fedguard/heartbeat"
import { RetryPolicy } from "@fedguard/retry"
import { TimeoutBudget } from "@fedguard/stall-guard"
import { Effect, Result, Schema } from "effect"

const { int, millis } = Settings

/**
 * Which setting holds each `HeartbeatConfig` key the server uses (and sends
 * to clients in its welcome).
 *
 * @since 0.1.0
 * @category embedding
 */
export const livenessKeys = {
  interval: "heartbeatInterval",
  timeout: "heartbeatTimeout",
  // The welcome hands the same timeout to clients as their peer timeout.
  peerTimeout: "heartbeatTimeout",
  joinTimeout: "joinTimeout",
  minClients: "minClients",
} as const

/**
 * Which setting holds each `RetryPolicy` key.
 *
 * @since 0.1.0
 * @category embedding
 */
export const retryKeys = { maxRetries: "maxRetries", baseDelay: "retryBaseDelay", maxDelay: "retryMaxDelay" } as const

const clientIdList = (clientIds: string) =>
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
  joinTimeout: millis("60s"),
  roundTimeout: Settings.positiveMillis("120s"),
  heartbeatInterval: millis("30s"),
  heartbeatTimeout: millis("90s"),
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
})

type Fields = typeof Fields.Type

/**
 * Every timeout of the deployment, resolved: the values given, and the
 * stall guard's derived by `TimeoutBudget.derive` from the round timeout and
 * the heartbeat timings (FLARE's lesson: timeouts tuned one by one drift
 * apart; here they come from one chain, and `TimeoutBudget.check` refuses an
 * inconsistent set at start-up).
 *
 * @since 0.2.0
 * @category timeouts
 */
export const timeouts = (settings: Omit<Fields, "secret">): TimeoutBudget.TimeoutBudget =>
  TimeoutBudget.derive(settings.roundTimeout, {
    heartbeatInterval: settings.heartbeatInterval,
    heartbeatTimeout: settings.heartbeatTimeout,
    joinTimeout: settings.joinTimeout,
    sendTimeout: settings.sendTimeout,
    ackProgressTimeout: settings.ackProgressTimeout,
    checkInterval: settings.checkInterval,
    stallTimeout: settings.stallTimeout,
    consecutiveChecks: settings.consecutiveChecks,
  })

// The budget's keys are the settings' keys: a broken rule names its flags.
const budgetRule = Settings.rule<Fields>("roundTimeout", "heartbeatTimeout", (settings, flag) => {
  const checked = TimeoutBudget.check(timeouts(settings))
  if (Result.isSuccess(checked)) return undefined
  return checked.failure.broken
    .map((rule) => `${rule.keys.map((key) => flag(key as keyof Fields & string)).join(", ")}: ${rule.message}`)
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
  Settings.embed<Fields, typeof livenessKeys>(HeartbeatConfig.HeartbeatConfig, livenessKeys, { kind: "duration" }),
  Settings.embed<Fields, typeof retryKeys>(RetryPolicy.RetryPolicy, retryKeys, { kind: "duration" }),
  Settings.compare<Fields>("minClients", "<=", "expectedClients", {
    because: "the server would wait for clients that are not expected",
  }),
  Settings.compare<Fields>("roundTimeout", ">", "heartbeatTimeout", {
    kind: "duration",
    because: "a round would end before a dead client is detected",
  }),
  budgetRule,
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
export const descriptions: Record<keyof ServerSettings | "explainTimeouts", string> = {
  host: "Address to listen on (default 127.0.0.1)",
  port: "TCP port; 0 picks a free one (default 7070)",
  expectedClients: "Clients to wait for before the first round (default 4)",
  minClients: "Fewest clients a round may run with; below it the server pauses; at most expected clients (default 2)",
  rounds: "Federated rounds to run (default 10)",
  localEpochs: "Local epochs each client trains per round (default 1)",
  batchSize: "Client minibatch size (default 10)",
  learningRate: "Client SGD learning rate (default 0.05)",
  model: "softmax or 2nn (default softmax)",
  partition: "iid or noniid (default iid); clients must use the same",
  seed: "Seed of the data split and model initialisation (default 42)",
  secret: "Federation secret clients prove they hold (required, >= 8 characters)",
  clientIds: "Comma-separated ids allowed to join (default: any id that proves the secret)",
  report: "Write the JSON report to this file (its directory must exist and be writable)",
  joinTimeout: "How long to wait for expected clients, and for a never-seen client (default 60s)",
  roundTimeout:
    "Longest a round waits for updates; later ones are stragglers; at least the heartbeat timeout (default 120s)",
  heartbeatInterval: "How often clients beat (default 30s)",
  heartbeatTimeout: "Silence after which a client is offline; longer than the interval (default 90s)",
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
 * The liveness tracker's options (fixed timeout, join timeout, quorum), from
 * the liveness settings through `HeartbeatConfig`.
 *
 * @since 0.1.0
 * @category embedding
 */
export const livenessOptions = (settings: ServerSettings): LivenessTracker.Options =>
  LivenessTracker.optionsFromConfig(
    Schema.decodeUnknownSync(HeartbeatConfig.HeartbeatConfig)(Settings.project(livenessKeys, settings)),
  )

/**
 * The settings as the report's `config`: every decoded value (durations in
 * milliseconds), the secret replaced by `"<redacted>"`.
 *
 * @since 0.2.0
 * @category report
 */
export const reportConfig = (settings: ServerSettings): Record<string, Schema.Json> => {
  const { secret: _secret, ...rest } = settings
  return { ...rest, secret: "<redacted>" }
}
