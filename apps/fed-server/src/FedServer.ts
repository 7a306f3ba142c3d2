/**
 * The FedAvg coordinator, composed: each concept is a service in a file
 * named for it, and this file wires them with Layers (the way Effect builds
 * `Sharding` from services):
 *
 * ```
 * ServerEvents ─────────────┬──────────────┬──────────────┐
 * ClientDirectory ──────────┤              │              │
 * NeighborRegistry ─────────┤              │              │
 *                     ClientLiveness  RoundCoordinator    │
 *                           └──────┬───────┘              │
 *                            ClientSession           TrainingJob
 * ```
 *
 * `run` listens on the `Transport` in context, serves every connection, loads
 * the held-out evaluation of the `Workload` in context (MNIST's test split
 * unless one is provided), runs the job and returns the report. `bin.ts` only chooses
 * the transport, the logger and the settings' sources.
 *
 * @since 0.2.0
 */

import { Memory, type Report, Settings } from "@fedguard/app-kit"
import { Workload } from "@fedguard/federation"
import { JobStore } from "@fedguard/job-lifecycle"
import { MemoryCleanup } from "@fedguard/memory-cleanup"
import { NeighborRegistry } from "@fedguard/retry"
import { Transport, TransportError } from "@fedguard/transport"
import { Effect, type FileSystem, Layer, type Path, Schema } from "effect"
import * as ClientDirectory from "./ClientDirectory.ts"
import * as ClientLiveness from "./ClientLiveness.ts"
import * as ClientSession from "./ClientSession.ts"
import * as DiagnosticsReceiver from "./DiagnosticsReceiver.ts"
import * as RoundCoordinator from "./RoundCoordinator.ts"
import * as RunRecorder from "./RunRecorder.ts"
import * as ServerEvent from "./ServerEvent.ts"
import * as ServerEvents from "./ServerEvents.ts"
import * as ServerMetrics from "./ServerMetrics.ts"
import * as ServerSettings from "./ServerSettings.ts"
import * as StateLock from "./StateLock.ts"
import * as StatusPage from "./StatusPage.ts"
import * as TrainingJob from "./TrainingJob.ts"

/**
 * The server could not run: its port could not be bound or its data failed
 * to load.
 *
 * @since 0.1.0
 * @category errors
 */
