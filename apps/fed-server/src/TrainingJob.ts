/**
 * A whole training job, run as a `@fedguard/job-lifecycle` job whose every
 * round is durable:
 *
 * - **new job**: wait for the expected clients (at most the join timeout),
 *   then launch it: deploy (a client that has not joined failed to deploy,
 *   `deployment timeout`; NVIDIA FLARE's PR #4209 lesson: a timeout is a
 *   failure, not a success), start (a client gone again is excluded, `start
 *   timeout`), both under the `QuorumPolicy` (`--min-clients`): below it the
 *   job fails, naming each client's reason;
 * - **resumed job** (its server was killed): `running → paused` while the
 *   clients rejoin, then `paused → running` from the round after the last
 *   committed one, with that round's global model;
 * - **rounds**: while the quorum holds (pausing below it: `running ⇄
 *   paused`); each round's record and new global model commit in ONE
 *   transaction before `RoundCompleted` is published, so a round is in the
 *   report exactly once whatever instant the server dies;
 * - **end**: `completed`, the farewell, and the report built from the store
 *   (every committed round, resumed or not).
 *
 * A round starts only with at least one participant, so an empty round never
 * runs and never counts toward `rounds`. A job aborted in the store by an
 * operator (`fed-server abort`) while it runs stops before its next round.
 *
 * @since 0.2.0
 */

import { createHash } from "node:crypto"
import { Memory, Protocol, type Report, Settings } from "@fedguard/app-kit"
import { Weights, Workload } from "@fedguard/federation"
import type { LivenessTracker } from "@fedguard/heartbeat"
import { type JobError, type JobEvent, JobLifecycle, JobStatus, JobStore } from "@fedguard/job-lifecycle"
import { MemoryCleanup, type MemoryCleanupEvent } from "@fedguard/memory-cleanup"
import { Context, Effect, Layer, Option, Ref, Schema, Stream } from "effect"
import { ClientDirectory } from "./ClientDirectory.ts"
import { ClientLiveness } from "./ClientLiveness.ts"
import { byId } from "./internal/byId.ts"
import * as JobRecord from "./JobRecord.ts"
import { RoundCoordinator } from "./RoundCoordinator.ts"
import * as RoundState from "./RoundState.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"
import * as ServerSettings from "./ServerSettings.ts"

/**
 * The job did not complete: its launch missed the quorum (`reason` names
 * each client's), it was aborted in the state file by an operator, or the
 * state file failed.
 *
 * @since 0.3.0
 * @category errors
 */
export class JobFailed extends Schema.TaggedError<JobFailed>()("JobFailed", {
  jobId: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `job ${this.jobId}: ${this.reason}`
  }
}

/**
 * `prepare` decides what to run from the state file (see `JobRecord.plan`;
 * run it before listening, so conflicting settings are refused before any
 * client connects). `run` runs it, evaluating each round's model with `evaluation`
 * (`Workload.evaluationOf(test)` for MNIST's held-out split), and returns
 * the report's rounds, clients and final accuracy (the caller adds the
 * configuration).
 *
 * @since 0.2.0
 * @category services
 */
export class TrainingJob extends Context.Service<
  TrainingJob,
  {
    readonly prepare: Effect.Effect<JobRecord.Plan, Settings.ConflictingSettings | JobFailed>
    readonly run: (
      evaluation: Workload.Evaluation,
    ) => Effect.Effect<Omit<Report.Report, "config">, Settings.ConflictingSettings | JobFailed>
  }
>()("@fedguard/fed-server/TrainingJob") {}

/**
 * Options: `newJob` (`--new-job`: abort the state file's running job and
 * start a new one).
 *
 * @since 0.3.0
 * @category models
 */
export interface Options {
  readonly newJob?: boolean | undefined
}

// Why a known client is not in a round it could have been in.
const absenceReason: Record<LivenessTracker.ClientState, string> = {
  registered: "not-joined",
  "never-joined": "never-joined",
  offline: "offline",
  // Alive but without a session (its join was still in progress when the round started).
  online: "offline",
}

