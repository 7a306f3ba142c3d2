/**
 * The data this client trains on and how: its shard (the MNIST training
 * split cut exactly as every other process with the same seed cuts it, by
 * default) and the local training of a round's model on it. Both come from
 * the `Workload` in context, so a simulation swaps them without touching the
 * client.
 *
 * @since 0.2.0
 */
import { type Dataset, type Model, type Training, Workload } from "@fedguard/federation"
import { Context, Effect, type FileSystem, Layer, type Path } from "effect"
import { LocalDataUnavailable, type TrainerLost } from "./ClientError.ts"
import type { ClientSettings } from "./ClientSettings.ts"

/**
 * The shard's size (`samples`, declared at join) and `train`, which trains a
 * round's global model on the shard (see `Workload.LocalWork`). With
 * `--trainer thread` (`TrainerThread`) training runs in a worker thread and
 * may also fail with `TrainerLost` (the worker crashed or hung on every
 * attempt): that round is lost, not the session.
 *
 * @since 0.2.0
 * @category services
 */
export class LocalData extends Context.Service<
  LocalData,
  {
    readonly samples: Workload.LocalWork["samples"]
    readonly train: (
      ...args: Parameters<Workload.LocalWork["train"]>
    ) => Effect.Effect<Training.Trained, Training.InvalidTrainingOptions | Model.ParamCountMismatch | TrainerLost>
  }
>()("@fedguard/fed-client/LocalData") {}

/**
 * The settings that decide the shard; they must match the server's.
 *
 * @since 0.2.0
 * @category models
 */
export type ShardSettings = Pick<ClientSettings, "seed" | "partition" | "shardCount" | "shardIndex">

/**
 * Loads the shard through the `Workload` in context: by default MNIST,
 * split with the federation's seed, shard `shardIndex` of `shardCount`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const load = (
  settings: ShardSettings,
): Effect.Effect<LocalData["Service"], LocalDataUnavailable, FileSystem.FileSystem | Path.Path> =>
  Workload.Workload.use((workload) => workload.loadLocal(settings)).pipe(
    Effect.map(LocalData.of),
    Effect.mapError((error) => new LocalDataUnavailable({ reason: error.message })),
  )

/**
 * {@link load} as a Layer: the data is read once, when the Layer is built.
 *
 * @since 0.2.0
 * @category layers
 */
export const layer = (
  settings: ShardSettings,
): Layer.Layer<LocalData, LocalDataUnavailable, FileSystem.FileSystem | Path.Path> =>
  Layer.effect(LocalData, load(settings))

/**
 * Given data instead of MNIST, for tests: a few synthetic samples train in
 * microseconds (with the MNIST models' SGD). The shard is every sample
 * unless given.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerTest = (train: Dataset.Dataset, shard?: Uint32Array): Layer.Layer<LocalData> =>
  Layer.succeed(LocalData, LocalData.of(Workload.localWorkOf(train, shard)))
