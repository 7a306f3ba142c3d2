/**
 * fed-server's settings: one Schema with the defaults, decoded from flags,
 * `FED_SERVER_*` environment variables and an optional JSON config file.
 *
 * @since 0.1.0
 */
import { Model, Partition, Settings } from "@fedguard/federation"
import { Effect, Schema } from "effect"

const { int, millis } = Settings

/**
 * Every setting, its default, and (in `descriptions`) what it means.
 *
 * @since 0.1.0
 * @category schemas
 */
export const ServerSettings = Schema.Struct({
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
  clientIds: Schema.optionalKey(Schema.String),
  report: Schema.optionalKey(Schema.String),
  joinTimeout: millis("60s"),
  roundTimeout: millis("120s"),
  heartbeatInterval: millis("30s"),
  heartbeatTimeout: millis("90s"),
  maxRetries: int(0, 100, "3"),
  retryBaseDelay: millis("1s"),
  retryMaxDelay: millis("30s"),
})

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
export const descriptions: Record<keyof ServerSettings, string> = {
  host: "Address to listen on (default 127.0.0.1)",
  port: "TCP port; 0 picks a free one (default 7070)",
  expectedClients: "Clients to wait for before the first round (default 4)",
  minClients: "Fewest clients a round may run with; below it the server pauses (default 2)",
  rounds: "Federated rounds to run (default 10)",
  localEpochs: "Local epochs each client trains per round (default 1)",
  batchSize: "Client minibatch size (default 10)",
  learningRate: "Client SGD learning rate (default 0.05)",
  model: "softmax or 2nn (default softmax)",
  partition: "iid or noniid (default iid); clients must use the same",
  seed: "Seed of the data split and model initialisation (default 42)",
  secret: "Federation secret clients prove they hold (required, >= 8 characters)",
  clientIds: "Comma-separated ids allowed to join (default: any id that proves the secret)",
  report: "Write the JSON report to this file",
  joinTimeout: "How long to wait for expected clients, and for a never-seen client (default 60s)",
  roundTimeout: "Longest a round waits for updates; later ones are stragglers (default 120s)",
  heartbeatInterval: "How often clients beat (default 30s)",
  heartbeatTimeout: "Silence after which a client is offline (default 90s)",
  maxRetries: "Retries of a failed send (3 retries = 4 attempts; default 3)",
  retryBaseDelay: "First retry delay, doubled each retry (default 1s)",
  retryMaxDelay: "Cap of the retry delay, after jitter (default 30s)",
}
