import { assert, describe, it } from "@effect/vitest"
import { Dataset, Workload } from "@fedguard/federation"
import { Effect, Fiber } from "effect"
import { TestClock } from "effect/testing"
import { TrainingJob } from "../src/TrainingJob.ts"
import { honest, scriptedClient, serverUp, settingsWith, settle, until, withServer } from "./support/Harness.ts"

// A tiny held-out split: evaluation needs digits, not MNIST.
const test = Effect.map(
  Dataset.make(new Float32Array(784 * 10).fill(0.5), Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
  Workload.evaluationOf,
)

describe("TrainingJob (TestClock, in-memory transport)", () => {
  it.effect(
    "below the quorum no round starts, an empty round never runs or counts, and training resumes when a client rejoins",
    () =>
      Effect.gen(function* () {
        const dataset = yield* test
        const { network, seen } = yield* serverUp
        const job = yield* TrainingJob
        yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
        // c1 takes the model of round 1 and never answers.
        yield* scriptedClient(network, "c1", 1000, () => [])
        const running = yield* Effect.forkChild(job.run(dataset))
        yield* until(seen, (e) => e._tag === "RoundStarted" && e.round === 1)
        // c1 dies mid-round: round 1 completes with c0, then the quorum (2) is lost before round 2.
        yield* network.kill("c1")
        yield* until(seen, (e) => e._tag === "RoundPaused" && e.round === 2)
        yield* TestClock.adjust("10 minutes")
        yield* settle()
        assert.isFalse(seen.some((e) => e._tag === "RoundStarted" && e.round === 2))
        assert.isUndefined(running.pollUnsafe())
        // It comes back: round 2 runs with both, and the job ends after exactly the 2 rounds asked for.
        yield* network.revive("c1")
        yield* scriptedClient(network, "c1", 1000, honest(0.2, 100))
        const report = yield* Fiber.join(running)
        assert.deepStrictEqual(
          report.rounds.map((round) => [round.round, round.participants]),
          [
            [1, ["c0"]],
            [2, ["c0", "c1"]],
          ],
        )
        for (const round of seen.filter((e) => e._tag === "RoundStarted")) {
          assert.isAbove(round._tag === "RoundStarted" ? round.participants.length : 0, 0)
        }
        assert.deepStrictEqual(
          report.clients.map((client) => [client.id, client.state]),
          [
            ["c0", "completed"],
            ["c1", "completed"],
          ],
        )
      }).pipe(
        withServer(
          settingsWith({
            expectedClients: "2",
            minClients: "2",
            rounds: "2",
            heartbeatTimeout: "20m",
            roundTimeout: "25m",
          }),
        ),
      ),
  )

  it.effect("starts after the join timeout with the clients present, and lists the absent one in every round", () =>
    Effect.gen(function* () {
      const dataset = yield* test
      const { network, seen } = yield* serverUp
      const job = yield* TrainingJob
      yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
      const running = yield* Effect.forkChild(job.run(dataset))
      yield* settle()
      yield* TestClock.adjust("59999 millis")
      yield* settle()
      assert.isFalse(seen.some((e) => e._tag === "RoundStarted"))
      yield* TestClock.adjust("1 millis")
      const report = yield* Fiber.join(running)
      assert.isTrue(seen.some((e) => e._tag === "JoinTimedOut" && e.online === 1 && e.expected === 2))
      assert.deepStrictEqual(
        report.rounds.map((round) => round.excluded),
        [[{ id: "c1", reason: "never-joined" }]],
      )
    }).pipe(
      withServer(
        settingsWith({
          expectedClients: "2",
          minClients: "1",
          rounds: "1",
          clientIds: "c0,c1",
          joinTimeout: "60s",
          // c0 does not beat: a long heartbeat timeout keeps it online across the minute.
          heartbeatTimeout: "5m",
          roundTimeout: "6m",
        }),
      ),
    ),
  )
})
