import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Settings } from "@fedguard/app-kit"
import { Duration, Effect, type Schema } from "effect"
import { ClientSettings, retryPolicy as clientRetryPolicy } from "../src/ClientSettings.ts"

const load = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S,
  envPrefix: string,
  flags: Record<string, string>,
) => Settings.loadFlags(schema, envPrefix, flags).pipe(Effect.provide(NodeServices.layer))

// The one line the binary prints (after its name) for settings that fail to load.
const failure = <E>(loading: Effect.Effect<unknown, E>) =>
  Effect.map(Effect.flip(loading), (error) => (error as { readonly message: string }).message)

const client = (flags: Record<string, string>) =>
  load(ClientSettings, "FED_CLIENT_", {
    server: "127.0.0.1:7070",
    id: "a",
    secret: "long-enough",
    shardIndex: "0",
    shardCount: "2",
    ...flags,
  })

describe("client settings", () => {
  it.effect("valid settings load and derive the retry policy", () =>
    Effect.gen(function* () {
      const policy = clientRetryPolicy(yield* client({ retryBaseDelay: "10ms", maxRetries: "1" }))
      assert.deepStrictEqual(
        [policy.maxRetries, Duration.toMillis(policy.baseDelay), Duration.toMillis(policy.maxDelay)],
        [1, 10, 30_000],
      )
    }),
  )

  it.effect("rejects a shard index not below the shard count, naming both flags", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ shardIndex: "2", shardCount: "2" })),
        "invalid settings: --shard-index (2) must be less than --shard-count (2): shards are numbered from 0",
      )
    }),
  )

  it.effect("checks heartbeat overrides against each other only when both are given", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ heartbeatInterval: "2s", heartbeatTimeout: "1s" })),
        "invalid settings: --heartbeat-timeout (1s) must be longer than --heartbeat-interval (2s): a peer would be declared lost between two beats",
      )
      assert.strictEqual((yield* client({ heartbeatTimeout: "1s" })).heartbeatTimeout, 1000)
      assert.strictEqual((yield* client({ heartbeatInterval: "2m" })).heartbeatInterval, 120_000)
      assert.match(yield* failure(client({ heartbeatInterval: "0s" })), /heartbeatInterval.*positive duration/)
    }),
  )

  it.effect("rejects a retry base delay above the max delay and a zero join timeout", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* failure(client({ retryBaseDelay: "2s", retryMaxDelay: "1s" })),
        "invalid settings: --retry-max-delay (1s) must not be shorter than --retry-base-delay (2s)",
      )
      assert.match(yield* failure(client({ joinTimeout: "0ms" })), /joinTimeout \(from --join-timeout\).*positive/)
    }),
  )

  it.effect(
    "heartbeat overrides given together must pass the timeout budget's heartbeat rule (timeout > 2 × interval)",
    () =>
      Effect.gen(function* () {
        const message = yield* failure(client({ heartbeatInterval: "1s", heartbeatTimeout: "1500ms" }))
        assert.match(
          message,
          /--heartbeat-timeout, --heartbeat-interval: heartbeat timeout 1.5 s must exceed 2 × interval 1 s/,
        )
        assert.strictEqual(
          (yield* client({ heartbeatInterval: "1s", heartbeatTimeout: "2100ms" })).heartbeatTimeout,
          2100,
        )
        // One override alone is compared with the server's value when it arrives, not here.
        assert.strictEqual((yield* client({ heartbeatTimeout: "300ms" })).heartbeatTimeout, 300)
      }),
  )
})
