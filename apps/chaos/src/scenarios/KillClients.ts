/**
 * `kill-clients`: SIGKILL k of the N clients at seeded moments (a seeded
 * delay after a seeded round starts), and start some of them again a seeded
 * while later: always enough that the quorum comes back, the others by a coin.
 *
 * @since 0.1.0
 */
import { Effect } from "effect"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

const settings: Run.Settings = { ...Run.defaults, rounds: 14 }

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "kill-clients",
  summary: "SIGKILL k of N clients at seeded moments, restart some",
  run: (context) =>
    Effect.gen(function* () {
      const draw = yield* Seeded.draw(context.seed)
      const ids = Run.honestIds(settings)
      const k = draw.int(1, settings.clients - 1)
      const victims = draw.sample(ids, k)
      // Enough restarts that the quorum can come back; the rest by a coin.
      const mustRestart = Math.max(0, k - (settings.clients - settings.minClients))
      const plan = victims.map((id, i) => ({
        id,
        round: draw.int(2, settings.rounds - 4),
        delayMs: draw.between(0, 200),
        restartAfterMs: i < mustRestart || draw.chance(0.5) ? draw.between(100, 2500) : undefined,
      }))
      const run = yield* Run.make(settings, context.secret)
      yield* Run.startAll(run)
      yield* Effect.forEach(
        plan,
        (fault) =>
          Effect.gen(function* () {
            if (!(yield* run.round("RoundStarted", fault.round))) return
            yield* pause(fault.delayMs)
            yield* run.killClient(fault.id, `${fault.delayMs.toFixed(0)} ms after round ${fault.round} started`)
            if (fault.restartAfterMs === undefined) return
            yield* pause(fault.restartAfterMs)
            yield* run.startClient(fault.id)
          }),
        { concurrency: "unbounded", discard: true },
      )
      const finished = yield* run.finish
      return yield* run.record({ scenario: "kill-clients", seed: context.seed, finished, notes: { killed: k } })
    }),
}
