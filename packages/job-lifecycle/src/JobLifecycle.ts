/**
 * One federated job from submission to its final state: deploy to its sites
 * and start it under one `QuorumPolicy`, then run ⇄ pause until it
 * completes, fails or is aborted, every state change a `JobTransitioned`
 * and every exclusion a `SiteExcluded` on one event stream.
 *
 * `make` builds the job in `submitted` (subscribe to its events first);
 * `launch` drives it through `deploying` and `starting` to `running`, or to
 * `failed` with the phase's error. `pause`, `resume`, `complete`, `fail` and
 * `abort` are the operator's (and the round loop's) moves; an illegal one
 * fails with `IllegalTransition` and changes nothing. A `fail` or `abort`
 * during `launch` interrupts the phase in flight.
 *
 * @since 0.1.0
 */
import { Deferred, Effect, Metric, PubSub, type Scope, Stream, SynchronizedRef } from "effect"
import { type IllegalTransition, JobEnded, type PhaseFailed } from "./JobError.ts"
import type { JobEvent, JobTransitioned, SiteExcluded } from "./JobEvent.ts"
import * as JobMetrics from "./JobMetrics.ts"
import * as JobPhases from "./JobPhases.ts"
import * as JobSpec from "./JobSpec.ts"
import * as JobState from "./JobState.ts"
import type { JobStatus } from "./JobStatus.ts"
import * as QuorumPolicy from "./QuorumPolicy.ts"
import type { SiteId } from "./SiteId.ts"

/**
 * What the job does at each site: `deploy` it, then `start` it (see
 * `JobPhases.SiteAction` for how replies, refusals and silence count).
 *
 * @since 0.1.0
 * @category models
 */
export interface SiteActions<E = unknown, R = never> {
  readonly deploy: JobPhases.SiteAction<E, R>
  readonly start: JobPhases.SiteAction<E, R>
}

/**
 * Options of a job:
 *
 * - `enrolled`: the sites of an open-enrolment spec (`clients: "open"`;
 *   ignored otherwise);
 * - `strictStart` (default `true`; see `QuorumPolicy`);
 * - `status` (default `"submitted"`): the state the job starts in. A job
 *   restored from a `JobStore` after a restart starts in its stored state
 *   (`running`, `paused`) and is not launched again (`launch` is legal only
 *   from `submitted`);
 * - `onTransition`: runs after each legal move, under the job's lock and
 *   before the event is published, so moves are recorded in the order they
 *   happen (persist them here, e.g. with `JobStore.recordTransition`). It
 *   cannot fail: handle a recording failure inside it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly enrolled?: ReadonlyArray<SiteId> | undefined
  readonly strictStart?: boolean | undefined
  readonly status?: JobStatus | undefined
  readonly onTransition?: ((event: JobTransitioned) => Effect.Effect<void>) | undefined
}

/**
 * How a launch went: the sites running the job, every site excluded on the
 * way (with its phase and reason), and those kept without a start
 * confirmation (`strictStart: false`).
 *
 * @since 0.1.0
 * @category models
 */
export interface LaunchReport {
  readonly participants: ReadonlyArray<SiteId>
  readonly excluded: ReadonlyArray<SiteExcluded>
  readonly unconfirmed: ReadonlyArray<SiteId>
}

