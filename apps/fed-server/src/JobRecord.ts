/**
 * What fed-server keeps of a job in the `JobStore`, and how a starting
 * server decides what to run from it:
 *
 * - the stored spec: the job's name, its `JobSpec`, the settings that decide
 *   which model is trained (`identity`), and the report's `config`;
 * - each committed round: its `Report.Round` record and the global model
 *   after it (little-endian float32 bytes, the wire form), in one
 *   transaction;
 * - each client's `Report.Client` record, updated after every round.
 *
 * {@link plan}: a state file without a live job (or `:memory:`) gets a new
 * job; a live job (`running` or `paused`) with the same identity is resumed
 * after its last committed round; a live job with another identity is
 * refused (`ConflictingSettings`, exit 2) unless `--new-job` aborts it. A
 * `completed`, `failed` or `aborted` job is never resumed (NVIDIA FLARE once
 * resumed an aborted job).
 *
 * @since 0.3.0
 */

import { Report, Settings } from "@fedguard/app-kit"
import { Weights } from "@fedguard/federation"
import { JobSpec, type JobStatus, JobStore } from "@fedguard/job-lifecycle"
import { Effect, Option, Schema } from "effect"
import * as ServerSettings from "./ServerSettings.ts"

/**
 * The settings that decide which model a job trains: a restarted server
 * resumes a job only when these are unchanged (timeouts, ports and output
 * files may change between restarts).
 *
 * @since 0.3.0
 * @category models
 */
export const Identity = Schema.Struct({
  jobName: Schema.String,
  model: Schema.String,
  rounds: Schema.Number,
  seed: Schema.Number,
  localEpochs: Schema.Number,
  // Optional: a job stored before --local-steps existed has none, and resumes when none is given.
  localSteps: Schema.optionalKey(Schema.Number),
  batchSize: Schema.Number,
  learningRate: Schema.Number,
  partition: Schema.String,
  minClients: Schema.Number,
  clientIds: Schema.NullOr(Schema.Array(Schema.String)),
})

/**
 * @since 0.3.0
 * @category models
 */
export type Identity = typeof Identity.Type

/**
 * A job as fed-server stores it (`JobStore.Job.spec`).
 *
 * @since 0.3.0
 * @category models
 */
export const StoredSpec = Schema.Struct({
  name: Schema.String,
  spec: Schema.Record(Schema.String, Schema.Json),
  identity: Identity,
  config: Schema.Record(Schema.String, Schema.Json),
})

/**
 * @since 0.3.0
 * @category models
 */
export type StoredSpec = typeof StoredSpec.Type

/**
 * The identity of the job `settings` describe.
 *
 * @since 0.3.0
 * @category constructors
 */
export const identityOf = (settings: ServerSettings.ServerSettings): Identity => ({
  jobName: settings.jobName,
  model: settings.model,
  rounds: settings.rounds,
  seed: settings.seed,
  localEpochs: settings.localEpochs,
  ...(settings.localSteps === undefined ? {} : { localSteps: settings.localSteps }),
  batchSize: settings.batchSize,
  learningRate: settings.learningRate,
  partition: settings.partition,
  minClients: settings.minClients,
  clientIds: settings.clientIds === undefined ? null : [...ServerSettings.clientIdList(settings.clientIds)],
})

/**
 * The job's `JobSpec` from the settings: the client ids (or open
 * enrolment), `minSites` = `--min-clients`, the deploy timeout = the join
 * timeout, the start timeout = the heartbeat timeout, and the round timeout.
 *
 * @since 0.3.0
 * @category constructors
 */
export const jobSpecOf = (settings: ServerSettings.ServerSettings): JobSpec.JobSpec => {
  const timeouts = ServerSettings.timeouts(settings)
  const clientIds = settings.clientIds === undefined ? undefined : ServerSettings.clientIdList(settings.clientIds)
  return Schema.decodeUnknownSync(JobSpec.JobSpec)({
    name: settings.jobName,
    rounds: settings.rounds,
    model: settings.model,
    clients: clientIds === undefined ? "open" : [...new Set(clientIds)],
    minSites: settings.minClients,
    deployTimeout: timeouts.joinTimeout,
    startTimeout: timeouts.heartbeatTimeout,
    roundTimeout: timeouts.roundTimeout,
    seed: settings.seed,
  })
}

/**
 * The stored form of the job `settings` describe.
 *
 * @since 0.3.0
 * @category constructors
 */
export const storedSpecOf = (settings: ServerSettings.ServerSettings): StoredSpec => ({
  name: settings.jobName,
  spec: Schema.encodeSync(JobSpec.JobSpec)(jobSpecOf(settings)) as Record<string, Schema.Json>,
  identity: identityOf(settings),
  config: ServerSettings.reportConfig(settings),
})

const decodeStored = Schema.decodeUnknownOption(StoredSpec)
const decodeRound = Schema.decodeUnknownEffect(Report.Round)
const decodeClient = Schema.decodeUnknownOption(Report.Client)

const shown = (value: unknown) => (value === undefined ? "none" : JSON.stringify(value))

/**
 * The settings that differ between a stored identity and the given one, as
 * `--flag stored (now given)`; an optional setting set on one side only
 * differs too (`--local-steps 20 (now none)`).
 *
 * @since 0.3.0
 * @category comparing
 */
export const differences = (stored: Identity, given: Identity): ReadonlyArray<string> =>
  ([...new Set([...Object.keys(given), ...Object.keys(stored)])] as Array<keyof Identity>)
    .filter((key) => JSON.stringify(stored[key]) !== JSON.stringify(given[key]))
    .map((key) => `${Settings.names(key, "").flag} ${shown(stored[key])} (now ${shown(given[key])})`)

