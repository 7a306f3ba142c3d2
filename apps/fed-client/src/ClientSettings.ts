/**
 * fed-client's settings: one Schema with the defaults, decoded from flags,
 * `FED_CLIENT_*` environment variables and an optional JSON config file, and
 * validated as a whole before the client connects.
 *
 * Design (as fed-server's): the settings stay flat (one key per flag,
 * durations as numbers of milliseconds) and the struct's checks validate
 * them as a whole. The retry group (`maxRetries`, `retryBaseDelay`,
 * `retryMaxDelay`) is decoded by `@fedguard/retry`'s `RetryPolicy`, and the
 * optional heartbeat overrides, when both are given, by
 * `@fedguard/heartbeat`'s `HeartbeatConfig` (`interval` and `peerTimeout`:
 * the timeout must be longer than the interval), through `Settings.embed` and
 * the key maps {@link retryKeys} and {@link heartbeatKeys}. The client's own
 * rules: `--shard-index` below `--shard-count`, and positive
 * `--join-timeout` and heartbeat overrides.
 *
 * @since 0.1.0
 */

import { Memory, Settings } from "@fedguard/app-kit"
import { Partition } from "@fedguard/federation"
import { HeartbeatConfig } from "@fedguard/heartbeat"
import { RetryPolicy } from "@fedguard/retry"
import { TimeoutBudget } from "@fedguard/stall-guard"
import { Effect, Schema } from "effect"
import * as ClientDiagnostics from "./ClientDiagnostics.ts"
import * as TrainerSettings from "./TrainerSettings.ts"

const { int, millis } = Settings

/**
 * Which setting holds each `RetryPolicy` key.
 *
 * @since 0.1.0
 * @category embedding
 */
export const retryKeys = { maxRetries: "maxRetries", baseDelay: "retryBaseDelay", maxDelay: "retryMaxDelay" } as const

/**
 * Which setting overrides each `HeartbeatConfig` key of the sender (the
 * server's welcome supplies them otherwise).
 *
 * @since 0.1.0
 * @category embedding
 */
export const heartbeatKeys = { interval: "heartbeatInterval", peerTimeout: "heartbeatTimeout" } as const

const Fields = Schema.Struct({
  server: Schema.String.pipe(
    Schema.check(Schema.isPattern(/^[^\s:]+:\d{1,5}$/, { message: "expected HOST:PORT, e.g. 127.0.0.1:7070" })),
  ),
  id: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(128))),
  secret: Schema.RedactedFromValue(
    Schema.String.pipe(Schema.check(Schema.isMinLength(8, { message: "must be at least 8 characters" }))),
  ),
  shardIndex: int(0, 9_999),
  shardCount: int(1, 10_000),
  partition: Partition.Kind.pipe(Schema.withDecodingDefaultKey(Effect.succeed("iid" as const))),
  seed: int(0, 2 ** 31 - 1, "42"),
  // Six retries of 1, 2, 4, 8, 16 and 30 s: a client rides out a server outage of at least a minute.
  maxRetries: int(0, 100, "6"),
  retryBaseDelay: millis("1s"),
  retryMaxDelay: millis("30s"),
  joinTimeout: Settings.positiveMillis("30s"),
  heartbeatInterval: Schema.optionalKey(Settings.PositiveMillis),
  heartbeatTimeout: Schema.optionalKey(Settings.PositiveMillis),
  faultStallUpload: Schema.optionalKey(int(1, 1_000_000)),
  memoryCleanupRounds: int(0, 1_000_000, "0"),
  memoryThreshold: Schema.optionalKey(Memory.Threshold),
  // --diagnostics, --diagnostics-interval, --diagnostics-log-file, --otlp-endpoint
  ...ClientDiagnostics.fields,
  // --trainer, --trainer-timeout, --fault-block-training
  ...TrainerSettings.fields,
})

type Fields = typeof Fields.Type

/**
 * Every setting and its default; decoding also checks the rules listed in
 * the module documentation, reporting a broken one at the setting at fault
 * with a message naming both flags.
 *
 * @since 0.1.0
 * @category schemas
 */
// The client's share of the deployment's timeout budget (`@fedguard/stall-guard`): its own
// heartbeat overrides, when both are given, must pass the budget's rules about them. Everything
// else the budget bounds is the server's, checked when the server starts; the ack-progress
// timeout of uploads comes from the server's welcome.
const heartbeatBudget = Settings.rule<Fields>("heartbeatTimeout", "heartbeatInterval", (settings, flag) => {
  const { heartbeatInterval, heartbeatTimeout } = settings
  if (heartbeatInterval === undefined || heartbeatTimeout === undefined) return undefined
  const budget = TimeoutBudget.derive("1 hour", { heartbeatInterval, heartbeatTimeout })
  const own = new Set<string>(["heartbeatInterval", "heartbeatTimeout"])
  const broken = TimeoutBudget.rules
    .filter((rule) => rule.keys.every((key) => own.has(key)))
    .flatMap((rule) => rule.violation(budget) ?? [])
  return broken.length === 0
    ? undefined
    : `${flag("heartbeatTimeout")}, ${flag("heartbeatInterval")}: ${broken.join("; ")}`
})

export const ClientSettings = Fields.check(
  Settings.compare<Fields>("shardIndex", "<", "shardCount", { because: "shards are numbered from 0" }),
  Settings.embed<Fields, typeof retryKeys>(RetryPolicy.RetryPolicy, retryKeys, { kind: "duration" }),
  Settings.embed<Fields, typeof heartbeatKeys>(HeartbeatConfig.HeartbeatConfig, heartbeatKeys, { kind: "duration" }),
  heartbeatBudget,
)

/**
 * @since 0.1.0
 * @category models
 */
export type ClientSettings = typeof ClientSettings.Type

/**
 * One line of help per setting, used for `--help`.
 *
 * @since 0.1.0
 * @category docs
 */
export const descriptions: Record<keyof ClientSettings, string> = {
  server: "Server address HOST:PORT (required)",
  id: "This client's id (required)",
  secret: "Federation secret (required; never sent, only proven)",
  shardIndex: "Which shard of the training data this client holds, 0-based, below the shard count (required)",
  shardCount: "How many shards the training data is cut into (required)",
  partition: "iid or noniid (default iid); must match the server",
  seed: "Seed of the data split; must match the server (default 42)",
  maxRetries:
    "Retries of a failed connect or send (6 retries = 7 attempts; default 6, which rides out a server outage of at least 60s)",
  retryBaseDelay: "First retry delay, doubled each retry (default 1s)",
  retryMaxDelay: "Cap of the retry delay, after jitter; at least the base delay (default 30s)",
  joinTimeout: "Longest wait from connecting to the server's welcome; then reconnect (default 30s)",
  heartbeatInterval: "Override the server's heartbeat interval",
  heartbeatTimeout: "Override how long without acks before the server is lost; longer than the interval",
  faultStallUpload:
    "Fault injection (tests, the demo): in this round the upload stops sending mid-stream while heartbeats go on",
  ...Memory.descriptions,
  ...ClientDiagnostics.descriptions,
  ...TrainerSettings.descriptions,
}

/**
 * The retry policy of this client's connects and sends, from the retry
 * settings (already validated by `RetryPolicy` when the settings were
 * decoded).
 *
 * @since 0.1.0
 * @category embedding
 */
export const retryPolicy = (
  settings: Pick<ClientSettings, "maxRetries" | "retryBaseDelay" | "retryMaxDelay">,
): RetryPolicy.RetryPolicy => RetryPolicy.make(Settings.project(retryKeys, settings))
