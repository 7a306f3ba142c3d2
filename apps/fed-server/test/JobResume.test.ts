import { createHash } from "node:crypto"
import { assert, describe, it } from "@effect/vitest"
import { Settings } from "@fedguard/app-kit"
import { Dataset, Model, Weights, Workload } from "@fedguard/federation"
import { JobStore } from "@fedguard/job-lifecycle"
import { Effect, Exit, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import * as JobRecord from "../src/JobRecord.ts"
import type * as ServerEvent from "../src/ServerEvent.ts"
import { TrainingJob } from "../src/TrainingJob.ts"
import { honest, scriptedClient, serverUp, settingsWith, settle, until, withServer } from "./support/Harness.ts"

// A tiny held-out split: evaluation needs digits, not MNIST.
const test = Effect.map(
  Dataset.make(new Float32Array(784 * 10).fill(0.5), Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])),
  Workload.evaluationOf,
)

// The server up with c0 and c1 joined, both answering every round honestly; the job and the test split.
const twoHonestClientsUp = Effect.gen(function* () {
  const dataset = yield* test
  const { network, seen } = yield* serverUp
  const job = yield* TrainingJob
  yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
  yield* scriptedClient(network, "c1", 1000, honest(0.3, 100))
  return { dataset, network, seen, job }
})

const sha256 = (model: Float32Array) => createHash("sha256").update(Weights.encode(model)).digest("hex")

const settings = settingsWith({ expectedClients: "2", minClients: "2", rounds: "4" })

const roundRecord = (round: number, model: Float32Array) => ({
  round,
  participants: ["c0", "c1"],
  excluded: [],
  rejectedUpdates: 0,
  modelUpdated: true,
  testAccuracy: 0.5,
  testLoss: 1,
  modelSha256: sha256(model),
  durationMs: 1,
  bytesIn: 0,
  bytesOut: 0,
})

// A job of `settings` that was running when its server died after `rounds` committed rounds; the
// global model of round r is the initial model with every weight shifted by r.
const diedAfter = (rounds: number, state = "running") =>
  Effect.gen(function* () {
    const store = yield* JobStore.JobStore
    const jobId = yield* store.createJob(JobRecord.storedSpecOf(settings), { state: "running" })
    const initial = Model.make(settings.model).init(settings.seed)
    for (let round = 1; round <= rounds; round++) {
      const model = initial.map((w) => w + round)
      yield* store.commitRound(jobId, { round, record: roundRecord(round, model), model: Weights.encode(model) })
    }
    if (state !== "running") yield* store.recordTransition(jobId, "running", state, "as the test left it")
    return { jobId, model: initial.map((w) => w + rounds) }
  })

const moves = (seen: ReadonlyArray<ServerEvent.ServerEvent>) =>
  seen.flatMap((e) => (e._tag === "JobStateChanged" ? [`${e.from}→${e.to}`] : []))

