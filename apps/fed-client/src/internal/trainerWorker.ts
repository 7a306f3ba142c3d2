/**
 * The training worker of `--trainer thread`: the entry point of the
 * `worker_threads` worker `TrainerThread` starts. It serves tasks through
 * `@fedguard/supervisor`'s `TaskAgent` until the client closes or goes
 * away: `load` reads this client's shard in this thread (the default
 * `Workload`, MNIST, exactly as `LocalData.load` does in the client's own),
 * `train` trains a round on it with the same `LocalWork.train` the inline
 * trainer calls, so both give bit-identical weights. The agent's options
 * arrive as `workerData`.
 *
 * The worker has its own event loop: while a training step blocks it, the
 * client's heartbeats to its server go on. Only this worker's heartbeats to
 * the client stop, and past the trainer timeout the client replaces it.
 *
 * @since 0.5.0
 */
import { workerData } from "node:worker_threads"
import { NodeServices } from "@effect/platform-node"
import { Weights, Workload } from "@fedguard/federation"
import { TaskAgent, type TaskAgentConfig, TaskPipe } from "@fedguard/supervisor"
import { Data, Effect, Schema } from "effect"
import * as Protocol from "./trainerProtocol.ts"

// What a worker holds between tasks: its shard once loaded, and the faults to apply.
interface Loaded {
  readonly work: Workload.LocalWork
  readonly faults: Protocol.Faults
}

type Agent = TaskAgent.TaskAgent["Service"]

const decodeLoad = Schema.decodeUnknownEffect(Protocol.LoadMeta)
const decodeTrain = Schema.decodeUnknownEffect(Protocol.TrainMeta)

// A task this worker answers with `failTask(reason)`; the client decodes the reason.
class Refusal extends Data.TaggedError("Refusal")<{ readonly reason: string }> {}

const refuse = (prefix: string) => (error: { readonly message: string }) =>
  new Refusal({ reason: `${prefix}: ${error.message}` })

const load = (agent: Agent, task: TaskAgent.Task) =>
  Effect.gen(function* () {
    const meta = yield* decodeLoad(task.meta).pipe(Effect.mapError(refuse("load")))
    const work = yield* Workload.mnist.loadLocal(meta).pipe(Effect.mapError(refuse("load")))
    yield* agent.submitResult(task.taskId, Protocol.encodeSamples(work.samples))
    return { work, faults: meta.faults } satisfies Loaded
  }).pipe(
    Effect.provide(NodeServices.layer),
    Effect.catchTag("Refusal", (refusal) => Effect.as(agent.failTask(task.taskId, refusal.reason), undefined)),
  )

const train = (agent: Agent, task: TaskAgent.Task, loaded: Loaded | undefined) =>
  Effect.gen(function* () {
    if (loaded === undefined) return yield* new Refusal({ reason: "train: no shard loaded (load comes first)" })
    const meta = yield* decodeTrain(task.meta).pipe(Effect.mapError(refuse("train")))
    const params = yield* Weights.decode(task.data).pipe(Effect.mapError(refuse("train")))
    if (loaded.faults.crashTraining === meta.round && meta.attempt === 0) {
      // The fault: this worker dies on its first attempt at the round, as a crashing binding would.
      yield* Effect.sync(() => process.exit(70))
    }
    const work = Protocol.withBlock(loaded.work, loaded.faults.blockTraining)
    const trained = yield* work
      .train(meta.model, params, meta)
      .pipe(Effect.mapError((error) => new Refusal({ reason: Protocol.encodeTrainFailure(error) })))
    // The result's buffer is moved to the client, not copied.
    yield* agent.submitResult(task.taskId, Protocol.encodeTrained(trained), { transfer: true })
  }).pipe(Effect.catchTag("Refusal", (refusal) => agent.failTask(task.taskId, refusal.reason)))

const serve = Effect.gen(function* () {
  const agent = yield* TaskAgent.make(yield* TaskPipe.TaskPipe, (workerData ?? {}) as TaskAgentConfig.Input)
  let loaded: Loaded | undefined
  while (true) {
    const task = yield* agent.getTask()
    if (task.name === "load") loaded = (yield* load(agent, task)) ?? loaded
    else if (task.name === "train") yield* train(agent, task, loaded)
    else yield* agent.failTask(task.taskId, `unknown task ${task.name}`)
  }
}).pipe(
  Effect.scoped,
  Effect.provide(TaskPipe.layerParentPort),
  // The client closed the pipe or went away: the worker's work is over, and it exits.
  Effect.catchTag(["AgentClosed", "PeerGone"], () => Effect.void),
  // Anything else (a result never acknowledged, a bad option) ends this worker with code 1: the
  // client sees its pipe close and starts a fresh one, rather than waiting on a worker that stopped.
  Effect.catch((error) =>
    Effect.andThen(
      Effect.logError(`training worker: ${error.message}`),
      Effect.sync(() => process.exit(1)),
    ),
  ),
)

Effect.runFork(serve)
