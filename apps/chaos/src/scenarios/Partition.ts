/**
 * `partition`: one client runs in its own network namespace behind a veth
 * pair; the host end of the pair is taken down once or twice for a
 * seeded while (from a third of the heartbeat timeout to 2.5 times it),
 * then brought back. The client's socket is never closed by anyone: only the
 * heartbeat deadline can tell. The server listens on the pair's host address
 * (which the other clients reach through the host like any local address).
 *
 * Where no namespace can be created (not root, no iproute2) the scenario is
 * skipped with that reason.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Netns from "../Netns.ts"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario, Skipped } from "./Scenario.ts"

const base: Run.Settings = { ...Run.defaults, rounds: 50, localSteps: 60 }

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "partition",
  summary: "a client in its own network namespace; its veth link goes down and comes back",
  run: (context) =>
    Effect.gen(function* () {
      const draw = yield* Seeded.draw(context.seed)
      const netns = yield* Netns.make(process.pid).pipe(
        Effect.mapError((error) => new Skipped({ reason: error.message })),
      )
      const settings: Run.Settings = { ...base, host: netns.hostAddress }
      const ids = Run.honestIds(settings)
      const isolated = draw.pick(ids)
      const timeout = settings.heartbeatTimeoutMs
      const cuts = Array.from({ length: draw.int(1, 2) }, () => ({
        afterMs: draw.between(100, 800),
        downMs: draw.between(timeout / 3, 2.5 * timeout),
      }))
      const run = yield* Run.make(settings, context.secret)
      yield* Run.startAll(run, [isolated])
      yield* run.startClient(isolated, netns.name)
      if (yield* run.round("RoundStarted", 2)) {
        for (const cut of cuts) {
          yield* pause(cut.afterMs)
          yield* run.fault("link-down", isolated, `for ${cut.downMs.toFixed(0)} ms`)
          yield* netns.down.pipe(Effect.orDie)
          yield* pause(cut.downMs)
          yield* run.fault("link-up", isolated)
          yield* netns.up.pipe(Effect.orDie)
        }
      }
      const finished = yield* run.finish
      return yield* run.record({ scenario: "partition", seed: context.seed, finished, notes: { cuts: cuts.length } })
    }),
}