describe("TrainingJob and the state file (TestClock, in-memory transport and store)", () => {
  it.effect(
    "a new job is created, launched (deploy, start) and every round is committed with its model before it is reported",
    () =>
      Effect.gen(function* () {
        const { dataset, seen, job } = yield* twoHonestClientsUp
        const store = yield* JobStore.JobStore
        const report = yield* job.run(dataset)
        const [stored] = yield* store.jobs
        assert.strictEqual(stored?.state, "completed")
        assert.strictEqual(stored?.roundsDone, 4)
        assert.deepStrictEqual(moves(seen), [
          "submitted→deploying",
          "deploying→starting",
          "starting→running",
          "running→completed",
        ])
        assert.deepStrictEqual(
          (yield* store.history(stored!.id)).map((t) => t.to),
          ["submitted", "deploying", "starting", "running", "completed"],
        )
        // The committed model of the last round is the report's final model.
        const latest = Option.getOrThrow(yield* store.latest(stored!.id))
        assert.strictEqual(latest.round, 4)
        assert.strictEqual(latest.sha256, report.finalModelSha256)
        assert.deepStrictEqual(
          report.rounds.map((r) => r.round),
          [1, 2, 3, 4],
        )
        // Only the last K = 2 models are kept; every round record is.
        assert.isTrue(Option.isNone(yield* store.checkpoint(stored!.id, 2)))
        assert.strictEqual((yield* store.rounds(stored!.id)).length, 4)
      }).pipe(withServer(settings)),
  )

  it.effect(
    "a running job resumes after its last committed round, from that round's model, and reports each round once",
    () =>
      Effect.gen(function* () {
        const dataset = yield* test
        const { network, seen } = yield* serverUp
        const job = yield* TrainingJob
        const store = yield* JobStore.JobStore
        const died = yield* diedAfter(2)
        // The models the clients receive: round 3 must start from round 2's committed model.
        const received: Array<[number, string]> = []
        const recording = (delta: number) => (round: number, model: Float32Array) => {
          received.push([round, sha256(model)])
          return honest(delta, 100)(round, model)
        }
        yield* scriptedClient(network, "c0", 1000, recording(0.1))
        yield* scriptedClient(network, "c1", 1000, honest(0.3, 100))
        const report = yield* job.run(dataset)
        const resumed = seen.find((e) => e._tag === "JobResumed")
        assert.deepInclude(resumed, { jobId: died.jobId, afterRound: 2, rounds: 4, modelSha256: sha256(died.model) })
        assert.isFalse(seen.some((e) => e._tag === "JobCreated"))
        assert.deepStrictEqual(
          seen.flatMap((e) => (e._tag === "RoundStarted" ? [e.round] : [])),
          [3, 4],
        )
        assert.deepStrictEqual(received[0], [3, sha256(died.model)])
        assert.deepStrictEqual(
          report.rounds.map((r) => r.round),
          [1, 2, 3, 4],
        )
        assert.deepStrictEqual(moves(seen), ["running→paused", "paused→running", "running→completed"])
        assert.strictEqual((yield* store.job(died.jobId)).state, "completed")
        assert.strictEqual((yield* store.jobs).length, 1)
      }).pipe(withServer(settings)),
  )

  it.effect(
    "after a restart the clients known before still count: one not back is offline in every round and in the report, and is not waited for",
    () =>
      Effect.gen(function* () {
        const { dataset, seen, job } = yield* twoHonestClientsUp
        const store = yield* JobStore.JobStore
        const died = yield* diedAfter(2)
        const client = (id: string, state: string, joinedAt: number) => ({ id, state, joinedAt, lastSeenAt: joinedAt })
        yield* store.upsertClient(died.jobId, "c0", client("c0", "online", 1_000))
        yield* store.upsertClient(died.jobId, "c1", client("c1", "online", 2_000))
        yield* store.upsertClient(died.jobId, "c2", { ...client("c2", "offline", 3_000), offlineAt: 4_000 })
        // Three clients are expected, but only the two that were online when the server died are
        // waited for: no join timeout passes (no virtual time is needed at all).
        const report = yield* job.run(dataset)
        assert.isFalse(seen.some((e) => e._tag === "JoinTimedOut"))
        for (const round of report.rounds.filter((r) => r.round > 2)) {
          assert.deepStrictEqual(round.excluded, [{ id: "c2", reason: "offline" }])
        }
        assert.deepStrictEqual(
          report.clients.map((c) => [c.id, c.state, c.joinedAt]),
          [
            ["c0", "completed", 1_000],
            ["c1", "completed", 2_000],
            ["c2", "offline", 3_000],
          ],
        )
        assert.strictEqual(report.clients[2]?.reason, "not back after the server restarted")
      }).pipe(withServer(settingsWith({ expectedClients: "3", minClients: "2", rounds: "4" }))),
  )

  it.effect("a job that was paused when its server died resumes too (paused → running)", () =>
    Effect.gen(function* () {
      const { dataset, seen, job } = yield* twoHonestClientsUp
      yield* diedAfter(3, "paused")
      const report = yield* job.run(dataset)
      assert.deepStrictEqual(moves(seen), ["paused→running", "running→completed"])
      assert.deepStrictEqual(
        report.rounds.map((r) => r.round),
        [1, 2, 3, 4],
      )
    }).pipe(withServer(settings)),
  )

  it.effect("a completed job is never resumed: a new job starts from round 1", () =>
    Effect.gen(function* () {
      const { dataset, seen, job } = yield* twoHonestClientsUp
      const store = yield* JobStore.JobStore
      const old = yield* diedAfter(4, "completed")
      yield* job.run(dataset)
      assert.isFalse(seen.some((e) => e._tag === "JobResumed"))
      assert.strictEqual(seen.find((e) => e._tag === "RoundStarted")?._tag === "RoundStarted" ? 1 : 0, 1)
      assert.deepStrictEqual((yield* store.jobs).map((j) => [j.id === old.jobId, j.state]).sort(), [
        [false, "completed"],
        [true, "completed"],
      ])
    }).pipe(withServer(settings)),
  )

  it.effect(
    "settings that change the model are refused against a running job, naming each flag and leaving the job as it was",
    () =>
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        const died = yield* diedAfter(2)
        const changed = settingsWith({ expectedClients: "2", minClients: "2", rounds: "6", seed: "7" })
        const error = yield* Effect.flip(JobRecord.plan(changed, { newJob: false }))
        // The usage error the CLI turns into exit 2.
        assert.instanceOf(error, Settings.ConflictingSettings)
        const message = error.message
        assert.match(message, /--rounds 4 \(now 6\)/)
        assert.match(message, /--seed 42 \(now 7\)/)
        assert.match(message, /--new-job/)
        assert.strictEqual((yield* store.job(died.jobId)).state, "running")
        assert.strictEqual((yield* store.jobs).length, 1)
        // Timeouts and ports do not decide the model: a restart may change them.
        const retimed = settingsWith({
          expectedClients: "2",
          minClients: "2",
          rounds: "4",
          roundTimeout: "50s",
          port: "9",
        })
        const plan = yield* JobRecord.plan(retimed, { newJob: false })
        assert.strictEqual(plan.jobId, died.jobId)
      }).pipe(withServer(settings)),
  )

  it.effect(
    "--local-steps decides the model: a job resumes only with the same cap, and one stored without a cap only without one",
    () =>
      Effect.gen(function* () {
        const store = yield* JobStore.JobStore
        // `settings` has no --local-steps: the identity a server before the flag existed stored.
        const died = yield* diedAfter(2)
        const capped = settingsWith({ expectedClients: "2", minClients: "2", rounds: "4", localSteps: "10" })
        const refused = yield* Effect.flip(JobRecord.plan(capped, { newJob: false }))
        assert.instanceOf(refused, Settings.ConflictingSettings)
        assert.match(refused.message, /--local-steps none \(now 10\)/)
        assert.strictEqual((yield* JobRecord.plan(settings, { newJob: false })).jobId, died.jobId)
        // A job started with a cap resumes with the same cap, and is refused without it.
        const cappedJob = yield* JobRecord.plan(capped, { newJob: true })
        yield* store.recordTransition(cappedJob.jobId, "submitted", "running", "as the test left it")
        assert.strictEqual((yield* JobRecord.plan(capped, { newJob: false })).jobId, cappedJob.jobId)
        const uncapped = yield* Effect.flip(JobRecord.plan(settings, { newJob: false }))
        assert.match(uncapped.message, /--local-steps 10 \(now none\)/)
        const other = yield* Effect.flip(
          JobRecord.plan(settingsWith({ expectedClients: "2", minClients: "2", rounds: "4", localSteps: "20" }), {
            newJob: false,
          }),
        )
        assert.match(other.message, /--local-steps 10 \(now 20\)/)
      }).pipe(withServer(settings)),
  )

  it.effect("--new-job aborts the running job (recording why) and starts a new one", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      const died = yield* diedAfter(2)
      const changed = settingsWith({ expectedClients: "2", minClients: "2", rounds: "6" })
      const plan = yield* JobRecord.plan(changed, { newJob: true })
      assert.notStrictEqual(plan.jobId, died.jobId)
      assert.strictEqual(plan.status, "submitted")
      assert.strictEqual((yield* store.job(died.jobId)).state, "aborted")
      assert.strictEqual((yield* store.history(died.jobId)).at(-1)?.reason, "replaced by a new job (--new-job)")
      assert.deepStrictEqual(Option.getOrThrow(plan.replaced), {
        jobId: died.jobId,
        from: "running",
        reason: "replaced by a new job (--new-job)",
      })
    }).pipe(withServer(settings)),
  )

  it.effect("a job still launching when its server died is marked failed and replaced, not resumed", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.JobStore
      const old = yield* store.createJob(JobRecord.storedSpecOf(settings), { state: "deploying" })
      const plan = yield* JobRecord.plan(settings, { newJob: false })
      assert.notStrictEqual(plan.jobId, old)
      assert.strictEqual((yield* store.job(old)).state, "failed")
    }).pipe(withServer(settings)),
  )

  it.effect(
    "fewer clients than --min-clients by the join timeout fail the job at deploy, naming each absent client",
    () =>
      Effect.gen(function* () {
        const dataset = yield* test
        const { network, seen } = yield* serverUp
        const job = yield* TrainingJob
        const store = yield* JobStore.JobStore
        yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
        const running = yield* Effect.forkChild(job.run(dataset))
        yield* settle()
        yield* TestClock.adjust("59 seconds")
        yield* settle()
        assert.isFalse(seen.some((e) => e._tag === "JobStateChanged" && e.to === "failed"))
        yield* TestClock.adjust("1 second")
        const exit = yield* Fiber.await(running)
        assert.isTrue(Exit.isFailure(exit))
        assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /c1: deployment timeout/)
        assert.deepInclude(
          seen.find((e) => e._tag === "ClientNotStarted"),
          { id: "c1", phase: "deploy", reason: "deployment timeout" },
        )
        assert.isFalse(seen.some((e) => e._tag === "RoundStarted"))
        const [stored] = yield* store.jobs
        assert.strictEqual(stored?.state, "failed")
      }).pipe(
        withServer(
          settingsWith({
            expectedClients: "2",
            minClients: "2",
            rounds: "2",
            clientIds: "c0,c1",
            joinTimeout: "60s",
            heartbeatTimeout: "5m",
            roundTimeout: "6m",
          }),
        ),
      ),
  )

  it.effect("a job aborted while it waits for its quorum stops within a second, without waiting for the quorum", () =>
    Effect.gen(function* () {
      const dataset = yield* test
      const { network, seen } = yield* serverUp
      const job = yield* TrainingJob
      const store = yield* JobStore.JobStore
      yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
      // c1 takes the model of round 1 and never answers; it dies mid-round, so round 2 waits for the quorum.
      yield* scriptedClient(network, "c1", 1000, () => [])
      const plan = yield* job.prepare
      const running = yield* Effect.forkChild(job.run(dataset))
      yield* until(seen, (e) => e._tag === "RoundStarted" && e.round === 1)
      yield* network.kill("c1")
      yield* until(seen, (e) => e._tag === "RoundPaused" && e.round === 2)
      yield* store.recordTransition(plan.jobId, "paused", "aborted", "operator")
      yield* TestClock.adjust("999 millis")
      yield* settle()
      assert.isUndefined(running.pollUnsafe())
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(running)
      assert.match(String(Exit.isFailure(exit) ? exit.cause : ""), /aborted in the state file while running/)
      assert.isFalse(seen.some((e) => e._tag === "RoundStarted" && e.round === 2))
    }).pipe(
      withServer(
        settingsWith({
          expectedClients: "2",
          minClients: "2",
          rounds: "4",
          heartbeatTimeout: "20m",
          roundTimeout: "25m",
        }),
      ),
    ),
  )

  it.effect(
    "a resumed job waits for the clients that were online by id (not any two), and records completed only after the farewell",
    () =>
      Effect.gen(function* () {
        const dataset = yield* test
        const { network, seen } = yield* serverUp
        const job = yield* TrainingJob
        const store = yield* JobStore.JobStore
        const died = yield* diedAfter(2)
        const client = (id: string, state: string) => ({ id, state, joinedAt: 1, lastSeenAt: 1 })
        yield* store.upsertClient(died.jobId, "c0", client("c0", "online"))
        yield* store.upsertClient(died.jobId, "c1", client("c1", "online"))
        // c0 and c9 (not online before the restart) come back first: the job waits for c1.
        yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
        yield* scriptedClient(network, "c9", 1000, honest(0.2, 100))
        const running = yield* Effect.forkChild(job.run(dataset))
        yield* TestClock.adjust("30 seconds")
        yield* settle()
        assert.isFalse(seen.some((e) => e._tag === "RoundStarted"))
        yield* scriptedClient(network, "c1", 1000, honest(0.3, 100))
        for (let i = 0; i < 10; i++) {
          yield* TestClock.adjust("20 millis")
          yield* settle()
        }
        const report = yield* Fiber.join(running)
        assert.deepStrictEqual(report.rounds[2]?.participants, ["c0", "c1", "c9"])
        // The farewell (client-left / completed clients) comes before the job is recorded completed.
        const order = seen.flatMap((e) =>
          e._tag === "JobStateChanged" && e.to === "completed"
            ? ["completed"]
            : e._tag === "ClientLeft"
              ? ["left"]
              : [],
        )
        assert.strictEqual(order.at(-1), "completed")
        assert.isAbove(order.indexOf("completed"), 0)
      }).pipe(
        withServer(
          // The scripted clients do not beat: a long heartbeat timeout keeps them online across the wait.
          settingsWith({
            expectedClients: "3",
            minClients: "2",
            rounds: "4",
            heartbeatTimeout: "5m",
            roundTimeout: "6m",
          }),
        ),
      ),
  )

  it.effect("a job aborted in the state file while it runs stops before its next round", () =>
    Effect.gen(function* () {
      const dataset = yield* test
      const { network, seen } = yield* serverUp
      const job = yield* TrainingJob
      const store = yield* JobStore.JobStore
      yield* scriptedClient(network, "c0", 1000, honest(0.1, 100))
      // c1 answers round 1 only: round 2 waits for the round timeout, and the operator aborts meanwhile.
      yield* scriptedClient(network, "c1", 1000, (round, model) => (round === 1 ? honest(0.3, 100)(round, model) : []))
      const plan = yield* job.prepare
      const running = yield* Effect.forkChild(job.run(dataset))
      yield* until(seen, (e) => e._tag === "RoundStarted" && e.round === 2)
      yield* store.recordTransition(plan.jobId, "running", "aborted", "operator")
      yield* TestClock.adjust("30 seconds")
      const exit = yield* Fiber.await(running)
      assert.isTrue(Exit.isFailure(exit))
      assert.match(
        String(Exit.isFailure(exit) ? exit.cause : ""),
        /aborted in the state file while running \(fed-server abort\): stopped after round 1; round 2 ran but was not committed/,
      )
      // Round 2 was under way: it ran to its end, but an aborted job takes no more rounds; round 3 never starts.
      const last = Math.max(...seen.flatMap((e) => (e._tag === "RoundStarted" ? [e.round] : [])))
      assert.strictEqual(last, 2)
      assert.isFalse(seen.some((e) => e._tag === "RoundCompleted" && e.round === 2))
      assert.strictEqual((yield* store.job(plan.jobId)).state, "aborted")
      assert.deepStrictEqual(
        (yield* store.rounds(plan.jobId)).map((r) => r.round),
        [1],
      )
    }).pipe(withServer(settings)),
  )
})

