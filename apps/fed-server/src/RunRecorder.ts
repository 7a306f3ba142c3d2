/**
 * What a person watching the run sees, kept as one value (`RunView`) by
 * folding the server's typed events with the `Clock` time each arrived. The
 * live status page streams it and the HTML report (`--report-html`) renders
 * its last state; neither reads a log line.
 *
 * The fold ({@link fold}) is pure; the service subscribes to `ServerEvents`
 * when it is built (before the server listens, so nothing is missed) and
 * adds, when asked for a view, what events do not carry: the liveness
 * tracker's last-seen times and the diagnostics receiver's latest reports
 * (when the server has one).
 *
 * @since 0.4.0
 */
import { type Report, ReportHtml, RunView } from "@fedguard/app-kit"
import type { LivenessTracker } from "@fedguard/heartbeat"
import {
  Clock,
  Context,
  Effect,
  type FileSystem,
  Layer,
  Option,
  type Path,
  type Schema,
  Stream,
  SubscriptionRef,
} from "effect"
import { ClientLiveness } from "./ClientLiveness.ts"
import { DiagnosticsReceiver } from "./DiagnosticsReceiver.ts"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"

/**
 * The most marks (and online spans) kept per client, and stalls kept in
 * all: a flapping client cannot grow the view without bound; the oldest go
 * first.
 *
 * @since 0.4.0
 * @category models
 */
export const maxEntries = 500

const bounded = <A>(items: ReadonlyArray<A>): ReadonlyArray<A> =>
  items.length > maxEntries ? items.slice(items.length - maxEntries) : items

type Client = RunView.ClientTimeline
type Mark = Client["marks"][number]

const newClient = (id: string): Client => ({ id, state: "offline", lastSeenAt: null, spans: [], marks: [] })

const isOpen = (client: Client) => client.spans.at(-1)?.to === null

const updateClient = (view: RunView.RunView, id: string, f: (client: Client) => Client): RunView.RunView => {
  const known = view.clients.some((client) => client.id === id)
  const clients = known
    ? view.clients.map((client) => (client.id === id ? f(client) : client))
    : [...view.clients, f(newClient(id))].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
  return { ...view, clients }
}

const cameOnline =
  (at: number) =>
  (client: Client): Client => ({
    ...client,
    state: "online",
    spans: isOpen(client) ? client.spans : bounded([...client.spans, { from: at, to: null }]),
  })

const wentAway =
  (at: number, state: string, mark: Mark | undefined) =>
  (client: Client): Client => ({
    ...client,
    state,
    spans: isOpen(client) ? client.spans.map((span) => (span.to === null ? { ...span, to: at } : span)) : client.spans,
    marks: mark === undefined ? client.marks : bounded([...client.marks, mark]),
  })

const marked = (mark: Mark) => (client: Client) => ({ ...client, marks: bounded([...client.marks, mark]) })

const without = (ids: ReadonlyArray<string>, id: string) => ids.filter((other) => other !== id)

type Handlers = {
  readonly [Tag in ServerEvent.ServerEvent["_tag"]]?: (
    view: RunView.RunView,
    event: Extract<ServerEvent.ServerEvent, { _tag: Tag }>,
    at: number,
  ) => RunView.RunView
}