// The model's fingerprint: SHA-256 of its little-endian float32 bytes (the wire form).
const sha256 = (model: Float32Array) => createHash("sha256").update(Weights.encode(model)).digest("hex")

type StoreError = JobStore.StoreFailure | JobStore.JobNotFound | JobStore.CheckpointCorrupt

const storeFailed = (jobId: string) => (error: StoreError | JobStore.RoundAlreadyCommitted | { message: string }) =>
  new JobFailed({ jobId, reason: `state file: ${error.message}` })

// What the job's steps share: its settings and the server's services.
interface Deps {
  readonly settings: ServerSettings.ServerSettings
  readonly liveness: ClientLiveness["Service"]
  readonly directory: ClientDirectory["Service"]
  readonly coordinator: RoundCoordinator["Service"]
  readonly events: ServerEvents["Service"]
  readonly store: JobStore.JobStore["Service"]
  readonly cleanup: MemoryCleanup.MemoryCleanup["Service"]
  /** Every cleanup run so far, for the report. */
  readonly cleanups: Ref.Ref<ReadonlyArray<typeof Memory.CleanupRecord.Type>>
  /** The first global model of a new job (the `Workload`'s, seeded with the settings' seed). */
  readonly initial: () => Float32Array
  readonly joinTimeout: number
}

// Waits for `expected` clients (by default the expected clients), at most the join timeout;
// whether they all came.
const awaitExpected = (d: Deps, expected = d.settings.expectedClients) =>
  Effect.gen(function* () {
    const { liveness, events, joinTimeout } = d
    const joined = yield* liveness
      .awaitAlive(expected)
      .pipe(Effect.timeoutOption(joinTimeout), Effect.map(Option.isSome))
    if (!joined) {
      yield* events.publish(new ServerEvent.JoinTimedOut({ online: yield* liveness.aliveCount, expected }))
    }
    return joined
  })

// Waits until every client of `ids` is alive and holds a session (at most the join timeout), and
// at least the quorum is; says so when the timeout passes first.
const awaitClients = (d: Deps, ids: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const { settings, liveness, directory, events, joinTimeout } = d
    const back = Effect.gen(function* () {
      while (true) {
        const alive = new Set<string>(yield* liveness.alive)
        const sessions = new Set((yield* directory.sessions).map((session) => session.id))
        if (ids.every((id) => alive.has(id) && sessions.has(id)) && alive.size >= settings.minClients) return
        yield* Effect.sleep("20 millis")
      }
    })
    const joined = yield* back.pipe(Effect.timeoutOption(joinTimeout), Effect.map(Option.isSome))
    if (!joined) {
      yield* events.publish(new ServerEvent.JoinTimedOut({ online: yield* liveness.aliveCount, expected: ids.length }))
    }
  })

const lifecycleOf = (d: Deps, plan: JobRecord.Plan, enrolled: ReadonlyArray<string>, allJoined: boolean) => {
  const { settings, liveness, directory, events, store } = d
  return JobLifecycle.make(
    plan.spec,
    {
      // Deployed: joined and welcomed (the welcome carries the job's configuration).
      deploy: (site) =>
        Effect.flatMap(directory.current(site), (session) =>
          Option.isSome(session)
            ? Effect.void
            : Effect.fail(
                allJoined
                  ? `not joined when the ${settings.expectedClients} expected clients were in`
                  : "deployment timeout",
              ),
        ),
      // Started: still holding a session and alive when the job starts (one that dropped since
      // its join gets the start timeout to come back).
      start: (site) =>
        Effect.gen(function* () {
          while (true) {
            const alive = yield* liveness.alive
            if (alive.includes(site) && Option.isSome(yield* directory.current(site))) return
            yield* Effect.sleep("10 millis")
          }
        }),
    },
    {
      enrolled,
      status: plan.status,
      onTransition: (event) =>
        Effect.andThen(
          store
            .recordTransition(plan.jobId, event.from, event.to, event.reason)
            .pipe(
              Effect.catch((error) =>
                Effect.logWarning(`job ${plan.jobId}: ${event.from} → ${event.to} not recorded: ${error.message}`),
              ),
            ),
          events.publish(
            new ServerEvent.JobStateChanged({
              jobId: plan.jobId,
              from: event.from,
              to: event.to,
              reason: event.reason,
            }),
          ),
        ),
    },
  )
}

