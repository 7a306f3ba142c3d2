/**
 * fed-client's settings: one Schema with the defaults, decoded from flags,
 * `FED_CLIENT_*` environment variables and an optional JSON config file.
 *
 * @since 0.1.0
 */
import { Partition, Settings } from "@fedguard/federation"
import { Effect, Schema } from "effect"

const { int, millis } = Settings

/**
 * Every setting and its default.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ClientSettings = Schema.Struct({
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
  maxRetries: int(0, 100, "3"),
  retryBaseDelay: millis("1s"),
  retryMaxDelay: millis("30s"),
  joinTimeout: millis("30s"),
  heartbeatInterval: Schema.optionalKey(Settings.Millis),
  heartbeatTimeout: Schema.optionalKey(Settings.Millis),
}).pipe(
  Schema.check(
    Schema.makeFilter((s: { readonly shardIndex: number; readonly shardCount: number }) =>
      s.shardIndex < s.shardCount ? undefined : `shardIndex ${s.shardIndex} must be below shardCount ${s.shardCount}`,
    ),
  ),
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
  shardIndex: "Which shard of the training data this client holds, 0-based (required)",
  shardCount: "How many shards the training data is cut into (required)",
  partition: "iid or noniid (default iid); must match the server",
  seed: "Seed of the data split; must match the server (default 42)",
  maxRetries: "Retries of a failed connect or send (3 retries = 4 attempts; default 3)",
  retryBaseDelay: "First retry delay, doubled each retry (default 1s)",
  retryMaxDelay: "Cap of the retry delay, after jitter (default 30s)",
  joinTimeout: "Longest wait from connecting to the server's welcome; then reconnect (default 30s)",
  heartbeatInterval: "Override the server's heartbeat interval",
  heartbeatTimeout: "Override how long without acks before the server is lost",
}
