import { TaskAgent, TaskExchanger, TaskPipe } from "@fedguard/supervisor"
import { Effect } from "effect"

const settings = { heartbeatInterval: "1 second", peerTimeout: "10 seconds" } as const

// In the worker thread: `train` may block this thread for minutes; the site's own event loop
// (and its heartbeats to the server) never waits for it. Serves rounds until the site closes.
export const serveRounds = (train: (model: Uint8Array, round: unknown) => Uint8Array) =>
  Effect.gen(function* () {
    const agent = yield* TaskAgent.make(yield* TaskPipe.TaskPipe, settings)
    while (true) {
      const task = yield* agent.getTask()
      yield* agent.submitResult(task.taskId, train(task.data, task.meta), { transfer: true })
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(TaskPipe.layerParentPort),
    Effect.catchTag(["AgentClosed", "PeerGone"], () => Effect.void),
  )

// On the site: one worker for the session, one task per round. The model is moved to the worker,
// not copied; a worker that crashes or stops answering fails the round with PeerGone.
export const trainRounds = (trainerFile: URL, rounds: ReadonlyArray<Uint8Array>) =>
  Effect.scoped(
    Effect.gen(function* () {
      const exchanger = yield* TaskExchanger.make(yield* TaskPipe.spawnWorker(trainerFile), settings)
      const updates: Array<Uint8Array> = []
      for (const [round, model] of rounds.entries()) {
        updates.push(yield* exchanger.run({ name: "train", data: model, meta: { round } }, { transfer: true }))
      }
      return updates
    }),
  )
