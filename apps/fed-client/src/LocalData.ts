/**
 * The data this client trains on: the MNIST training split and the indices
 * of its own shard, cut exactly as every other process with the same seed
 * cuts them.
 *
 * @since 0.2.0
 */
import { Dataset, Mnist, Partition } from "@fedguard/federation"
import { Context, Effect, type FileSystem, Layer, type Path } from "effect"
import { LocalDataUnavailable } from "./ClientError.ts"
import type { ClientSettings } from "./ClientSettings.ts"

/**
 * The training split (`train`) and this client's sample indices into it
 * (`shard`).
 *
 * @since 0.2.0
 * @category services
 */
export class LocalData extends Context.Service<
  LocalData,
  {
    readonly train: Dataset.Dataset
    readonly shard: Uint32Array
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
 * Loads MNIST, splits it with the federation's seed and cuts out shard
 * `shardIndex` of `shardCount`.
 *
 * @since 0.2.0
 * @category constructors
 */
export const load = (
  settings: ShardSettings,
): Effect.Effect<LocalData["Service"], LocalDataUnavailable, FileSystem.FileSystem | Path.Path> =>
  Effect.gen(function* () {
    const data = yield* Mnist.load
    const { train } = yield* Dataset.split(data, { seed: settings.seed })
    const shard = yield* Partition.shard(train, {
      kind: settings.partition,
      clients: settings.shardCount,
      seed: settings.seed,
      index: settings.shardIndex,
    })
    return LocalData.of({ train, shard })
  }).pipe(Effect.mapError((error) => new LocalDataUnavailable({ reason: error.message })))

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
 * microseconds. The shard is every sample unless given.
 *
 * @since 0.2.0
 * @category layers
 */
export const layerTest = (train: Dataset.Dataset, shard?: Uint32Array): Layer.Layer<LocalData> =>
  Layer.succeed(
    LocalData,
    LocalData.of({ train, shard: shard ?? Uint32Array.from({ length: train.count }, (_, i) => i) }),
  )