// A new job: the join wait, then deploy and start under the quorum policy.
const launch = Effect.fnUntraced(function* (d: Deps, plan: JobRecord.Plan) {
  const { settings, directory, events } = d
  yield* events.publish(
    new ServerEvent.JobCreated({
      jobId: plan.jobId,
      name: plan.spec.name,
      rounds: plan.spec.rounds,
      state: settings.state,
    }),
  )
  if (Option.isSome(plan.replaced)) {
    const { jobId, from, reason } = plan.replaced.value
    yield* events.publish(new ServerEvent.JobStateChanged({ jobId, from, to: "aborted", reason }))
  }
  const allJoined = yield* awaitExpected(d)
  const enrolled = (yield* directory.sessions).map((session) => session.id).sort()
  const job = yield* lifecycleOf(d, plan, enrolled, allJoined)
  // Every exclusion is said, whether the launch goes on without the client or fails.
  const notStarted = (excluded: ReadonlyArray<JobEvent.SiteExcluded>) =>
    Effect.forEach(
      excluded,
      (event) =>
        events.publish(new ServerEvent.ClientNotStarted({ id: event.site, phase: event.phase, reason: event.reason })),
      { discard: true },
    )
  yield* job.launch.pipe(
    Effect.tap((report) => notStarted(report.excluded)),
    Effect.tapError((error) => ("excluded" in error ? notStarted(error.excluded) : Effect.void)),
    Effect.mapError(
      (error: JobError.PhaseFailed | JobError.JobEnded | JobError.IllegalTransition) =>
        new JobFailed({ jobId: plan.jobId, reason: error.message }),
    ),
  )
  return job
})

// A resumed job: paused while its clients rejoin, then running again.
const resume = Effect.fnUntraced(function* (d: Deps, plan: JobRecord.Plan) {
  const { liveness, events } = d
  const afterRound = Option.match(plan.resumed, { onNone: () => 0, onSome: (r) => r.round })
  yield* events.publish(
    new ServerEvent.JobResumed({
      jobId: plan.jobId,
      name: plan.spec.name,
      afterRound,
      rounds: plan.spec.rounds,
      modelSha256: Option.match(plan.resumed, {
        onNone: () => sha256(d.initial()),
        onSome: (r) => r.sha256,
      }),
    }),
  )
  const job = yield* lifecycleOf(d, plan, [], true)
  const illegal = (error: JobError.IllegalTransition) => new JobFailed({ jobId: plan.jobId, reason: error.message })
  if (plan.status === "running") {
    yield* job
      .pause(`the server restarted after round ${afterRound}; waiting for clients`)
      .pipe(Effect.mapError(illegal))
  }
  // The clients that were online when the last round committed come back by themselves: the job
  // goes on once each of them is back (by id, so the same participants train the next round as
  // would have without the restart), or at the join timeout. One already gone is not waited for.
  // Before any commit no client is known: the expected clients are waited for, as at launch.
  const wereOnline = plan.clients.filter((client) => client.state === "online").map((client) => client.id)
  if (wereOnline.length === 0) yield* awaitExpected(d)
  else yield* awaitClients(d, wereOnline)
  yield* job
    .resume(`resumed after round ${afterRound} with ${yield* liveness.aliveCount} client(s)`)
    .pipe(Effect.mapError(illegal))
  return job
})

// -- the rounds, committed one by one ---------------------------------------------------------

