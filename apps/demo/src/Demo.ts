/**
 * Runs a whole demo federation as OS processes: one fed-server and N
 * fed-clients on 127.0.0.1, a live per-round table from the server's typed
 * events, optional kills and restarts of clients, and the report.
 *
 * The parts: `Federation` owns the processes and reports what they do,
 * `FaultInjector` carries out the `FaultPlan` as rounds start and pause,
 * `RoundTable` renders the events; `run` composes them.
 *
 * @since 0.1.0
 */
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"
import { Clock, Console, Effect, Exit, Fiber, Layer, Option, Schema, Stream } from "effect"
import * as FaultInjector from "./FaultInjector.ts"
import * as FaultPlan from "./FaultPlan.ts"
import * as Federation from "./Federation.ts"
import * as RoundTable from "./RoundTable.ts"

/**
 * What the demo runs: the federation's settings and the faults to inject.
 *
 * @since 0.1.0
 * @category models
 */
export interface DemoOptions extends Federation.Options {
  /** `client-2@3`: SIGKILL client-2 when round 3 starts. */
  readonly kill: ReadonlyArray<FaultPlan.Fault>
  /** `client-2@5`: start client-2 again when round 5 starts. */
  readonly restart: ReadonlyArray<FaultPlan.Fault>
}

/**
 * The server completed without reporting its final accuracy.
 *
 * @since 0.1.0
 * @category errors
 */
export class DemoFailed extends Schema.TaggedError<DemoFailed>()("DemoFailed", { reason: Schema.String }) {
  override get message(): string {
    return this.reason
  }
}

const show = (event: ServerEvent.ServerEvent) =>
  Option.match(RoundTable.render(event), { onNone: () => Effect.void, onSome: Console.log })

// Prints what the table shows for one event, then lets the fault schedule react to it.
// The fold's state is the final accuracy, once the server has reported it.
const observe = Effect.fnUntraced(function* (
  injector: FaultInjector.FaultInjector["Service"],
  finalAccuracy: Option.Option<number>,
  event: Federation.FederationEvent,
) {
  if (event._tag === "ClientExited") {
    const how = Exit.isSuccess(event.exit) ? `with code ${event.exit.value}` : "abnormally"
    if (Option.isNone(finalAccuracy)) yield* Console.log(`  · ${event.id} exited ${how}`)
  } else {
    yield* show(event.event)
    if (event.event._tag === "Listening") yield* Console.log(RoundTable.header)
  }
  yield* injector.observe(event)
  return event._tag === "ServerReported" && event.event._tag === "TrainingCompleted"
    ? Option.some(event.event.finalAccuracy)
    : finalAccuracy
})

/**
 * Runs the demo and returns the final accuracy. Every process it starts is
 * stopped when the returned effect ends, fails or is interrupted. Fails with
 * `InvalidFault` before starting anything when a fault cannot happen in this
 * run, with `ServerExited` when the server exits before training completes,
 * and with `QuorumUnreachable` when a paused server cannot get its quorum
 * back (see `FaultInjector`).
 *
 * @since 0.1.0
 * @category run
 */
export const run = Effect.fnUntraced(function* (options: DemoOptions) {
  const plan = yield* FaultPlan.make(options)
  const startedAt = yield* Clock.currentTimeMillis
  return yield* Effect.gen(function* () {
    const federation = yield* Federation.Federation
    const injector = yield* FaultInjector.FaultInjector
    const loop = yield* federation.events.pipe(
      Stream.runFoldEffect(
        () => Option.none<number>(),
        (finalAccuracy, event) => observe(injector, finalAccuracy, event),
      ),
      Effect.forkChild,
    )
    yield* Console.log(
      `fedguard demo: 1 server + ${options.clients} clients on 127.0.0.1, ${options.rounds} rounds, ` +
        `${options.model}, ${options.partition}`,
    )
    // A server that exits before reporting its port (a bad setting) fails the run at once.
    yield* federation.listening
    for (let index = 0; index < options.clients; index++) yield* federation.startClient(`client-${index}`)

    // The loop ends when the server's stdout does (it exited), or fails when the quorum is gone.
    const accuracy = yield* Fiber.join(loop)
    yield* federation.serverFinished
    yield* federation.clientsFinished
    if (Option.isNone(accuracy)) return yield* new DemoFailed({ reason: "the server reported no final accuracy" })
    const seconds = (((yield* Clock.currentTimeMillis) - startedAt) / 1000).toFixed(1)
    yield* Console.log(
      `final accuracy ${accuracy.value.toFixed(4)} after ${options.rounds} rounds in ${seconds} s; report: ${options.report}`,
    )
    return accuracy.value
  }).pipe(Effect.provide(FaultInjector.layer(plan).pipe(Layer.provideMerge(Federation.layer(options)))))
})