// What each event changes; an event without a handler changes nothing.
const handlers: Handlers = {
  ClientJoined: (view, event, at) => updateClient(view, event.id, cameOnline(at)),
  ClientRejoined: (view, event, at) => updateClient(view, event.id, cameOnline(at)),
  ClientWentOffline: (view, event, at) =>
    updateClient(view, event.id, wentAway(at, "offline", { at, kind: "offline", reason: event.reason, round: null })),
  ClientLeft: (view, event, at) =>
    updateClient(view, event.id, wentAway(at, "left", { at, kind: "left", reason: event.reason, round: null })),
  ClientNeverJoined: (view, event, at) =>
    updateClient(
      view,
      event.id,
      wentAway(at, "never-joined", {
        at,
        kind: "never-joined",
        reason: "not seen within the join timeout",
        round: null,
      }),
    ),
  // A refused handshake is marked only on a client the view already has: ids named by strangers
  // (who did not prove the secret) never add rows.
  ClientRefused: (view, event, at) =>
    view.clients.some((client) => client.id === event.id)
      ? updateClient(view, event.id, marked({ at, kind: "refused", reason: event.reason, round: null }))
      : view,
  ClientNotStarted: (view, event, at) =>
    updateClient(
      view,
      event.id,
      marked({ at, kind: "excluded", reason: `${event.phase}: ${event.reason}`, round: null }),
    ),
  JobCreated: (view, event) => ({ ...view, job: { id: event.jobId, state: "submitted", reason: "new job" } }),
  JobResumed: (view, event) => ({
    ...view,
    job: { id: event.jobId, state: view.job?.state ?? "running", reason: `resumed after round ${event.afterRound}` },
  }),
  JobStateChanged: (view, event) => ({ ...view, job: { id: event.jobId, state: event.to, reason: event.reason } }),
  MemoryCleaned: (view, { _tag, ...record }, at) => ({ ...view, cleanups: [...view.cleanups, { ...record, at }] }),
  RoundStarted: (view, event, at) => ({
    ...view,
    paused: null,
    quorum: view.quorum.state === "waiting" ? { ...view.quorum, state: "reached" } : view.quorum,
    current: {
      round: event.round,
      startedAt: at,
      participants: event.participants,
      pending: event.participants,
      accepted: [],
      excluded: [],
    },
  }),
  RoundPaused: (view, event) => ({
    ...view,
    paused: { round: event.round, online: event.online, minClients: event.minClients },
  }),
  UpdateAccepted: (view, event) =>
    view.current === null || view.current.round !== event.round
      ? view
      : {
          ...view,
          current: {
            ...view.current,
            pending: without(view.current.pending, event.id),
            accepted: [...without(view.current.accepted, event.id), event.id],
          },
        },
  ClientExcluded: (view, event, at) => {
    const marks = updateClient(
      view,
      event.id,
      marked({ at, kind: "excluded", reason: event.reason, round: event.round }),
    )
    const current = view.current
    return current === null || current.round !== event.round
      ? marks
      : {
          ...marks,
          current: {
            ...current,
            pending: without(current.pending, event.id),
            excluded: [...current.excluded, { id: event.id, reason: event.reason }],
          },
        }
  },
  RoundCompleted: (view, { _tag, ...round }, at) => ({
    ...view,
    rounds: [...view.rounds.filter((other) => other.round !== round.round), { ...round, at }],
    current:
      view.current === null || view.current.round !== round.round
        ? view.current
        : { ...view.current, pending: [], accepted: round.participants, excluded: round.excluded },
  }),
  StallDetected: (view, event, at) => ({
    ...view,
    stalls: bounded([
      ...view.stalls,
      {
        id: event.id,
        at,
        oldestPendingMs: event.oldestPendingMs,
        checks: event.checks,
        closed: event.closed,
        clearedAt: null,
      },
    ]),
  }),
  StallCleared: (view, event, at) => ({
    ...view,
    stalls: view.stalls.map((stall) =>
      stall.id === event.id && stall.clearedAt === null && !stall.closed ? { ...stall, clearedAt: at } : stall,
    ),
  }),
  QuorumLost: (view, event) => ({
    ...view,
    quorum: { state: "lost", alive: event.alive, minClients: event.minClients },
  }),
  QuorumRestored: (view, event) => ({
    ...view,
    quorum: { state: "reached", alive: event.alive, minClients: event.minClients },
  }),
  TrainingCompleted: (view, event) => ({ ...view, finished: true, finalAccuracy: event.finalAccuracy }),
}

/**
 * The view after `event` arrived at `at` (epoch ms). Pure: the same events
 * at the same times give the same view.
 *
 * @since 0.4.0
 * @category folding
 */
export const fold = (view: RunView.RunView, event: ServerEvent.ServerEvent, at: number): RunView.RunView => {
  const handler = handlers[event._tag] as
    | ((view: RunView.RunView, event: ServerEvent.ServerEvent, at: number) => RunView.RunView)
    | undefined
  return { ...(handler === undefined ? view : handler(view, event, at)), now: at }
}

/**
 * The view with the liveness tracker's figures: each client's last sign of
 * life, and clients the tracker knows that no event named yet (registered
 * by `--client-ids`, not joined).
 *
 * @since 0.4.0
 * @category folding
 */