export class ServerFailed extends Schema.TaggedError<ServerFailed>()("ServerFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

/**
 * Every service of the server, built from its settings. Sends are retried
 * only on `SendTimeout`: a closed connection stays closed, the client must
 * rejoin.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (settings: ServerSettings.ServerSettings, options: TrainingJob.Options = {}) => {
  const timeouts = ServerSettings.timeouts(settings)
  const clientIds = settings.clientIds === undefined ? undefined : ServerSettings.clientIdList(settings.clientIds)
  const foundation = Layer.mergeAll(
    ServerEvents.layer,
    ClientDirectory.layer({ flapWindow: timeouts.heartbeatTimeout }),
    NeighborRegistry.layer({
      policy: ServerSettings.retryPolicy(settings),
      isRetryable: (error) => TransportError.isRetryable(error) && error._tag === "SendTimeout",
    }),
  )
  const rounds = Layer.mergeAll(
    ClientLiveness.layer({ ...ServerSettings.livenessOptions(settings), clientIds }),
    DiagnosticsReceiver.layer({ accept: settings.acceptDiagnostics === "true" }),
    ServerMetrics.layer,
    // The model's size is the `Workload`'s to say (MNIST's models unless one is provided).
    Layer.unwrap(
      Workload.Workload.useSync((workload) =>
        RoundCoordinator.layer({
          paramCount: workload.paramCount(settings.model),
          roundTimeout: timeouts.roundTimeout,
          ackProgressTimeout: timeouts.ackProgressTimeout,
          checkInterval: timeouts.checkInterval,
        }),
      ),
    ),
  ).pipe(Layer.provideMerge(foundation))
  return Layer.mergeAll(
    ClientSession.layer({
      secret: settings.secret,
      clientIds,
      welcome: {
        model: settings.model,
        localEpochs: settings.localEpochs,
        ...(settings.localSteps === undefined ? {} : { localSteps: settings.localSteps }),
        batchSize: settings.batchSize,
        learningRate: settings.learningRate,
        heartbeatIntervalMs: timeouts.heartbeatInterval,
        heartbeatTimeoutMs: timeouts.heartbeatTimeout,
        ackProgressTimeoutMs: timeouts.ackProgressTimeout,
        checkIntervalMs: timeouts.checkInterval,
      },
      stall: {
        checkInterval: timeouts.checkInterval,
        stallTimeout: timeouts.stallTimeout,
        consecutiveChecks: timeouts.consecutiveChecks,
        closeStalled: settings.closeStalled === "true",
      },
    }),
    TrainingJob.layer(settings, options).pipe(
      Layer.provide(MemoryCleanup.layer(Memory.cleanupOptions(settings.memoryCleanupRounds, settings.memoryThreshold))),
    ),
    // The run as a person sees it (--status-port, --report-html), folded from the events.
    StatusPage.layerWatching(settings, { title: settings.jobName, settings: ServerSettings.reportConfig(settings) }),
  ).pipe(Layer.provideMerge(rounds))
}

/**
 * Runs a whole training job with `settings` on the `Transport` in context
 * and returns its report. The first event is `Listening` (with the bound
 * port); the test data loads after it, so clients can connect meanwhile.
 *
 * @since 0.2.0
 * @category run
 */
export const run = (
  settings: ServerSettings.ServerSettings,
  options: TrainingJob.Options = {},
): Effect.Effect<
  Report.Report,
  ServerFailed | Settings.ConflictingSettings,
  Transport.Transport | FileSystem.FileSystem | Path.Path
> =>
  Effect.gen(function* () {
    const transport = yield* Transport.Transport
    const events = yield* ServerEvents.ServerEvents
    const sessions = yield* ClientSession.ClientSession
    const job = yield* TrainingJob.TrainingJob
    // What to run (a new job, or the state file's running one) is decided before listening:
    // settings that conflict with the state file are refused before any client connects.
    yield* job.prepare.pipe(Effect.mapError(failedJob))
    const listener = yield* transport.listen(`${settings.host}:${settings.port}`).pipe(
      Effect.mapError(
        (error) =>
          new ServerFailed({
            reason: `cannot listen on ${settings.host}:${settings.port}: ${"reason" in error ? error.reason : error.message}`,
          }),
      ),
    )
    const port = Number(listener.address.slice(listener.address.lastIndexOf(":") + 1))
    yield* events.publish(new ServerEvent.Listening({ host: settings.host, port }))
    yield* Effect.forkScoped(sessions.accept(listener.connections))
    const workload = yield* Workload.Workload
    const evaluation = yield* workload
      .loadEvaluation(settings.seed)
      .pipe(Effect.mapError((error) => new ServerFailed({ reason: error.message })))
    const result = yield* job.run(evaluation).pipe(Effect.mapError(failedJob))
    const diagnostics = yield* (yield* DiagnosticsReceiver.DiagnosticsReceiver).snapshot
    return {
      config: ServerSettings.reportConfig(settings),
      ...result,
      ...(diagnostics.length === 0 ? {} : { diagnostics }),
    } satisfies Report.Report
  }).pipe(
    Effect.tap((report) => RunRecorder.writeHtml(settings.reportHtml, report)),
    Effect.provide(layer(settings, options)),
    // One server per state file, taken once the store has opened it (a file that is not a state file
    // is refused before any lock file is created next to it), released when the run ends.
    Effect.provide(Layer.effectDiscard(StateLock.acquire(settings.state))),
    Effect.provide(JobStore.layerSqlite({ path: settings.state })),
    Effect.provide(Layer.effectDiscard(StateLock.checkWritable(settings.state))),
    Effect.catchTags({
      ReportHtmlError: (error) => Effect.fail(new ServerFailed({ reason: `--report-html: ${error.message}` })),
      StatusPageFailed: (error) => Effect.fail(new ServerFailed({ reason: `--status-port: ${error.message}` })),
      StateInUse: (error) => Effect.fail(new ServerFailed({ reason: `--state: ${error.message}` })),
      StateLockFailed: (error) => Effect.fail(new ServerFailed({ reason: `--state: ${error.message}` })),
      NotAStateFile: (error) => Effect.fail(new ServerFailed({ reason: `--state: ${error.message}` })),
      StateFileTooNew: (error) => Effect.fail(new ServerFailed({ reason: `--state: ${error.message}` })),
      StoreFailure: (error) => Effect.fail(new ServerFailed({ reason: `--state: ${error.message}` })),
    }),
    Effect.scoped,
  )

const failedJob = (error: Settings.ConflictingSettings | TrainingJob.JobFailed) =>
  error instanceof Settings.ConflictingSettings ? error : new ServerFailed({ reason: error.message })