describe("memory cleanup (--memory-cleanup-rounds)", () => {
  it.effect(
    "runs after every N-th committed round, never between, and the report lists each run with its figures",
    () =>
      Effect.gen(function* () {
        const { dataset, seen, job } = yield* twoHonestClientsUp
        const report = yield* job.run(dataset)
        const cleaned = seen.flatMap((e) => (e._tag === "MemoryCleaned" ? [e] : []))
        assert.deepStrictEqual(
          cleaned.map((e) => [e.trigger, e.round]),
          [
            ["rounds", 2],
            ["rounds", 4],
          ],
        )
        // Each run follows its round's completion, and the report holds the same runs.
        const order = seen.flatMap((e) =>
          e._tag === "RoundCompleted" ? [`r${e.round}`] : e._tag === "MemoryCleaned" ? [`c${e.round}`] : [],
        )
        assert.deepStrictEqual(order, ["r1", "r2", "c2", "r3", "r4", "c4"])
        assert.deepStrictEqual(
          report.cleanups?.map((c) => c.round),
          [2, 4],
        )
        for (const run of report.cleanups ?? []) {
          assert.deepStrictEqual(
            run.steps.map((step) => step.name),
            ["gc"],
          )
          assert.isAbove(run.before.rss, 0)
          assert.isAbove(run.after.heapUsed, 0)
        }
      }).pipe(
        withServer(settingsWith({ expectedClients: "2", minClients: "2", rounds: "4", memoryCleanupRounds: "2" })),
      ),
  )

  it.effect("is off by default: no run, and no cleanups in the report", () =>
    Effect.gen(function* () {
      const { dataset, seen, job } = yield* twoHonestClientsUp
      const report = yield* job.run(dataset)
      assert.isFalse(seen.some((e) => e._tag === "MemoryCleaned"))
      assert.isUndefined(report.cleanups)
    }).pipe(withServer(settings)),
  )
})
