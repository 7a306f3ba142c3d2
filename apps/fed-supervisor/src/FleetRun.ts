/**
 * One run of fed-supervisor: loads the fleet file, opens the state file,
 * starts (or adopts) every worker under a `WorkerSupervisor`, shows what
 * happens (a live table on a terminal, JSON event lines otherwise), and ends
 * in one of four ways:
 *
 * - a `significant` worker exited with code 0: the fleet is complete, every
 *   worker is stopped, success;
 * - interrupted (SIGINT, SIGTERM): every worker is stopped gracefully
 *   (SIGTERM, SIGKILL after `stopGrace`);
 * - the restart intensity was exceeded: {@link FleetEscalated} with the
 *   restart history;
 * - a worker failed under `stop-all`: {@link FleetStoppedOnFailure}.
 *
 * With a state file, a fed-supervisor killed by SIGKILL leaves its workers
 * running; started again on the same file it adopts them (same pid, same
 * start time) instead of starting second copies.
 *
 * @since 0.1.0
 */
import {
  SupervisorError,
  type SupervisorEvent,
  SupervisorStore,
  WorkerHealth,
  WorkerSupervisor,
} from "@fedguard/supervisor"
import { Clock, Console, Deferred, Duration, Effect, FileSystem, Layer, Path, Ref, Schema, Stream } from "effect"
import * as FleetFile from "./FleetFile.ts"
import * as LiveTable from "./LiveTable.ts"
import { lines } from "./SupervisorLines.ts"
import * as WorkerTable from "./WorkerTable.ts"

/**
 * `file`: the fleet file. `state`: the supervisor's state file (none: nothing
 * is kept, and a restarted fed-supervisor starts every worker anew).
 * `output`: `table` (a live table, for a terminal) or `json` (one JSON line
 * per event).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly file: string
  readonly state: string | undefined
  readonly output: "table" | "json"
}

/**
 * `--state` names a file that cannot be a state file: its directory does not
 * exist, or it is another kind of file (left untouched), or it was written by
 * a newer version. Bad usage (exit 2).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidStateFile extends Schema.TaggedError<InvalidStateFile>()("InvalidStateFile", {
  path: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `--state ${this.path}: ${this.reason}`
  }
}

const describeHistory = (history: ReadonlyArray<SupervisorError.RestartRecord>): string =>
  history.map((r) => `\n  ${new Date(r.at).toISOString()}  ${r.workerId}  ${r.reason}`).join("")

/**
 * The restart intensity was exceeded: every worker was stopped.
 * `history` is every restart in the window, oldest first; the message lists
 * it, one restart per line.
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetEscalated extends Schema.TaggedError<FleetEscalated>()("FleetEscalated", {
  maxRestarts: Schema.Number,
  periodMillis: Schema.Number,
  history: Schema.Array(SupervisorError.RestartRecord),
}) {
  override get message(): string {
    return (
      `escalated: ${this.history.length} failures within ${Duration.format(Duration.millis(this.periodMillis))} ` +
      `(recovery.maxRestarts is ${this.maxRestarts}); every worker was stopped. Restart history:` +
      describeHistory(this.history)
    )
  }
}

/**
 * Under the `stop-all` strategy a worker failed and every worker was stopped.
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetStoppedOnFailure extends Schema.TaggedError<FleetStoppedOnFailure>()("FleetStoppedOnFailure", {
  workerId: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `stop-all: worker ${this.workerId} failed (${this.reason}); every worker was stopped`
  }
}

/**
 * The state store: in memory without `--state`, else SQLite at that path
 * (its directory must exist).
 *
 * @since 0.1.0
 * @category layers
 */
