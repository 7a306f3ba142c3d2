/**
 * `stop-clients`: SIGSTOP one or two clients, half the time mid-upload, and
 * SIGCONT them a seeded while later (sometimes before their heartbeat
 * timeout, sometimes well after it). The model is a 1.2 MB perceptron
 * (`mlp:384`), larger than the transport's 1 MiB send window, so an upload
 * takes several writes and waits for acknowledgements: "mid-upload" means
 * the client had written a seeded 64 KiB–1 MiB of its upload
 * (`/proc/PID/io`'s `wchar`, counted from its round's start) when it was
 * stopped.
 *
 * @since 0.1.0
 */
import { Effect, Option } from "effect"
import * as Fleet from "../Fleet.ts"
import * as Run from "../Run.ts"
import * as Seeded from "../Seeded.ts"
import { pause, type Scenario } from "./Scenario.ts"

const settings: Run.Settings = { ...Run.defaults, rounds: 8, model: "mlp:384", localSteps: 5 }

// Spins (no scheduling between seeing the bytes and the signal) until `pid` has written
// `threshold` bytes more than `base`, then SIGSTOPs it: the time of the signal, or none if that
// did not happen in time.
const stopOnUpload = (pid: number, base: number, threshold: number, limitMs: number) =>
  Effect.gen(function* () {
    const end = (yield* Fleet.now) + limitMs
    while ((yield* Fleet.now) < end) {
      if ((yield* Fleet.writtenBy(pid)) - base >= threshold) {
        const at = yield* Fleet.now
        yield* Fleet.signal(pid, "SIGSTOP")
        return Option.some(at)
      }
    }
    return Option.none<number>()
  })

/**
 * @since 0.1.0
 * @category scenarios
 */
export const scenario: Scenario = {
  name: "stop-clients",
  summary: "SIGSTOP a client (sometimes mid-upload), SIGCONT later",
  run: (context) =>
    Effect.gen(function* () {
      const draw = yield* Seeded.draw(context.seed)
      const ids = Run.honestIds(settings)
      const victims = draw.sample(ids, draw.int(1, 2))
      const timeout = settings.heartbeatTimeoutMs
      const plan = victims.map((id) => ({
        id,
        round: draw.int(2, settings.rounds - 3),
        midUpload: draw.chance(0.5),
        uploadBytes: draw.int(64 * 1024, 1024 * 1024),
        delayMs: draw.between(0, 400),
        stoppedMs: draw.between(0.3 * timeout, 3 * timeout),
      }))
      const run = yield* Run.make(settings, context.secret)
      yield* Run.startAll(run)
      let midUpload = 0
      yield* Effect.forEach(
        plan,
        (fault) =>
          Effect.gen(function* () {
            const client = run.client(fault.id)
            if (Option.isNone(client) || !(yield* run.round("RoundStarted", fault.round))) return
            const pid = client.value.pid
            if (fault.midUpload) {
              const base = yield* Fleet.writtenBy(pid)
              const at = yield* stopOnUpload(pid, base, fault.uploadBytes, 5000)
              if (Option.isNone(at)) return
              midUpload++
              yield* run.recordFault({
                kind: "stop",
                target: fault.id,
                at: at.value,
                note: `after ${fault.uploadBytes} bytes of its upload in round ${fault.round}`,
              })
            } else {
              yield* pause(fault.delayMs)
              yield* run.signalClient(
                fault.id,
                "stop",
                `${fault.delayMs.toFixed(0)} ms after round ${fault.round} started`,
              )
            }
            yield* pause(fault.stoppedMs)
            yield* run.signalClient(fault.id, "cont")
          }),
        { concurrency: "unbounded", discard: true },
      )
      const finished = yield* run.finish
      return yield* run.record({
        scenario: "stop-clients",
        seed: context.seed,
        finished,
        notes: { stops: plan.length, stopsMidUpload: midUpload },
      })
    }),
}
