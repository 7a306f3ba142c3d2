/**
 * Carries out a `FaultPlan` on the running `Federation`: it kills and
 * restarts clients as the server's rounds start, kills and restarts the
 * server as its rounds complete, and keeps a paused server from waiting
 * forever.
 *
 * While the server is paused for quorum, restarts scheduled for later
 * rounds are brought forward (those rounds cannot start without them); when
 * even they cannot restore the quorum, it fails with `QuorumUnreachable`.
 *
 * @since 0.2.0
 */
import { Console, Context, Effect, Layer, Option, Ref, Schema } from "effect"
import type * as FaultPlan from "./FaultPlan.ts"
import { Federation, type FederationEvent, joinTimeout } from "./Federation.ts"

/**
 * The server paused for quorum and nothing the demo will do can bring enough
 * clients back: fewer clients are running than the quorum needs, even with
 * every restart still scheduled.
 *
 * @since 0.2.0
 * @category errors
 */
export class QuorumUnreachable extends Schema.TaggedError<QuorumUnreachable>()("QuorumUnreachable", {
  round: Schema.Int,
  running: Schema.Int,
  minClients: Schema.Int,
}) {
  override get message(): string {
    return (
      `the federation cannot go on: the server paused before round ${this.round} for quorum ` +
      `(it needs ${this.minClients} online), only ${this.running} client processes are running, ` +
      `and no scheduled restart can bring the quorum back`
    )
  }
}

/**
 * The fault schedule, fed every `FederationEvent` in order by `observe`: a
 * round's start runs the actions due by then (skipping, with a note, a kill
 * of a client that is not running or a restart of one that is); a round's
 * completion restarts the server when a server kill is due by then; a
 * pause, or a client exit during one, checks whether the quorum can come
 * back.
 *
 * @since 0.2.0
 * @category services
 */
export class FaultInjector extends Context.Service<
  FaultInjector,
  {
    readonly observe: (event: FederationEvent) => Effect.Effect<void, QuorumUnreachable>
  }
>()("@fedguard/demo/FaultInjector") {}

/**
 * Builds the injector for `plan` on the `Federation` in context.
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (plan: FaultPlan.FaultPlan) {
  const federation = yield* Federation
  const needed = federation.minClients
  const pending = yield* Ref.make<ReadonlyArray<FaultPlan.Action>>(plan.actions)
  const serverKills = yield* Ref.make(plan.serverKills)
  const paused = yield* Ref.make<Option.Option<number>>(Option.none())

  const takePending = (take: (action: FaultPlan.Action) => boolean) =>
    Ref.modify(pending, (actions) => [actions.filter(take), actions.filter((action) => !take(action))])

  const roundStarted = Effect.fnUntraced(function* (round: number) {
    yield* Ref.set(paused, Option.none())
    for (const action of yield* takePending((action) => action.round <= round)) {
      const running = yield* federation.isRunning(action.client)
      if (action.kind === "kill" && running) {
        yield* Console.log(`  ! killing ${action.client} (SIGKILL) at the start of round ${round}`)
        yield* federation.killClient(action.client)
      } else if (action.kind === "restart" && !running) {
        yield* Console.log(`  ! restarting ${action.client} at the start of round ${round}`)
        yield* federation.startClient(action.client)
      } else
        yield* Console.log(`  ! ${action.kind} ${action.client}@${action.round} skipped: nothing to ${action.kind}`)
    }
  })

  // One restart however many kills are due: a server that ran past a scheduled round (it was
  // killed late) is killed once, after the round it completed.
  const roundCompleted = Effect.fnUntraced(function* (round: number) {
    const due = yield* Ref.modify(serverKills, (rounds) => [
      rounds.filter((at) => at <= round),
      rounds.filter((at) => at > round),
    ])
    if (due.length === 0) return
    yield* Console.log(`  ! killing the server (SIGKILL) after round ${round}`)
    const port = yield* federation.restartServer
    yield* Console.log(`  ! starting the server again on port ${port} with the same arguments and state file`)
    // Before resuming, the server waits for its expected clients: a killed client makes it wait
    // out its join timeout, which would look like a hang without this note.
    const running = yield* federation.running
    if (running < federation.expectedClients) {
      yield* Console.log(
        `  ! ${running} of its ${federation.expectedClients} expected clients are running: it waits up to ` +
          `${joinTimeout} (--join-timeout) for the others before resuming`,
      )
    }
  })

  // While paused, bring restarts forward (in schedule order) until enough clients run;
  // fail when even all of them would not be enough.
  const checkQuorum = Effect.fnUntraced(function* (round: number) {
    const running = yield* federation.running
    if (running >= needed) return
    const restarts: Array<FaultPlan.Action> = []
    for (const action of yield* Ref.get(pending)) {
      if (running + restarts.length >= needed) break
      if (action.kind === "restart" && !(yield* federation.isRunning(action.client))) restarts.push(action)
    }
    if (running + restarts.length < needed) {
      return yield* new QuorumUnreachable({ round, running, minClients: needed })
    }
    yield* takePending((action) => restarts.includes(action))
    for (const action of restarts) {
      yield* Console.log(
        `  ! restarting ${action.client} now (scheduled for round ${action.round}): the server is paused for quorum`,
      )
      yield* federation.startClient(action.client)
    }
  })

  const observe = Effect.fnUntraced(function* (event: FederationEvent) {
    if (event._tag === "ClientExited") {
      const round = yield* Ref.get(paused)
      if (Option.isSome(round)) yield* checkQuorum(round.value)
      return
    }
    switch (event.event._tag) {
      case "RoundStarted":
        return yield* roundStarted(event.event.round)
      case "RoundCompleted":
        return yield* roundCompleted(event.event.round)
      case "RoundPaused":
        yield* Ref.set(paused, Option.some(event.event.round))
        return yield* checkQuorum(event.event.round)
      case "QuorumRestored":
        return yield* Ref.set(paused, Option.none())
      default:
        return
    }
  })

  return FaultInjector.of({ observe })
})

/**
 * The injector as a Layer, on the `Federation` it acts on.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (plan: FaultPlan.FaultPlan): Layer.Layer<FaultInjector, never, Federation> =>
  Layer.effect(FaultInjector, make(plan))
