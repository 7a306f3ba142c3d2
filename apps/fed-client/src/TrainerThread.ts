/**
 * Local training in a `worker_threads` worker (`--trainer thread`, the
 * default): the client's `LocalData` whose `train` hands each round to a
 * worker through `@fedguard/supervisor`'s task agent (NVIDIA FLARE's
 * `FlareAgent` pattern) and waits for its weights, so the session fiber that
 * beats to the server never waits for a training step, and training runs on
 * a second core.
 *
 * - The worker (`internal/trainerWorker.ts`, `dist/internal/trainerWorker.js`
 *   when built) loads the client's shard itself (the default `Workload`,
 *   MNIST) and trains with the same `LocalWork.train` as `--trainer inline`:
 *   the same seed gives bit-identical weights. The global model goes to the
 *   worker as one copy (the caller's array is left as it is); the trained
 *   weights come back moved, not copied.
 * - Liveness: heartbeats both ways over the task pipe. A worker that exits
 *   is noticed at once, one silent for the trainer timeout (a training step
 *   that blocks its thread longer, a hang) is declared gone (`PeerGone`);
 *   either way it is terminated and a fresh one started, which loads the
 *   shard again (`TrainerRestarted`), and the round is tried again on it, at
 *   most `retries` times (default 1). A round lost on every attempt fails
 *   `TrainerLost`: the trainer publishes `TrainingFailed` and uploads
 *   nothing, so the server excludes the client from that round at its
 *   timeout. Never a silent hang.
 * - A training error (`InvalidTrainingOptions`, `ParamCountMismatch`) comes
 *   back typed, as inline; the worker stays.
 *
 * A `Workload` other than the default in context cannot cross into the
 * worker (a separate isolate), so {@link layer} refuses it with
 * `LocalDataUnavailable`: use `--trainer inline` (or `LocalData.layer`).
 *
 * @since 0.5.0
 */
import { existsSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { type Model, Workload } from "@fedguard/federation"
import { TaskExchanger, TaskPipe } from "@fedguard/supervisor"
import { Deferred, Effect, Exit, type FileSystem, Layer, type Path, Ref, Result, Scope, Semaphore } from "effect"
import { LocalDataUnavailable, TrainerLost } from "./ClientError.ts"
import * as ClientEvent from "./ClientEvent.ts"
import { ClientEvents } from "./ClientEvents.ts"
import type { ClientSettings } from "./ClientSettings.ts"
import * as Protocol from "./internal/trainerProtocol.ts"
import * as LocalData from "./LocalData.ts"

/**
 * The worker's entry point: `internal/trainerWorker.js` beside this module
 * in the built package (`dist`), or the `.ts` source when this module runs
 * from `src` (the tests; Node strips the types).
 *
 * @since 0.5.0
 * @category constants
 */
export const workerFile: URL = ((): URL => {
  const built = new URL("./internal/trainerWorker.js", import.meta.url)
  return existsSync(fileURLToPath(built)) ? built : new URL("./internal/trainerWorker.ts", import.meta.url)
})()

/**
 * Options of {@link make}:
 *
 * | option | default | meaning |
 * | --- | --- | --- |
 * | `id` | required | the client's id, in the events |
 * | `shard` | required | which shard the worker loads (`LocalData.ShardSettings`) |
 * | `timeout` | required | milliseconds of silence after which a worker is gone (`--trainer-timeout`) |
 * | `retries` | 1 | fresh workers a round is tried again on after its worker was lost |
 * | `faults` | none | `blockTraining` (`--fault-block-training`), `crashTraining` (round whose first attempt kills the worker; tests) |
 * | `workerFile` | {@link workerFile} | the worker's entry point |
 *
 * @since 0.5.0
 * @category models
 */
export interface Options {
  readonly id: string
  readonly shard: LocalData.ShardSettings
  readonly timeout: number
  readonly retries?: number | undefined
  readonly faults?: Protocol.Faults | undefined
  readonly workerFile?: string | URL | undefined
}

// One running worker: its Scope (closing it terminates the thread), its exchanger, and why it
// went away once it did.
interface Running {
  readonly scope: Scope.Closeable
  readonly exchanger: TaskExchanger.TaskExchanger["Service"]
  readonly samples: number
  readonly gone: Deferred.Deferred<string>
}

/**
 * The task agent's settings for a trainer timeout of `timeoutMs`: the
 * worker is gone after `timeoutMs` of silence; heartbeats every quarter of
 * it (at most 5 s); a starting worker (a fresh isolate loading its modules)
 * gets at least 30 s; a result up to 256 MiB travels in one transferred
 * message.
 *
 * @since 0.5.0
 * @category constructors
 */
export const agentSettings = (timeoutMs: number) =>
  ({
    heartbeatInterval: Math.max(1, Math.min(5_000, Math.floor(timeoutMs / 4))),
    peerTimeout: timeoutMs,
    startTimeout: Math.max(timeoutMs, 30_000),
    chunkBytes: 256 * 1024 * 1024,
  }) as const

// Starts a worker in a child Scope of `parent` and loads the shard in it; on any failure the
// worker is terminated and the reason returned as the error.
const startWorker = (options: Options, parent: Scope.Scope): Effect.Effect<Running, string> =>
  Effect.gen(function* () {
    const scope = yield* Scope.fork(parent)
    const settings = agentSettings(options.timeout)
    return yield* Effect.gen(function* () {
      const pipe = yield* TaskPipe.spawnWorker(options.workerFile ?? workerFile, { workerData: settings })
      const exchanger = yield* TaskExchanger.make(pipe, settings)
      const loaded = yield* exchanger.run({
        name: "load",
        data: new Uint8Array(0),
        meta: { ...options.shard, faults: options.faults ?? {} },
      })
      const samples = Protocol.decodeSamples(loaded)
      if (samples === undefined) return yield* Effect.fail(`load: a result of ${loaded.byteLength} bytes, not 4`)
      const gone = yield* Deferred.make<string>()
      yield* Effect.forkScoped(
        Effect.catch(exchanger.ended, (error) => Deferred.succeed(gone, `${error._tag}: ${error.message}`)),
      )
      return { scope, exchanger, samples, gone } satisfies Running
    }).pipe(
      Scope.provide(scope),
      Effect.mapError((error) => (typeof error === "string" ? error : `${error._tag}: ${error.message}`)),
      Effect.onError((cause) => Scope.close(scope, Exit.failCause(cause))),
    )
  })

// One attempt at a round on `worker`: the weights, a typed training error, or why the worker
// must be replaced (`Result.fail`).
const attempt = (
  worker: Running,
  model: Model.Name,
  params: Float32Array,
  options: Parameters<LocalData.LocalData["Service"]["train"]>[2],
  index: number,
) =>
  Effect.gen(function* () {
    const ran = yield* worker.exchanger
      .run(
        { name: "train", data: Protocol.encodeParams(params), meta: Protocol.trainMeta(model, options, index) },
        { transfer: true },
      )
      .pipe(Effect.result)
    if (Result.isSuccess(ran)) {
      return yield* Protocol.decodeTrained(ran.success, params.length).pipe(
        Effect.map(Result.succeed),
        Effect.catch((reason) => Effect.succeed(Result.fail(`the worker's result: ${reason}`))),
      )
    }
    const error = ran.failure
    if (error._tag !== "TaskFailed") return Result.fail<string>(`${error._tag}: ${error.message}`)
    // A training error comes back typed, as inline; anything else the worker refused is a worker fault.
    const failure = yield* Effect.option(Protocol.decodeTrainFailure(error.reason))
    if (failure._tag === "Some") return yield* Effect.fail(failure.value)
    return Result.fail<string>(`the worker refused the round: ${error.reason}`)
  })

/**
 * Starts the first worker in the current Scope, loads the shard in it (a
 * failure is `LocalDataUnavailable`), and returns the `LocalData` whose
 * `train` runs there. Rounds run one at a time; workers live until the
 * Scope closes (each is terminated then, even one stuck in a loop).
 *
 * @since 0.5.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (
  options: Options,
): Effect.fn.Return<LocalData.LocalData["Service"], LocalDataUnavailable, Scope.Scope | ClientEvents> {
  const events = yield* ClientEvents
  const parent = yield* Effect.scope
  const first = yield* startWorker(options, parent).pipe(
    Effect.mapError((reason) => new LocalDataUnavailable({ reason: `training worker: ${reason}` })),
  )
  const current = yield* Ref.make<Running | string>(first)
  const restarts = yield* Ref.make(0)
  const lock = yield* Semaphore.make(1)

  // The running worker, or a fresh one when the last went away (why: the exchanger's end, or the
  // failed attempt's reason).
  const ensure = Effect.gen(function* () {
    const state = yield* Ref.get(current)
    if (typeof state !== "string" && !(yield* Deferred.isDone(state.gone))) return state
    const reason = typeof state === "string" ? state : yield* Deferred.await(state.gone)
    if (typeof state !== "string") yield* Scope.close(state.scope, Exit.void)
    const fresh = yield* startWorker(options, parent).pipe(
      Effect.tapError((failed) => Ref.set(current, `a fresh worker failed: ${failed}`)),
    )
    yield* Ref.set(current, fresh)
    const count = yield* Ref.updateAndGet(restarts, (n) => n + 1)
    yield* events.publish(new ClientEvent.TrainerRestarted({ id: options.id, reason, restarts: count }))
    return fresh
  })

  const lose = (worker: Running, reason: string) =>
    Effect.andThen(Scope.close(worker.scope, Exit.void), Ref.set(current, reason))

  const train: LocalData.LocalData["Service"]["train"] = (model, params, round) =>
    Effect.gen(function* () {
      const tries = 1 + (options.retries ?? 1)
      let reason = ""
      for (let index = 0; index < tries; index++) {
        const worker = yield* Effect.result(ensure)
        if (Result.isFailure(worker)) {
          reason = worker.failure
          continue
        }
        const outcome = yield* attempt(worker.success, model, params, round, index)
        if (Result.isSuccess(outcome)) return outcome.success
        reason = outcome.failure
        yield* lose(worker.success, reason)
      }
      return yield* new TrainerLost({ round: round.round, attempts: tries, reason })
    }).pipe(lock.withPermit)

  return LocalData.LocalData.of({ samples: first.samples, train })
})

/**
 * {@link make} as the client's `LocalData` from its settings: the shard
 * settings, `--trainer-timeout` and `--fault-block-training`. Fails with
 * `LocalDataUnavailable` when the worker cannot load the shard, or when a
 * `Workload` other than the default is in context.
 *
 * @since 0.5.0
 * @category layers
 */
export const layer = (
  settings: Pick<
    ClientSettings,
    "id" | "seed" | "partition" | "shardCount" | "shardIndex" | "trainerTimeout" | "faultBlockTraining"
  >,
): Layer.Layer<LocalData.LocalData, LocalDataUnavailable, ClientEvents> =>
  Layer.effect(
    LocalData.LocalData,
    Effect.gen(function* () {
      if ((yield* Workload.Workload) !== Workload.mnist) {
        return yield* new LocalDataUnavailable({
          reason: "--trainer thread trains the default MNIST workload in its worker; use --trainer inline",
        })
      }
      return yield* make({
        id: settings.id,
        shard: settings,
        timeout: settings.trainerTimeout,
        faults: settings.faultBlockTraining === undefined ? {} : { blockTraining: settings.faultBlockTraining },
      })
    }),
  )

/**
 * The client's `LocalData` as `--trainer` says: {@link layer} for
 * `thread`, `LocalData.layer` for `inline` (with `--fault-block-training`
 * applied to the same training code as in the worker).
 *
 * @since 0.5.0
 * @category layers
 */
export const layerFor = (
  settings: ClientSettings,
): Layer.Layer<LocalData.LocalData, LocalDataUnavailable, ClientEvents | FileSystem.FileSystem | Path.Path> =>
  settings.trainer === "thread"
    ? layer(settings)
    : Layer.effect(
        LocalData.LocalData,
        Effect.map(LocalData.load(settings), (local) => Protocol.withBlock(local, settings.faultBlockTraining)),
      )
