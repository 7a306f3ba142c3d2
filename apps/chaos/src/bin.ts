#!/usr/bin/env node
/**
 * `fedguard-chaos` (`npm run chaos -- [--seeds 20] [--scenario NAME] [--seed S]`):
 * seeded chaos campaigns over real fed-server and fed-client processes on
 * 127.0.0.1, each run checked against the invariants.
 *
 * Exit codes: 0 no violation, 1 a violation (or a failure of the campaign),
 * 2 bad usage.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cli } from "@fedguard/app-kit"
import { Cause, Effect, Exit, Option, Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Campaign from "./Campaign.ts"
import * as Invariants from "./Invariants.ts"

/**
 * The campaign found at least one violation.
 *
 * @since 0.1.0
 * @category errors
 */
export class ViolationsFound extends Schema.TaggedError<ViolationsFound>()("ViolationsFound", {
  violations: Schema.Int,
}) {
  override get message(): string {
    return `${this.violations} invariant violation(s); each failing seed above has its replay command`
  }
}

const positive = Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))
const names = Campaign.scenarios.map((s) => s.name)

const chaos = Command.make(
  "fedguard-chaos",
  {
    seeds: Flag.Int("seeds").pipe(
      Flag.withSchema(positive),
      Flag.withDescription("Runs (seeds) per scenario (default 20)"),
      Flag.withDefault(20),
    ),
    firstSeed: Flag.Int("first-seed").pipe(Flag.withDescription("The first seed (default 1)"), Flag.withDefault(1)),
    seed: Flag.Int("seed").pipe(Flag.withDescription("Run this one seed only (replays a failing run)"), Flag.optional),
    scenario: Flag.Literals("scenario", names).pipe(
      Flag.withDescription(`Scenario to run (repeatable; default all): ${names.join(", ")}`),
      Flag.atLeast(0),
    ),
    garbageFrames: Flag.Int("garbage-frames").pipe(
      Flag.withSchema(positive),
      Flag.withDescription("Frames each garbage run sends while the clients train (default 100000)"),
      Flag.withDefault(100_000),
    ),
    recordDir: Flag.String("record-dir").pipe(
      Flag.withDescription(
        "Write each failing run's record (its server events, faults, exits) to this directory as JSON",
      ),
      Flag.optional,
    ),
    rssLimit: Flag.Int("rss-limit-mib").pipe(
      Flag.withSchema(positive),
      Flag.withDescription("The server's RSS limit, MiB (default 1024)"),
      Flag.withDefault(1024),
    ),
  },
  (options) =>
    Effect.gen(function* () {
      const seeds = Option.match(options.seed, {
        onSome: (seed) => [seed],
        onNone: () => Array.from({ length: options.seeds }, (_, i) => options.firstSeed + i),
      })
      const frames = options.garbageFrames === 100_000 ? "" : ` --garbage-frames ${options.garbageFrames}`
      const result = yield* Campaign.run({
        seeds,
        scenarios: options.scenario,
        garbageFrames: options.garbageFrames,
        limits: { ...Invariants.defaultLimits, rssLimitBytes: options.rssLimit * 1024 * 1024 },
        replayPrefix: `npm run chaos --${frames}`,
        recordDir: Option.getOrUndefined(options.recordDir),
      })
      if (result.violations > 0) return yield* new ViolationsFound({ violations: result.violations })
    }),
).pipe(Command.withDescription("Seeded chaos campaigns over real fed-server and fed-client processes"))

const program = Cli.run(chaos, "0.1.0").pipe(Effect.provide(NodeServices.layer))

NodeRuntime.runMain(program, {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = Exit.isSuccess(exit)
      ? 0
      : Cause.hasInterruptsOnly(exit.cause)
        ? 130
        : Option.match(Cause.findErrorOption(exit.cause), {
            onNone: () => 1,
            onSome: (error) =>
              CliError.isCliError(error) ? (error._tag === "ShowHelp" && error.errors.length === 0 ? 0 : 2) : 1,
          })
    onExit(code)
    process.exit(code)
  },
})
