#!/usr/bin/env node
/**
 * `fedguard-sim` (`npm run sim -- [--clients 1000] [--rounds 100] [--seed S]`):
 * one deterministic whole-federation simulation (see `Simulation`). Prints
 * what it found, then, as its last stdout line, one JSON object:
 * `{"bench":"sim","clients":…,"rounds":…,"wallMs":…,"eventLogSha256":"…",…}`.
 *
 * Exit codes: 0 the run finished with no invariant violated, 1 otherwise,
 * 2 bad usage.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cli } from "@fedguard/app-kit"
import { Clock, Console, Effect, FileSystem, Option, Schema } from "effect"
import { Command, Flag } from "effect/cli"
import * as Simulation from "./Simulation.ts"

const positive = (name: string, description: string, fallback: number) =>
  Flag.Int(name).pipe(
    Flag.withSchema(Schema.Int.pipe(Schema.check(Schema.isGreaterThan(0)))),
    Flag.withDescription(`${description} (default ${fallback})`),
    Flag.withDefault(fallback),
  )

const fraction = (name: string, description: string, fallback: number) =>
  Flag.Finite(name).pipe(
    Flag.withSchema(Schema.Finite.pipe(Schema.check(Schema.isBetween({ minimum: 0, maximum: 1 })))),
    Flag.withDescription(`${description} (default ${fallback})`),
    Flag.withDefault(fallback),
  )

const lines = (result: Simulation.Result, wallMs: number): ReadonlyArray<string> => [
  `sim: ${result.clients} clients × ${result.rounds} rounds, seed ${result.seed}: server ${result.serverOutcome}, ${result.roundsCompleted} rounds committed, paused before ${result.roundsPaused.length === 0 ? "none" : `round(s) ${result.roundsPaused.join(", ")}`}`,
  `  wall ${wallMs} ms; virtual ${(result.virtualMs / 1000).toFixed(1)} s; final accuracy ${result.finalAccuracy.toFixed(4)}`,
  `  faults: ${JSON.stringify(result.faults)}; client ends: ${JSON.stringify(result.clientEnds)}`,
  `  silence → offline (timeout ${result.heartbeatTimeoutMs} ms): ${JSON.stringify(result.detection.silenceToOffline)}`,
  `  fault → offline by kind: ${JSON.stringify(result.detection.faultToOffline)}; never detected: ${JSON.stringify(result.detection.undetected)}`,
  `  exclusions by reason: ${JSON.stringify(result.exclusions)}`,
  `  invariant violations: ${result.violations.length}${result.violations
    .slice(0, 10)
    .map((v) => `\n    ${v.invariant}: ${v.detail}`)
    .join("")}`,
  `  event log: ${result.eventLogLines} lines, ${result.eventLogBytes} bytes, sha256 ${result.eventLogSha256}`,
]

const sim = Command.make(
  "fedguard-sim",
  {
    clients: positive("clients", "Simulated clients", 1000),
    rounds: positive("rounds", "Rounds", 100),
    seed: Flag.Int("seed").pipe(
      Flag.withDescription("Seed of the faults, the model and the jitter (default 1)"),
      Flag.withDefault(1),
    ),
    faultRate: fraction("fault-rate", "Faults per client and round", 0.003),
    outage: fraction("outage", "Fraction of the clients partitioned at once at 40 % of the run", 0.45),
    eventLog: Flag.String("event-log").pipe(
      Flag.withDescription("Write the event log (JSON lines, virtual time) to this file"),
      Flag.optional,
    ),
  },
  (options) =>
    Effect.gen(function* () {
      const started = yield* Clock.currentTimeMillis
      const result = yield* Simulation.run(options)
      const wallMs = (yield* Clock.currentTimeMillis) - started
      if (Option.isSome(options.eventLog)) {
        const fs = yield* FileSystem.FileSystem
        yield* fs.writeFileString(options.eventLog.value, result.eventLog)
      }
      for (const line of lines(result, wallMs)) yield* Console.error(line)
      const { violations, detection, eventLog: _log, clients, rounds, eventLogSha256, ...figures } = result
      yield* Console.log(
        JSON.stringify({
          bench: "sim",
          clients,
          rounds,
          wallMs,
          eventLogSha256,
          ...figures,
          detection,
          violations: violations.length,
        }),
      )
      if (!result.finished || violations.length > 0)
        return yield* Effect.fail(new SimFailed({ violations: violations.length }))
    }),
).pipe(
  Command.withDescription("Deterministic whole-federation simulation over the in-memory transport on the TestClock"),
)

class SimFailed extends Schema.TaggedError<SimFailed>()("SimFailed", { violations: Schema.Number }) {}

NodeRuntime.runMain(Cli.run(sim, "0.1.0").pipe(Effect.provide(NodeServices.layer)), {
  disableErrorReporting: true,
  teardown: (exit, onExit) => {
    const code = exit._tag === "Success" ? 0 : 1
    onExit(code)
    process.exit(code)
  },
})