export const storeLayer = Effect.fnUntraced(function* (state: string | undefined) {
  if (state === undefined) return SupervisorStore.layerMemory
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const directory = path.dirname(path.resolve(state))
  const exists = yield* fs.exists(directory).pipe(Effect.orElseSucceed(() => false))
  if (!exists) return yield* new InvalidStateFile({ path: state, reason: `directory ${directory} does not exist` })
  return SupervisorStore.layerSqlite({ path: state }).pipe(
    Layer.catchTag(["NotAStateFile", "StateFileTooNew"], (error) =>
      Layer.effect(
        SupervisorStore.SupervisorStore,
        Effect.fail(new InvalidStateFile({ path: state, reason: error.message })),
      ),
    ),
  )
})

// What the table shows as a worker's last failure, from the events.
const failureOf = (event: SupervisorEvent.SupervisorEvent): string | undefined => {
  if (event._tag === "WorkerExited" && !event.expected) {
    return event.signal !== undefined
      ? `killed by ${event.signal}`
      : event.code !== undefined
        ? `exited with code ${event.code}`
        : "exited"
  }
  if (event._tag === "WorkerHealthChanged" && event.to === "unhealthy") {
    return `unhealthy: ${event.breaches.map(WorkerHealth.formatBreach).join("; ")}`
  }
  return undefined
}

/**
 * Supervises a decoded fleet in the current Scope until one of the ends
 * above; returns the id of the significant worker that completed the fleet.
 *
 * @since 0.1.0
 * @category running
 */
export const supervise = Effect.fnUntraced(function* (fleet: FleetFile.Fleet, output: Options["output"]) {
  const supervisor = yield* WorkerSupervisor.make({ workers: fleet.workers, config: fleet.config })
  const events = yield* supervisor.subscribe
  const failures = yield* Ref.make<ReadonlyMap<string, string>>(new Map())
  const completed = yield* Deferred.make<string>()
  yield* events.pipe(
    Stream.runForEach((event) =>
      Effect.gen(function* () {
        if (output === "json") yield* lines.log(event)
        const failure = failureOf(event)
        if (failure !== undefined && "workerId" in event) {
          const id = event.workerId
          yield* Ref.update(failures, (map) => new Map(map).set(id, failure))
        }
        if (event._tag === "WorkerExited" && !event.expected && event.code === 0) {
          if (fleet.significant.includes(event.workerId)) yield* Deferred.succeed(completed, event.workerId)
        }
      }),
    ),
    Effect.forkScoped,
  )
  if (output === "table") {
    const table = Effect.gen(function* () {
      const now = yield* Clock.currentTimeMillis
      return WorkerTable.render(yield* supervisor.workers, now, yield* Ref.get(failures))
    })
    yield* LiveTable.show(table, fleet.workers.length + 1, Effect.sleep("500 millis"))
  }
  const completedBy = yield* Effect.raceFirst(
    Effect.as(supervisor.terminated, undefined),
    Deferred.await(completed),
  ).pipe(
    Effect.onInterrupt(() => supervisor.shutdown),
    Effect.catchTags({
      SupervisorEscalated: (e) =>
        Effect.fail(
          new FleetEscalated({ maxRestarts: e.maxRestarts, periodMillis: e.periodMillis, history: e.history }),
        ),
      StoppedOnFailure: (e) => Effect.fail(new FleetStoppedOnFailure({ workerId: e.workerId, reason: e.reason })),
    }),
  )
  if (completedBy !== undefined) yield* supervisor.shutdown
  return completedBy
})

/**
 * The whole run: load the file, open the store, supervise. The fleet file's
 * and `--state`'s errors come before any worker starts.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fnUntraced(function* (options: Options) {
  const fleet = yield* FleetFile.load(options.file)
  const store = yield* storeLayer(options.state)
  const completedBy = yield* supervise(fleet, options.output).pipe(
    Effect.scoped,
    Effect.provide(Layer.mergeAll(WorkerHealth.layer, store)),
  )
  if (completedBy !== undefined) {
    yield* Console.error(`fed-supervisor: fleet complete: ${completedBy} exited with code 0; every worker was stopped`)
  }
})
