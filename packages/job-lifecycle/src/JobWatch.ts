/**
 * Which sites are running a job, with the dead-job notice debounced: a site
 * is reported dead for a job (`SiteDied`) only after it was seen running
 * that job at least once.
 *
 * FLARE's PR #4209 found the server declaring a job dead on a client that
 * had simply not reported yet: "not running" from a site that never ran the
 * job is not a death. Here it is a different fact with its own clock: a site
 * not seen running within the start timeout (counted from `make`) is
 * `SiteNeverStarted`, once; a site seen running and then reported gone is
 * `SiteDied`, once per run (it may start again and die again).
 *
 * States per site: `waiting` → `running` → `dead` → `running`…; `waiting` →
 * `never-started` after the start timeout → `running` on a late start.
 *
 * @since 0.1.0
 */
import { Clock, Duration, Effect, Metric, PubSub, Ref, type Scope, Stream } from "effect"
import { SiteDied, SiteNeverStarted } from "./JobEvent.ts"
import * as JobMetrics from "./JobMetrics.ts"
import type { SiteId } from "./SiteId.ts"

/**
 * A site's state in the watch; see the module documentation.
 *
 * @since 0.1.0
 * @category models
 */
export type SiteStatus = "waiting" | "running" | "dead" | "never-started"

/**
 * What a watch publishes.
 *
 * @since 0.1.0
 * @category events
 */
export type WatchEvent = SiteDied | SiteNeverStarted

/**
 * Options of a watch: `startTimeout` (default 60 s, the `JobSpec` default),
 * counted from `make`, after which a site never seen running is
 * `SiteNeverStarted`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly startTimeout?: Duration.Input | undefined
}

/**
 * A running watch of one job's sites:
 *
 * - `reportRunning(site)`: the site says (a heartbeat, a status reply) it
 *   runs the job.
 * - `reportGone(site, reason)`: the site says it does not run the job, or it
 *   was declared gone (offline, connection closed). `SiteDied` only if it was
 *   running; otherwise nothing (it may not have started yet).
 * - `status(site)`: its state, `undefined` for a site not watched (reports
 *   of such sites are ignored).
 * - `events` / `subscribe`: `SiteDied` and `SiteNeverStarted` as a Stream.
 *
 * @since 0.1.0
 * @category models
 */
export interface JobWatch {
  readonly reportRunning: (site: SiteId) => Effect.Effect<void>
  readonly reportGone: (site: SiteId, reason: string) => Effect.Effect<void>
  readonly status: (site: SiteId) => Effect.Effect<SiteStatus | undefined>
  readonly events: Stream.Stream<WatchEvent>
  readonly subscribe: Effect.Effect<Stream.Stream<WatchEvent>, never, Scope.Scope>
}

interface Entry {
  readonly status: SiteStatus
  readonly lastSeenAt: number
}

/**
 * Watches `sites` from now: the start-timeout fiber and the event hub live in
 * the caller's Scope (the job's), and closing it ends the event streams.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { JobWatch } from "@fedguard/job-lifecycle"
 * const program = Effect.scoped(Effect.gen(function* () {
 *   const watch = yield* JobWatch.make(["site-1", "site-2"], { startTimeout: "2 minutes" })
 *   yield* watch.reportGone("site-2", "job not running") // no SiteDied: never seen running
 * }))
 * ```
 *
 * @since 0.1.0
 * @category constructors
 */
export const make: (sites: ReadonlyArray<SiteId>, options?: Options) => Effect.Effect<JobWatch, never, Scope.Scope> =
  Effect.fnUntraced(function* (sites: ReadonlyArray<SiteId>, options: Options = {}) {
    const startTimeout = Duration.fromInputUnsafe(options.startTimeout ?? "60 seconds")
    const pubsub = yield* PubSub.unbounded<WatchEvent>()
    yield* Effect.addFinalizer(() => PubSub.shutdown(pubsub))
    const startedAt = yield* Clock.currentTimeMillis
    const table = yield* Ref.make<ReadonlyMap<SiteId, Entry>>(
      new Map(sites.map((site) => [site, { status: "waiting", lastSeenAt: Number.NaN }])),
    )
    const update = (site: SiteId, entry: Entry) => (current: ReadonlyMap<SiteId, Entry>) =>
      new Map(current).set(site, entry)

    yield* Effect.forkScoped(
      Effect.gen(function* () {
        yield* Effect.sleep(startTimeout)
        const at = yield* Clock.currentTimeMillis
        const late = yield* Ref.modify(table, (current) => {
          const waiting = [...current].filter(([, entry]) => entry.status === "waiting").map(([site]) => site)
          const next = new Map(current)
          for (const site of waiting) next.set(site, { status: "never-started", lastSeenAt: Number.NaN })
          return [waiting, next] as const
        })
        for (const site of late) {
          yield* PubSub.publish(pubsub, new SiteNeverStarted({ site, at, waitedMs: at - startedAt }))
          yield* Metric.update(JobMetrics.sitesNeverStarted, 1)
        }
        if (late.length > 0) yield* Effect.logWarning(`site(s) never started the job: ${late.join(", ")}`)
      }),
    )

    const reportRunning = Effect.fn("JobWatch.reportRunning")(function* (site: SiteId) {
      const at = yield* Clock.currentTimeMillis
      const previous = yield* Ref.modify(table, (current) => {
        const entry = current.get(site)
        if (entry === undefined) return [undefined, current] as const
        return [entry.status, update(site, { status: "running", lastSeenAt: at })(current)] as const
      })
      if (previous === "never-started") yield* Effect.logInfo(`site ${site} started the job late`)
    })

    const reportGone = Effect.fn("JobWatch.reportGone")(function* (site: SiteId, reason: string) {
      const at = yield* Clock.currentTimeMillis
      const died = yield* Ref.modify(table, (current) => {
        const entry = current.get(site)
        // Only a site seen running can die; "not running" from any other is not news.
        if (entry?.status !== "running") return [undefined, current] as const
        const event = new SiteDied({ site, at, lastSeenAt: entry.lastSeenAt, reason })
        return [event, update(site, { status: "dead", lastSeenAt: entry.lastSeenAt })(current)] as const
      })
      if (died === undefined) return yield* Effect.logDebug(`site ${site} not running the job (${reason}): not a death`)
      yield* PubSub.publish(pubsub, died)
      yield* Metric.update(JobMetrics.sitesDied, 1)
      yield* Effect.logWarning(`site ${site} stopped running the job: ${reason}`)
    })

    return {
      reportRunning,
      reportGone,
      status: (site: SiteId) => Effect.map(Ref.get(table), (current) => current.get(site)?.status),
      events: Stream.fromPubSub(pubsub),
      subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
    } satisfies JobWatch
  })