function rounds(d: Deps, plan: JobRecord.Plan, job: JobLifecycle.Job, evaluation: Workload.Evaluation) {
  const { settings, store, events } = d
  // The starting point is read here, outside the generator: a value a generator's frame holds
  // (a parameter it mentions, or a local of the caller's generator) stays alive for the whole job,
  // and the initial model, one model size, did. (A resumed job's first model is also in
  // `plan.resumed`, which the job keeps.)
  const start = Option.match(plan.resumed, {
    onNone: () => ({ round: 0, model: d.initial() }),
    onSome: (resumed) => resumed,
  })
  let global = start.model
  const firstRound = start.round + 1
  return Effect.gen(function* () {
    for (let round = firstRound; round <= settings.rounds; round++) {
      const stored = yield* store.job(plan.jobId).pipe(Effect.mapError(storeFailed(plan.jobId)))
      if (JobStatus.isTerminal(stored.state as JobStatus.JobStatus)) return yield* stop(d, plan, stored.state)
      const participants = yield* participantsOf(d, plan, round, job)
      const record = yield* runRound(d, plan, round, participants, global, evaluation)
      // A job aborted while its round ran: the round is not committed (the store refuses it).
      const committed = yield* store
        .commitRound(plan.jobId, { round, record: record.record, model: Weights.encode(record.global) })
        .pipe(
          Effect.as(true),
          Effect.catchTag("JobFinished", () => Effect.succeed(false)),
          Effect.mapError(storeFailed(plan.jobId)),
        )
      if (!committed) return yield* stop(d, plan, "aborted", round)
      global = record.global
      yield* saveClients(d, plan, new Set())
      yield* events.publish(new ServerEvent.RoundCompleted(record.record))
      const cleaned = yield* d.cleanup.roundCompleted(round)
      if (Option.isSome(cleaned)) yield* cleanedUp(d, cleaned.value)
    }
    return global
  })
}

// A memory cleanup ran: said, and kept for the report.
function cleanedUp(d: Deps, event: MemoryCleanupEvent.CleanupCompleted) {
  const record = Memory.recordOf(event)
  return Effect.andThen(
    Ref.update(d.cleanups, (all) => [...all, record]),
    d.events.publish(new ServerEvent.MemoryCleaned(record)),
  )
}

// Fails (through `stop`) once the job is finished in the state file; checked every second.
function endedInStore(d: Deps, plan: JobRecord.Plan) {
  return Effect.gen(function* () {
    while (true) {
      yield* Effect.sleep("1 second")
      const stored = yield* d.store.job(plan.jobId).pipe(Effect.mapError(storeFailed(plan.jobId)))
      if (JobStatus.isTerminal(stored.state as JobStatus.JobStatus)) return yield* stop(d, plan, stored.state)
    }
  })
}

// The job ended in the state file while it ran (`fed-server abort`): say farewell with what was
// committed, and fail. `discarded`: the round that ran but was not committed.
function stop(d: Deps, plan: JobRecord.Plan, state: string, discarded?: number) {
  return Effect.gen(function* () {
    const done = yield* JobRecord.roundsOf(plan.jobId).pipe(
      Effect.provideService(JobStore.JobStore, d.store),
      Effect.mapError(storeFailed(plan.jobId)),
    )
    yield* farewell(d, done.length, done.at(-1)?.testAccuracy ?? 0)
    const tail = discarded === undefined ? "" : `; round ${discarded} ran but was not committed`
    return yield* new JobFailed({
      jobId: plan.jobId,
      reason: `${state} in the state file while running (fed-server abort): stopped after round ${done.at(-1)?.round ?? 0}${tail}`,
    })
  })
}

// Participants: alive for the tracker and holding a session. Below the quorum, or with no one
// to train, the round waits (and says so, and the job is paused) instead of running empty.
function participantsOf(d: Deps, plan: JobRecord.Plan, round: number, job: JobLifecycle.Job) {
  const { settings, liveness, directory, events } = d
  return Effect.gen(function* () {
    while (true) {
      const online = yield* liveness.aliveCount
      if (online < settings.minClients) {
        yield* events.publish(new ServerEvent.RoundPaused({ round, online, minClients: settings.minClients }))
        yield* job.pause(`${online} of ${settings.minClients} clients online before round ${round}`).pipe(Effect.ignore)
        // An operator may abort the job while it waits for its quorum: the state file is read every
        // second meanwhile, so the wait ends then too.
        yield* Effect.raceFirst(liveness.awaitAlive(settings.minClients), endedInStore(d, plan))
        continue
      }
      const alive = new Set(yield* liveness.alive)
      const participants = (yield* directory.sessions).filter((s) => alive.has(s.id)).map((s) => s.id)
      if (participants.length > 0) {
        if ((yield* job.status) === "paused") yield* job.resume(`quorum holds for round ${round}`).pipe(Effect.ignore)
        return participants
      }
      // Alive but not yet admitted (a join in progress): look again shortly.
      yield* Effect.sleep("10 millis")
    }
  })
}

