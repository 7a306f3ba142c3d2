/**
 * Where the client trains, and the training faults the tests and the demo
 * inject: the settings fields this module adds to `ClientSettings`.
 *
 * - `--trainer thread` (the default): each round trains in a
 *   `worker_threads` worker through `@fedguard/supervisor`'s task agent
 *   (`TrainerThread`), so nothing a training step does can hold the
 *   session's heartbeats; `--trainer inline`: in a fiber of the client's own
 *   event loop, as before (a training step that blocks the thread silences
 *   the heartbeats).
 * - `--trainer-timeout` (default 60 s): a training worker silent for this
 *   long (a training step that blocks its thread longer, a hang) is declared
 *   gone and replaced by a fresh one; a worker that exits is noticed at once.
 * - `--fault-block-training MS@ROUND`: in round ROUND, training blocks its
 *   thread with a synchronous busy loop of MS milliseconds before it trains,
 *   as a user's native binding or tight loop would; every attempt at that
 *   round does.
 *
 * @since 0.5.0
 */
import { Settings } from "@fedguard/app-kit"
import { Effect, Schema, SchemaGetter } from "effect"

/**
 * A training block: `ms` milliseconds of busy loop before round `round`
 * trains.
 *
 * @since 0.5.0
 * @category models
 */
export interface BlockTraining {
  readonly ms: number
  readonly round: number
}

const BlockTrainingValue = Schema.Struct({
  ms: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 3_600_000 })),
  round: Schema.Int.check(Schema.isBetween({ minimum: 1, maximum: 1_000_000 })),
})

/**
 * `MS@ROUND` (`3000@2`: block 3 s before training round 2), decoded to a
 * {@link BlockTraining}; MS from 1 to 3,600,000, ROUND from 1.
 *
 * @since 0.5.0
 * @category schemas
 */
export const BlockTrainingFromString: Schema.Codec<BlockTraining, string> = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^\d{1,7}@\d{1,7}$/, { message: "expected MS@ROUND, e.g. 3000@2" })),
  Schema.decodeTo(BlockTrainingValue, {
    decode: SchemaGetter.transform((input: string) => {
      const [ms, round] = input.split("@")
      return { ms: Number(ms), round: Number(round) }
    }),
    encode: SchemaGetter.transform((block: BlockTraining) => `${block.ms}@${block.round}`),
  }),
)

/**
 * The settings fields this module adds to `ClientSettings` (spread into its
 * struct): `trainer` (`"thread"` by default), `trainerTimeout`
 * (milliseconds, default 60 s) and `faultBlockTraining` (none unless given).
 *
 * @since 0.5.0
 * @category settings
 */
export const fields = {
  trainer: Schema.Literals(["thread", "inline"]).pipe(Schema.withDecodingDefaultKey(Effect.succeed("thread" as const))),
  trainerTimeout: Settings.positiveMillis("60s"),
  faultBlockTraining: Schema.optionalKey(BlockTrainingFromString),
}

/**
 * The `--help` lines of {@link fields}.
 *
 * @since 0.5.0
 * @category settings
 */
export const descriptions = {
  trainer:
    "thread: train in a worker thread, so a blocking training step never silences the heartbeats; inline: in the client's own event loop (default thread)",
  trainerTimeout:
    "A training worker silent this long (a step that blocks its thread longer, a hang) is replaced by a fresh one and the round retried once (default 60s)",
  faultBlockTraining:
    "Fault injection (tests, the demo): MS@ROUND blocks the training thread with a busy loop of MS milliseconds before round ROUND trains",
} as const

/**
 * The trainer settings, as `ClientSettings` decodes them.
 *
 * @since 0.5.0
 * @category settings
 */
export type TrainerSettings = {
  readonly trainer: "thread" | "inline"
  readonly trainerTimeout: number
  readonly faultBlockTraining?: BlockTraining | undefined
}