/**
 * What a starting server runs: the job's id and status, and, when it
 * resumes, the last committed round with its global model.
 *
 * @since 0.3.0
 * @category models
 */
export interface Plan {
  readonly jobId: string
  readonly spec: JobSpec.JobSpec
  /** `submitted` for a new job; `running` or `paused` for a resumed one. */
  readonly status: JobStatus.JobStatus
  readonly resumed: Option.Option<{ readonly round: number; readonly model: Float32Array; readonly sha256: string }>
  /** The client records of a resumed job, as its last round left them (none for a new job). */
  readonly clients: ReadonlyArray<typeof Report.Client.Type>
  /** The running job a new job replaced (`--new-job`), now `aborted`. */
  readonly replaced: Option.Option<{ readonly jobId: string; readonly from: string; readonly reason: string }>
}

const live: ReadonlyArray<string> = ["running", "paused"]
const replacedReason = "replaced by a new job (--new-job)"
const launching: ReadonlyArray<string> = ["submitted", "deploying", "starting"]

/**
 * Decides what a server started with `settings` runs (see the module
 * documentation). A job that was still launching when its server stopped
 * (`submitted`, `deploying`, `starting`: no round ran) is marked `failed`
 * and a new job with the current settings replaces it.
 *
 * @since 0.3.0
 * @category planning
 */
export const plan = Effect.fnUntraced(function* (
  settings: ServerSettings.ServerSettings,
  options: { readonly newJob: boolean },
) {
  const store = yield* JobStore.JobStore
  const given = identityOf(settings)
  const jobs = [...(yield* store.jobs)].sort((a, b) => b.updatedAt - a.updatedAt)
  for (const job of jobs.filter((job) => launching.includes(job.state))) {
    yield* store
      .recordTransition(job.id, job.state, "failed", `the server stopped while the job was ${job.state}`)
      .pipe(Effect.catchTag("TransitionConflict", () => Effect.void))
  }
  const current = jobs.find((job) => live.includes(job.state))
  if (current !== undefined) {
    const stored = decodeStored(current.spec)
    const differ = Option.match(stored, {
      onNone: () => ["the stored job was not written by fed-server"],
      onSome: (spec) => differences(spec.identity, given),
    })
    if (differ.length === 0 && !options.newJob) {
      const latest = yield* store.latest(current.id)
      const resumed = Option.isNone(latest)
        ? Option.none()
        : Option.some({
            round: latest.value.round,
            model: yield* Weights.decode(latest.value.model),
            sha256: latest.value.sha256,
          })
      return {
        jobId: current.id,
        spec: jobSpecOf(settings),
        status: current.state as JobStatus.JobStatus,
        resumed,
        clients: (yield* store.clients(current.id)).flatMap((row) => Option.toArray(decodeClient(row.record))),
        replaced: Option.none(),
      } satisfies Plan
    }
    if (!options.newJob) {
      return yield* new Settings.ConflictingSettings({
        keys: ["state"],
        rule: `${settings.state} holds ${current.state} job ${current.id} ("${current.name}", ${current.roundsDone} of its rounds committed) started with other settings: ${differ.join(", ")}; restart with the same settings to resume it, pass --new-job to abort it and start a new job, or use another --state file`,
      })
    }
    yield* store.recordTransition(current.id, current.state, "aborted", replacedReason)
  }
  const jobId = yield* store.createJob(storedSpecOf(settings))
  return {
    jobId,
    spec: jobSpecOf(settings),
    status: "submitted",
    resumed: Option.none(),
    clients: [],
    replaced:
      current === undefined
        ? Option.none()
        : Option.some({ jobId: current.id, from: current.state, reason: replacedReason }),
  } satisfies Plan
})

/**
 * Every committed round of a job, oldest first, as report records.
 *
 * @since 0.3.0
 * @category reading
 */
export const roundsOf = Effect.fnUntraced(function* (jobId: string) {
  const store = yield* JobStore.JobStore
  const rows = yield* store.rounds(jobId)
  return yield* Effect.forEach(rows, (row) =>
    decodeRound(row.record).pipe(
      Effect.mapError(
        (error) =>
          new JobStore.StoreFailure({
            path: "state file",
            operation: `reading the record of round ${row.round} of job ${jobId}`,
            cause: error.message,
          }),
      ),
    ),
  )
})

/**
 * A job's report from the store alone (`fed-server report`): its stored
 * config, every committed round, the client records of its last round, and
 * the final (or, for a job still running, the latest) accuracy and model
 * hash. `None` when the job committed no round yet.
 *
 * @since 0.3.0
 * @category reading
 */
export const reportOf = Effect.fnUntraced(function* (jobId: string) {
  const store = yield* JobStore.JobStore
  const job = yield* store.job(jobId)
  const rounds = yield* roundsOf(jobId)
  const clients = (yield* store.clients(jobId)).flatMap((row) => Option.toArray(decodeClient(row.record)))
  const last = rounds.at(-1)
  const config = Option.match(decodeStored(job.spec), { onNone: () => ({}), onSome: (spec) => spec.config })
  return {
    job: { id: job.id, name: job.name, state: job.state, roundsDone: job.roundsDone },
    report:
      last === undefined
        ? Option.none()
        : Option.some({
            config,
            rounds,
            clients,
            finalAccuracy: last.testAccuracy,
            finalModelSha256: last.modelSha256,
          } satisfies Report.Report),
  }
})