function runRound(
  d: Deps,
  plan: JobRecord.Plan,
  round: number,
  participants: ReadonlyArray<string>,
  global: Float32Array,
  evaluation: Workload.Evaluation,
) {
  const { settings, liveness, coordinator, events } = d
  return Effect.gen(function* () {
    // Every known client accounts for the round: those not taking part were offline (or never
    // joined) when it started.
    const snapshot = yield* liveness.snapshot
    const seen = new Set<string>(snapshot.map((client) => client.id))
    const absent = [
      ...snapshot
        .filter((client) => !participants.includes(client.id))
        .map((client) => ({ id: client.id, reason: absenceReason[client.state] })),
      // Known before the server restarted and not back since.
      ...plan.clients.filter((client) => !seen.has(client.id)).map((client) => ({ id: client.id, reason: "offline" })),
    ]
    yield* events.publish(new ServerEvent.RoundStarted({ round, participants }))
    const outcome = yield* coordinator.run(round, global, participants)
    const evaluated = evaluation.evaluate(settings.model, outcome.global)
    const record: typeof Report.Round.Type = {
      round,
      participants: outcome.state.accepted.map((update) => update.id).sort(),
      excluded: [
        ...absent,
        ...outcome.state.excluded.map(({ id, reason }) => ({ id, reason: RoundState.reasonText(reason) })),
      ].sort(byId),
      rejectedUpdates: outcome.state.rejectedUpdates,
      modelUpdated: outcome.modelUpdated,
      testAccuracy: evaluated.accuracy,
      testLoss: evaluated.loss,
      modelSha256: sha256(outcome.global),
      durationMs: outcome.durationMs,
      bytesIn: outcome.bytesIn,
      bytesOut: outcome.bytesOut,
    }
    return { record, global: outcome.global }
  })
}

// Every client as the report shows it (`completed` for those still connected at the end). After a
// restart, a client known before keeps its first `joinedAt`, and one not back since is `offline`.
function clientRecords(d: Deps, plan: JobRecord.Plan, completed: ReadonlySet<string>) {
  const { liveness } = d
  const before = new Map(plan.clients.map((client) => [client.id, client]))
  return Effect.map(liveness.snapshot, (snapshot): Array<typeof Report.Client.Type> => {
    const seen = new Set<string>(snapshot.map((client) => client.id))
    return [
      ...snapshot.map((client) => ({
        id: client.id,
        state: completed.has(client.id) ? "completed" : client.state,
        joinedAt: before.get(client.id)?.joinedAt ?? client.joinedAt ?? null,
        lastSeenAt: client.lastSeenAt ?? null,
        ...(client.offlineAt === undefined ? {} : { offlineAt: client.offlineAt }),
        ...(client.reason === undefined ? {} : { reason: client.reason }),
      })),
      ...plan.clients
        .filter((client) => !seen.has(client.id))
        .map((client) => ({
          ...client,
          state: client.state === "completed" ? client.state : "offline",
          reason: client.reason ?? "not back after the server restarted",
        })),
    ].sort(byId)
  })
}

function saveClients(d: Deps, plan: JobRecord.Plan, completed: ReadonlySet<string>) {
  const { store } = d
  return Effect.flatMap(clientRecords(d, plan, completed), (clients) =>
    Effect.forEach(clients, (client) => store.upsertClient(plan.jobId, client.id, client), { discard: true }),
  ).pipe(Effect.mapError(storeFailed(plan.jobId)))
}