/**
 * A job:
 *
 * - `spec`, `policy`, `sites` (what it deploys to);
 * - `status`: its current state;
 * - `launch`: submitted → deploying → starting → running; fails with the
 *   phase's `RequiredSiteFailed` / `QuorumNotMet` (the job is then
 *   `failed`), `JobEnded` when failed or aborted meanwhile, or
 *   `IllegalTransition` when not `submitted`;
 * - `pause`, `resume`, `complete`, `fail`, `abort` (each with a reason);
 * - `events` / `subscribe`: `JobTransitioned` and `SiteExcluded`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Job<R = never> {
  readonly spec: JobSpec.JobSpec
  readonly policy: QuorumPolicy.QuorumPolicy
  readonly sites: ReadonlyArray<SiteId>
  readonly status: Effect.Effect<JobStatus>
  readonly launch: Effect.Effect<LaunchReport, PhaseFailed | JobEnded | IllegalTransition, R>
  readonly pause: (reason: string) => Effect.Effect<void, IllegalTransition>
  readonly resume: (reason: string) => Effect.Effect<void, IllegalTransition>
  readonly complete: (reason: string) => Effect.Effect<void, IllegalTransition>
  readonly fail: (reason: string) => Effect.Effect<void, IllegalTransition>
  readonly abort: (reason: string) => Effect.Effect<void, IllegalTransition>
  readonly events: Stream.Stream<JobEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<JobEvent>, never, Scope.Scope>
}

/**
 * Builds a job in `submitted` whose event hub lives in the caller's Scope.
 * Nothing runs until `launch`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: <E, R>(
  spec: JobSpec.JobSpec,
  actions: SiteActions<E, R>,
  options?: Options,
) => Effect.Effect<Job<R>, never, Scope.Scope> = Effect.fnUntraced(function* <E, R>(
  spec: JobSpec.JobSpec,
  actions: SiteActions<E, R>,
  options: Options = {},
) {
  const policy = QuorumPolicy.fromSpec(spec, { strictStart: options.strictStart })
  const sites = JobSpec.sitesOf(spec, options.enrolled)
  const pubsub = yield* PubSub.unbounded<JobEvent>()
  yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
  const state = yield* SynchronizedRef.make<JobStatus>(options.status ?? "submitted")
  // Completed by an outside `fail` or `abort`, so that a launch in flight stops.
  const stopped = yield* Deferred.make<JobEnded>()

  // The check, the state change and the event happen under the ref's lock: two moves never
  // interleave, and events come in the order the states changed.
  const move = (to: JobStatus, reason: string): Effect.Effect<void, IllegalTransition> =>
    SynchronizedRef.modifyEffect(state, (from) =>
      Effect.gen(function* () {
        const event = yield* Effect.fromResult(JobState.transition(from, to, reason))
        if (options.onTransition !== undefined) yield* options.onTransition(event)
        yield* PubSub.publish(pubsub, event)
        yield* Metric.update(Metric.withAttributes(JobMetrics.transitions, { to }), 1)
        yield* Effect.logDebug(`job ${spec.name}: ${from} → ${to} (${reason})`)
        return [undefined, to] as const
      }),
    )

  const stop = (to: "failed" | "aborted") =>
    Effect.fn(`Job.${to === "failed" ? "fail" : "abort"}`)(function* (reason: string) {
      yield* move(to, reason)
      yield* Deferred.succeed(stopped, new JobEnded({ status: to, reason }))
    })

  const publishExcluded = (excluded: ReadonlyArray<SiteExcluded>) =>
    Effect.forEach(
      excluded,
      (event) =>
        Effect.andThen(
          PubSub.publish(pubsub, event),
          Metric.update(Metric.withAttributes(JobMetrics.sitesExcluded, { phase: event.phase }), 1),
        ),
      { discard: true },
    )

  // A phase's exclusions are published whatever the verdict; a failed verdict fails the job.
  const phase = <X extends { readonly excluded: ReadonlyArray<SiteExcluded> }>(
    run: Effect.Effect<X, PhaseFailed, R>,
  ): Effect.Effect<X, PhaseFailed | IllegalTransition, R> =>
    run.pipe(
      Effect.tap((report) => publishExcluded(report.excluded)),
      Effect.tapError((error) => Effect.andThen(publishExcluded(error.excluded), move("failed", error.message))),
    )

  const drive = Effect.gen(function* () {
    yield* move("deploying", `deploying to ${sites.length} site(s)`)
    const deployed = yield* phase(JobPhases.deploy(policy, sites, actions.deploy, { timeout: spec.deployTimeout }))
    yield* move("starting", `deployed to ${deployed.participants.length} of ${sites.length} site(s)`)
    const started = yield* phase(
      JobPhases.start(policy, deployed.participants, actions.start, { timeout: spec.startTimeout }),
    )
    yield* move("running", `started on ${started.participants.length} of ${sites.length} site(s)`)
    return {
      participants: started.participants,
      excluded: [...deployed.excluded, ...started.excluded],
      unconfirmed: started.unconfirmed,
    } satisfies LaunchReport
  })

  const launch = Effect.raceFirst(
    drive,
    Effect.flatMap(Deferred.await(stopped), (ended) => Effect.fail(ended)),
  ).pipe(Effect.withSpan("Job.launch"))

  return {
    spec,
    policy,
    sites,
    status: SynchronizedRef.get(state),
    launch,
    pause: Effect.fn("Job.pause")((reason: string) => move("paused", reason)),
    resume: Effect.fn("Job.resume")((reason: string) => move("running", reason)),
    complete: Effect.fn("Job.complete")((reason: string) => move("completed", reason)),
    fail: stop("failed"),
    abort: stop("aborted"),
    events: Stream.fromPubSub(pubsub),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  } satisfies Job<R>
})

/**
 * Makes the job and launches it: the running job with its launch report, or
 * the launch's failure (the job is then `failed`). Events published during
 * the launch are not replayed; to see them, `make`, `subscribe`, then
 * `launch`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const run = <E, R>(
  spec: JobSpec.JobSpec,
  actions: SiteActions<E, R>,
  options?: Options,
): Effect.Effect<
  { readonly job: Job<R>; readonly report: LaunchReport },
  PhaseFailed | JobEnded | IllegalTransition,
  R | Scope.Scope
> => Effect.flatMap(make(spec, actions, options), (job) => Effect.map(job.launch, (report) => ({ job, report })))
