/**
 * `kill-server`: kill -9 the server one to three times at seeded moments
 * (a seeded delay inside a round, or the instant a round completes) and
 * start it again with the same flags on the same port and `--state` file;
 * the clients reconnect by themselves. Every client takes part in every
 * round (`--min-clients` = N), so a resumed job must train, round by round,
 * the models of the undisturbed reference run.
 *
 * @since 0.1.0
 */
import { Effect, Fiber, FileSystem } from "effect"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

/**
 * The settings: 10 rounds, every client in every round; beats are long
 * enough (2 s timeout) that a busy machine does not make a client flap,
 * which would change the model.
 *
 * @since 0.1.0
 * @category models
 */
export const settings: Run.Settings = {
  ...Run.defaults,
  rounds: 10,
  minClients: Run.defaults.clients,
  heartbeatIntervalMs: 400,
  heartbeatTimeoutMs: 2000,
}

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "kill-server",
  summary: "kill -9 the server mid-training, restart it on its --state file",
  run: (context) =>
    Effect.gen(function* () {
      const draw = yield* Seeded.draw(context.seed)
      const kills = draw.int(1, 3)
      const plan = Array.from({ length: kills }, () => ({
        atCompletion: draw.chance(0.3),
        delayMs: draw.between(0, 250),
        rounds: draw.int(1, 3),
      }))
      // The undisturbed run, alongside this one (kills do not load the machine; the models of
      // both are seeded, whatever their timing): it is needed only for the record.
      const reference = yield* Effect.forkScoped(context.reference({ ...settings, state: ":memory:" }))
      const fs = yield* FileSystem.FileSystem
      const directory = yield* fs.makeTempDirectoryScoped({ prefix: "fedguard-chaos-" }).pipe(Effect.orDie)
      const run = yield* Run.make({ ...settings, state: `${directory}/state.db` }, context.secret)
      yield* Run.startAll(run)
      let target = 0
      for (const kill of plan) {
        target = Math.min(settings.rounds - 1, target + kill.rounds)
        if (kill.atCompletion) {
          if (!(yield* run.round("RoundCompleted", target))) break
          yield* run.restartServer(`the instant round ${target} completed`)
        } else {
          if (!(yield* run.round("RoundStarted", target))) break
          yield* pause(kill.delayMs)
          yield* run.restartServer(`${kill.delayMs.toFixed(0)} ms after round ${target} started`)
        }
        // The restarted server must find its job and resume it.
        const resumed = yield* run
          .server()
          .waitFor("job-resumed", (event) => event._tag === "JobResumed", 30_000)
          .pipe(Effect.option)
        if (resumed._tag === "None") break
      }
      const finished = yield* run.finish
      return yield* run.record({
        scenario: "kill-server",
        seed: context.seed,
        finished,
        reference: yield* Fiber.join(reference),
        notes: { serverKills: run.servers().length - 1 },
      })
    }),
}