// The farewell, then a graceful close: the close is flushed after the farewell, so the process
// may exit without cutting either off.
function farewell(d: Deps, roundsDone: number, finalAccuracy = 0) {
  const { liveness, directory } = d
  return Effect.gen(function* () {
    yield* liveness.complete
    const message: Protocol.Message = { _tag: "training-completed", finalAccuracy, rounds: roundsDone }
    const sessions = yield* directory.sessions
    yield* Effect.forEach(
      sessions,
      (session) =>
        session.connection
          .send(Protocol.toEnvelope(message))
          .pipe(Effect.ignore, Effect.andThen(session.connection.close("training completed"))),
      { concurrency: "unbounded", discard: true },
    )
    return new Set(sessions.map((session) => session.id))
  })
}

function finish(d: Deps, plan: JobRecord.Plan, job: JobLifecycle.Job, global: Float32Array) {
  const { settings, events, store } = d
  return Effect.gen(function* () {
    const rounds = yield* JobRecord.roundsOf(plan.jobId).pipe(
      Effect.provideService(JobStore.JobStore, store),
      Effect.mapError(storeFailed(plan.jobId)),
    )
    const finalAccuracy = rounds.at(-1)?.testAccuracy ?? 0
    // The farewell first, then `completed`: a server killed between the two restarts on a job with
    // every round committed, and says farewell again, instead of starting a new job for clients
    // still waiting for the end of this one.
    const completed = yield* farewell(d, rounds.length, finalAccuracy)
    yield* saveClients(d, plan, completed)
    yield* job.complete(`all ${settings.rounds} rounds committed`).pipe(Effect.ignore)
    yield* events.publish(new ServerEvent.TrainingCompleted({ finalAccuracy, rounds: rounds.length }))
    const clients = yield* clientRecords(d, plan, completed)
    const cleanups = yield* Ref.get(d.cleanups)
    // Cleanups are this process's (not kept in the state file): listed only when there were some.
    return {
      rounds,
      clients,
      finalAccuracy,
      finalModelSha256: sha256(global),
      ...(cleanups.length === 0 ? {} : { cleanups }),
    }
  })
}
/**
 * Builds the job.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (settings: ServerSettings.ServerSettings, options: Options = {}) {
  const workload = yield* Workload.Workload
  const d: Deps = {
    settings,
    liveness: yield* ClientLiveness,
    directory: yield* ClientDirectory,
    coordinator: yield* RoundCoordinator,
    events: yield* ServerEvents,
    store: yield* JobStore.JobStore,
    cleanup: yield* MemoryCleanup.MemoryCleanup,
    cleanups: yield* Ref.make<ReadonlyArray<typeof Memory.CleanupRecord.Type>>([]),
    initial: () => workload.init(settings.model, settings.seed),
    joinTimeout: ServerSettings.timeouts(settings).joinTimeout,
  }
  const prepare = yield* Effect.cached(
    JobRecord.plan(settings, { newJob: options.newJob === true }).pipe(
      Effect.provideService(JobStore.JobStore, d.store),
      Effect.catch((error) =>
        Effect.fail(
          error instanceof Settings.ConflictingSettings
            ? error
            : new JobFailed({ jobId: "?", reason: `state file ${settings.state}: ${error.message}` }),
        ),
      ),
    ),
  )

  return TrainingJob.of({
    prepare,
    run: Effect.fn("TrainingJob.run")(function* (evaluation: Workload.Evaluation) {
      const plan = yield* prepare
      // Threshold runs happen on their own schedule; round runs are reported where they happen.
      const runs = yield* d.cleanup.subscribe
      yield* Effect.forkScoped(
        Stream.runForEach(runs, (event) => (event.trigger === "rounds" ? Effect.void : cleanedUp(d, event))),
      )
      const job = plan.status === "submitted" ? yield* launch(d, plan) : yield* resume(d, plan)
      const global = yield* rounds(d, plan, job, evaluation)
      return yield* finish(d, plan, job, global)
    }, Effect.scoped),
  })
})

/**
 * The job as a Layer.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  settings: ServerSettings.ServerSettings,
  options: Options = {},
): Layer.Layer<
  TrainingJob,
  never,
  ClientLiveness | ClientDirectory | RoundCoordinator | ServerEvents | JobStore.JobStore | MemoryCleanup.MemoryCleanup
> => Layer.effect(TrainingJob, make(settings, options))