export const withLiveness = (
  view: RunView.RunView,
  snapshot: ReadonlyArray<LivenessTracker.ClientSnapshot>,
): RunView.RunView =>
  snapshot.reduce(
    (acc, client) =>
      updateClient(acc, client.id, (known) => ({
        ...known,
        lastSeenAt: client.lastSeenAt ?? known.lastSeenAt,
        state: known.spans.length === 0 && known.marks.length === 0 ? "waiting" : known.state,
      })),
    view,
  )

/**
 * The final view of a finished run with its report: every round of the job
 * (a resumed job's earlier rounds too, without a time), the settings and
 * the final accuracy the report holds.
 *
 * @since 0.4.0
 * @category folding
 */
export const withReport = (view: RunView.RunView, report: Report.Report): RunView.RunView => {
  const seenAt = new Map(view.rounds.map((round) => [round.round, round.at]))
  return {
    ...view,
    finished: true,
    settings: report.config,
    finalAccuracy: report.finalAccuracy,
    rounds: report.rounds.map((round) => ({ ...round, at: seenAt.get(round.round) ?? null })),
    ...(report.diagnostics === undefined ? {} : { diagnostics: report.diagnostics }),
  }
}

/**
 * The recorder:
 *
 * - `view`: the run as of now (`now` from the `Clock`), with the liveness
 *   tracker's last-seen times and, when the server has a diagnostics
 *   receiver, each client's latest diagnostics (otherwise `diagnostics` is
 *   null);
 * - `changes`: a signal after each event the view took in (subscribe in a
 *   Scope; it ends with the recorder).
 *
 * @since 0.4.0
 * @category services
 */
export class RunRecorder extends Context.Service<
  RunRecorder,
  {
    readonly view: Effect.Effect<RunView.RunView>
    readonly changes: Stream.Stream<void>
  }
>()("@fedguard/fed-server/RunRecorder") {}

/**
 * Options: the page's `title` and the run's `settings` (the report's
 * `config`, secrets redacted), shown from the start.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly title: string
  readonly settings: Record<string, Schema.Json>
}

/**
 * Subscribes to the server's events at once, in the Layer's Scope.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options): Layer.Layer<RunRecorder, never, ServerEvents | ClientLiveness> =>
  Layer.effect(
    RunRecorder,
    Effect.gen(function* () {
      const liveness = yield* ClientLiveness
      // Optional: a server without a diagnostics receiver shows none (`diagnostics: null`).
      const receiver = yield* Effect.serviceOption(DiagnosticsReceiver)
      const events = yield* ServerEvents
      const startedAt = yield* Clock.currentTimeMillis
      const ref = yield* SubscriptionRef.make<RunView.RunView>({
        ...RunView.empty(options.title, startedAt),
        settings: options.settings,
      })
      const subscription = yield* events.subscribe
      yield* subscription.pipe(
        Stream.runForEach((event) =>
          Effect.flatMap(Clock.currentTimeMillis, (at) => SubscriptionRef.update(ref, (view) => fold(view, event, at))),
        ),
        Effect.forkScoped,
      )
      const view = Effect.gen(function* () {
        const folded = withLiveness(yield* SubscriptionRef.get(ref), yield* liveness.snapshot)
        const diagnostics = Option.isSome(receiver) ? yield* receiver.value.snapshot : folded.diagnostics
        return { ...folded, diagnostics, now: yield* Clock.currentTimeMillis }
      })
      return RunRecorder.of({ view, changes: Stream.map(SubscriptionRef.changes(ref), () => undefined) })
    }),
  )

/**
 * Writes the HTML report of the finished run to `path` (nothing when
 * `path` is undefined: no `--report-html`): the recorder's view completed
 * with `report` ({@link withReport}), rendered by `ReportHtml`, then
 * publishes `ReportWritten`.
 *
 * @since 0.4.0
 * @category report
 */
export const writeHtml = (
  path: string | undefined,
  report: Report.Report,
): Effect.Effect<void, ReportHtml.ReportHtmlError, RunRecorder | ServerEvents | FileSystem.FileSystem | Path.Path> =>
  path === undefined
    ? Effect.void
    : Effect.gen(function* () {
        const recorder = yield* RunRecorder
        yield* ReportHtml.write(path, withReport(yield* recorder.view, report))
        yield* (yield* ServerEvents).publish(new ServerEvent.ReportWritten({ path }))
      })
