/**
 * The training side of the real-process tests, shared by the worker-thread
 * and child-process entry points: serves tasks through a `TaskAgent` until
 * the site closes or goes away.
 *
 * - `double`: each byte doubled.
 * - `grow`: a result of `meta.bytes` bytes (byte i = i mod 251), to cross
 *   `chunkBytes`.
 * - `wait`: an asynchronous wait of `meta.ms` (the event loop stays free, so
 *   heartbeats keep flowing), then the input back.
 * - `block`: a synchronous busy loop of `meta.ms` that blocks the event loop,
 *   as user training code (a native binding, a tight loop) does.
 * - anything else: `failTask`.
 */
import { Effect, type Layer, Predicate } from "effect"
import type { PipeClosed } from "../src/AgentError.ts"
import * as TaskAgent from "../src/TaskAgent.ts"
import type * as TaskAgentConfig from "../src/TaskAgentConfig.ts"
import { TaskPipe } from "../src/TaskPipe.ts"

const numberIn = (meta: unknown, key: string): number =>
  Predicate.hasProperty(meta, key) && Predicate.isNumber(meta[key]) ? meta[key] : 0

// Deliberately outside Effect: this is the blocking user code the agent must survive.
const blockFor = (ms: number) => {
  const until = performance.now() + ms
  while (performance.now() < until) {
    // spin
  }
}

const handle = (agent: TaskAgent.TaskAgent["Service"], task: TaskAgent.Task) => {
  switch (task.name) {
    case "double":
      return agent.submitResult(
        task.taskId,
        task.data.map((b) => b * 2),
      )
    case "grow":
      return agent.submitResult(
        task.taskId,
        Uint8Array.from({ length: numberIn(task.meta, "bytes") }, (_, i) => i % 251),
      )
    case "wait":
      return Effect.sleep(numberIn(task.meta, "ms")).pipe(Effect.andThen(agent.submitResult(task.taskId, task.data)))
    case "block":
      return Effect.sync(() => blockFor(numberIn(task.meta, "ms"))).pipe(
        Effect.andThen(agent.submitResult(task.taskId, task.data)),
      )
    default:
      return agent.failTask(task.taskId, `unknown task ${task.name}`)
  }
}

export const serve = (pipe: Layer.Layer<TaskPipe, PipeClosed>, options: TaskAgentConfig.Input) =>
  Effect.gen(function* () {
    const agent = yield* TaskAgent.make(yield* TaskPipe, options)
    while (true) {
      const task = yield* agent.getTask()
      yield* handle(agent, task)
    }
  }).pipe(
    Effect.scoped,
    Effect.provide(pipe),
    Effect.catchTag(["AgentClosed", "PeerGone"], () => Effect.void),
  )
