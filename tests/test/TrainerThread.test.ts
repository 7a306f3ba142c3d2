import { assert, describe, it } from "@effect/vitest"
import type * as ClientEvent from "@fedguard/fed-client/ClientEvent"
import { Effect } from "effect"
import { is, portOf, seenOf, startClient, startServer, waitFor } from "./support/Processes.ts"

// Why fed-client trains in a worker thread: a training step that blocks its thread (a native
// binding, a long synchronous loop) for 3 × the server's heartbeat timeout. In a worker thread
// the client's heartbeats go on; inline they stop, and the server marks the client offline.
const secret = "trainer-thread-secret"
const heartbeatTimeoutMs = 1000
const blockMs = 3 * heartbeatTimeoutMs

const federation = (trainer: "thread" | "inline") =>
  Effect.gen(function* () {
    const server = yield* startServer(secret, [
      "--expected-clients",
      "1",
      "--min-clients",
      "1",
      "--rounds",
      "3",
      "--local-epochs",
      "1",
      "--heartbeat-interval",
      "200ms",
      "--heartbeat-timeout",
      `${heartbeatTimeoutMs}ms`,
      "--round-timeout",
      "30s",
    ])
    const client = yield* startClient(yield* portOf(server), {
      id: "c0",
      index: 0,
      count: 4,
      secret,
      // The client is patient with the server (5 s), so only the server's view is under test.
      flags: ["--trainer", trainer, "--fault-block-training", `${blockMs}@2`, "--heartbeat-timeout", "5s"],
    })
    return { server, client }
  })

const trained = (event: ClientEvent.ClientEvent): event is ClientEvent.RoundTrained =>
  event._tag === "RoundTrained" && event.round === 2

describe("a training step that blocks its thread for 3 × the heartbeat timeout (real processes)", () => {
  it.live("with --trainer thread the client is never marked offline, and round 2 counts its update", () =>
    Effect.gen(function* () {
      const { server, client } = yield* federation("thread")
      const done = yield* waitFor(server, is("TrainingCompleted"))
      assert.strictEqual(done.rounds, 3)
      const round2 = yield* waitFor(client, trained)
      assert.isAtLeast(round2.durationMs, blockMs, "the block did run, in the worker")
      assert.lengthOf(seenOf(server, "ClientWentOffline"), 0)
      const completed = seenOf(server, "RoundCompleted").find((round) => round.round === 2)
      assert.deepStrictEqual(completed?.participants, ["c0"])
    }).pipe(Effect.scoped, Effect.timeout("40 seconds")),
  )

  it.live("with --trainer inline (the negative twin) the server marks the client offline during the block", () =>
    Effect.gen(function* () {
      const { server } = yield* federation("inline")
      const started = yield* waitFor(
        server,
        is("RoundStarted", (event) => event.round === 2),
      )
      const offline = yield* waitFor(
        server,
        is("ClientWentOffline", (event) => event.id === "c0"),
      )
      const after = offline.receivedAt - started.receivedAt
      assert.isBelow(after, blockMs + 1000, "while the client's thread was blocked")
    }).pipe(Effect.scoped, Effect.timeout("40 seconds")),
  )
})
