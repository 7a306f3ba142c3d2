/**
 * Runs a whole demo federation as OS processes: one fed-server and N
 * fed-clients on 127.0.0.1, a live per-round table from the server's typed
 * events, optional kills and restarts of clients and of the server, and the
 * report.
 *
 * The parts: `Federation` owns the processes and reports what they do,
 * `FaultInjector` carries out the `FaultPlan` as rounds start, pause and
 * complete, `RoundTable` renders the events; `run` composes them.
 *
 * @since 0.1.0
 */
import * as Report from "@fedguard/app-kit/Report"
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Clock, Console, Effect, Exit, Fiber, FileSystem, Layer, Option, Path, Schema, Stream } from "effect"
import * as FaultInjector from "./FaultInjector.ts"
import * as FaultPlan from "./FaultPlan.ts"
import * as Federation from "./Federation.ts"
import * as RoundTable from "./RoundTable.ts"
import * as Supervised from "./Supervised.ts"

/**
 * What the demo runs: the federation's settings and the faults to inject.
 *
 * @since 0.1.0
 * @category models
 */
export interface DemoOptions extends Omit<Federation.Options, "state" | "reportHtml"> {
  /** The server's HTML report; none: beside the JSON report (`demo-report.json` → `demo-report.html`). */
  readonly reportHtml?: string | undefined
  /** `client-2@3`: SIGKILL client-2 when round 3 starts. */
  readonly kill: ReadonlyArray<FaultPlan.Fault>
  /** `client-2@5`: start client-2 again when round 5 starts. */
  readonly restart: ReadonlyArray<FaultPlan.Fault>
  /** `3`: SIGKILL the server when it completes round 3 and start it again on its state file. */
  readonly killServer: ReadonlyArray<number>
  /** The server's state file; `None`: a new one in a fresh temporary directory, so no old run is resumed. */
  readonly state: Option.Option<string>
  /** Run the federation under fed-supervisor, which restarts a killed client by itself (`Supervised`). */
  readonly supervise?: boolean | undefined
}

/**
 * The server completed without reporting its final accuracy, or its report
 * does not hold every round exactly once.
 *
 * @since 0.1.0
 * @category errors
 */
export class DemoFailed extends Schema.TaggedError<DemoFailed>()("DemoFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

// What the run has seen so far: whether a server listened (the table has its header), the final
// accuracy once the server reported it, and the round after which each resumed server went on.
interface Progress {
  readonly listened: boolean
  readonly finalAccuracy: Option.Option<number>
  readonly resumedAfter: ReadonlyArray<number>
}

// "the server resumed the job twice, after rounds 2 and 4"
const resumes = ({ resumedAfter }: Progress) => {
  const times =
    resumedAfter.length === 1 ? "once" : resumedAfter.length === 2 ? "twice" : `${resumedAfter.length} times`
  const rounds =
    resumedAfter.length === 1
      ? `round ${resumedAfter[0]}`
      : `rounds ${resumedAfter.slice(0, -1).join(", ")} and ${resumedAfter.at(-1)}`
  return `the server resumed the job ${times}, after ${rounds}`
}

const show = (event: ServerEvent.ServerEvent) =>
  Option.match(RoundTable.render(event), { onNone: () => Effect.void, onSome: Console.log })

// Prints what the table shows for one event, then lets the fault schedule react to it.
const observe = Effect.fnUntraced(function* (
  injector: FaultInjector.FaultInjector["Service"],
  progress: Progress,
  event: Federation.FederationEvent,
) {
  if (event._tag === "ClientExited") {
    const how = Exit.isSuccess(event.exit) ? `with code ${event.exit.value}` : "abnormally"
    if (Option.isNone(progress.finalAccuracy)) yield* Console.log(`  · ${event.id} exited ${how}`)
    yield* injector.observe(event)
    return progress
  }
  const reported = event.event
  yield* show(reported)
  yield* injector.observe(event)
  switch (reported._tag) {
    case "Listening":
      // A restarted server listens again: the header is printed once.
      if (!progress.listened) yield* Console.log(RoundTable.header)
      return { ...progress, listened: true }
    case "TrainingCompleted":
      return { ...progress, finalAccuracy: Option.some(reported.finalAccuracy) }
    case "JobResumed":
      return { ...progress, resumedAfter: [...progress.resumedAfter, reported.afterRound] }
    default:
      return progress
  }
})

// Where the server keeps its job: the user's file, or a new one no earlier run has touched.
const stateFile = (given: Option.Option<string>) =>
  Option.match(given, {
    onSome: (path) => Effect.succeed({ path, note: "given with --state" }),
    onNone: () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const directory = yield* fs.makeTempDirectory({ prefix: "fedguard-demo-" })
        return {
          path: (yield* Path.Path).join(directory, "state.db"),
          note: "new for this run; kept afterwards; --state PATH to choose one",
        }
      }),
  })

