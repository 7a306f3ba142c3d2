/**
 * What every scenario shares: its name and summary, and `run`, which plays
 * one seeded run against real processes and returns its `RunRecord`.
 *
 * @since 0.1.0
 */
import { Effect, type FileSystem, Schema, type Scope } from "effect"
import type { ChildProcessSpawner } from "effect/process"
import type * as Run from "../Run.ts"
import type { ReferenceRound, RunRecord } from "../RunRecord.ts"

/**
 * The scenario cannot run on this machine (no network namespaces): why.
 *
 * @since 0.1.0
 * @category errors
 */
export class Skipped extends Schema.TaggedError<Skipped>()("Skipped", { reason: Schema.String }) {}

/**
 * What a run gets from the campaign: its seed, the federation secret, the
 * garbage frames to send (the `garbage` scenario), and `reference(settings)`,
 * the rounds of an undisturbed run with the same settings (computed once per
 * campaign and settings).
 *
 * @since 0.1.0
 * @category models
 */
export interface Context {
  readonly seed: number
  readonly secret: string
  readonly garbageFrames: number
  readonly reference: (settings: Run.Settings) => Effect.Effect<ReadonlyArray<ReferenceRound>>
}

/**
 * The services a scenario runs on.
 *
 * @since 0.1.0
 * @category models
 */
export type Requirements = Scope.Scope | ChildProcessSpawner.ChildProcessSpawner | FileSystem.FileSystem

/**
 * A scenario of the campaign.
 *
 * @since 0.1.0
 * @category models
 */
export interface Scenario {
  readonly name: string
  readonly summary: string
  readonly run: (context: Context) => Effect.Effect<RunRecord, Skipped, Requirements>
}

/**
 * Sleeps `ms` milliseconds (a fault's offset from its anchor event).
 *
 * @since 0.1.0
 * @category timing
 */
export const pause = (ms: number): Effect.Effect<void> => Effect.sleep(Math.max(0, Math.round(ms)))