// `demo-report.json` → `demo-report.html`; a name without `.json` gets `.html` added.
const htmlBeside = (report: string) => `${report.endsWith(".json") ? report.slice(0, -".json".length) : report}.html`

const decodeReport = Schema.decodeUnknownEffect(Schema.fromJsonString(Report.Report))

// The report is built from the state file: it must hold rounds 1…rounds, each exactly once,
// however many times the server was killed and resumed.
const checkReport = Effect.fnUntraced(function* (path: string, rounds: number) {
  const fs = yield* FileSystem.FileSystem
  const report = yield* fs.readFileString(path).pipe(
    Effect.flatMap(decodeReport),
    Effect.mapError((error) => new DemoFailed({ reason: `cannot read the report ${path}: ${error.message}` })),
  )
  const seen = report.rounds.map((round) => round.round)
  if (seen.length !== rounds || seen.some((round, index) => round !== index + 1)) {
    return yield* new DemoFailed({
      reason: `the report ${path} holds rounds ${seen.join(", ") || "none"}, not 1…${rounds} each exactly once`,
    })
  }
  return seen.length
})

/**
 * Runs the demo and returns the final accuracy. Every process it starts is
 * stopped when the returned effect ends, fails or is interrupted. Fails with
 * `InvalidFault` before starting anything when a fault cannot happen in this
 * run, with `ServerExited` when the server exits before training completes
 * (a server the demo killed to restart it does not count), with
 * `QuorumUnreachable` when a paused server cannot get its quorum back (see
 * `FaultInjector`), and with `DemoFailed` when the report does not hold
 * every round exactly once.
 *
 * @since 0.1.0
 * @category run
 */
export const run = Effect.fnUntraced(function* (options: DemoOptions) {
  const plan = yield* FaultPlan.make({ ...options, state: Option.getOrUndefined(options.state) })
  const startedAt = yield* Clock.currentTimeMillis
  const state = yield* stateFile(options.state)
  const reportHtml = options.reportHtml ?? htmlBeside(options.report)
  return yield* Effect.gen(function* () {
    const federation = yield* Federation.Federation
    const injector = yield* FaultInjector.FaultInjector
    yield* Console.log(
      `fedguard demo: 1 server + ${options.clients} clients on 127.0.0.1, ${options.rounds} rounds, ` +
        `${options.model}, ${options.partition}`,
    )
    yield* Console.log(`state file ${state.path} (${state.note})`)
    const loop = yield* federation.events.pipe(
      Stream.runFoldEffect(
        (): Progress => ({ listened: false, finalAccuracy: Option.none(), resumedAfter: [] }),
        (progress, event) => observe(injector, progress, event),
      ),
      Effect.forkChild,
    )
    // A server that exits before reporting its port (a bad setting) fails the run at once.
    yield* federation.listening
    for (let index = 0; index < options.clients; index++) yield* federation.startClient(`client-${index}`)

    // The loop ends when the server's stdout does (it exited), or fails when the quorum is gone.
    const progress = yield* Fiber.join(loop)
    yield* federation.serverFinished
    yield* federation.clientsFinished
    if (Option.isNone(progress.finalAccuracy)) {
      return yield* new DemoFailed({ reason: "the server reported no final accuracy" })
    }
    const rounds = yield* checkReport(options.report, options.rounds)
    for (const line of federation.summary === undefined ? [] : yield* federation.summary) yield* Console.log(line)
    if (progress.resumedAfter.length > 0) {
      yield* Console.log(`all ${rounds} rounds completed, each exactly once in the report; ${resumes(progress)}`)
    }
    const seconds = (((yield* Clock.currentTimeMillis) - startedAt) / 1000).toFixed(1)
    yield* Console.log(
      `final accuracy ${progress.finalAccuracy.value.toFixed(4)} after ${rounds} rounds in ${seconds} s; ` +
        `report: ${options.report}; HTML report (charts, liveness timeline; opens offline): ${reportHtml}`,
    )
    return progress.finalAccuracy.value
  }).pipe(
    Effect.provide(
      FaultInjector.layer(plan).pipe(
        Layer.provideMerge(
          (options.supervise === true ? Supervised.layer : Federation.layer)({
            ...options,
            reportHtml,
            state: state.path,
          }),
        ),
      ),
    ),
  )
})
