/**
 * A campaign: every chosen scenario, run once per seed against real
 * processes, each run checked by `Invariants.check` as soon as it ends. It
 * prints a line per run (with the exact command that replays a failing
 * seed), a table per scenario, and one JSON line last:
 * `{"bench":"chaos","runs":…,"violations":…,"scenarios":{…}}`.
 *
 * @since 0.1.0
 */
import { Console, Effect, FileSystem, Option } from "effect"
import { ChildProcessSpawner } from "effect/process"
import * as Fleet from "./Fleet.ts"
import * as Invariants from "./Invariants.ts"
import * as Run from "./Run.ts"
import type { ReferenceRound, RunRecord } from "./RunRecord.ts"
import * as Garbage from "./scenarios/Garbage.ts"
import * as Impostors from "./scenarios/Impostors.ts"
import * as KillClients from "./scenarios/KillClients.ts"
import * as KillServer from "./scenarios/KillServer.ts"
import * as Partition from "./scenarios/Partition.ts"
import type * as Scenario from "./scenarios/Scenario.ts"
import * as StopClients from "./scenarios/StopClients.ts"

/**
 * Every scenario, in the order a campaign runs them.
 *
 * @since 0.1.0
 * @category scenarios
 */
export const scenarios: ReadonlyArray<Scenario.Scenario> = [
  KillClients.scenario,
  StopClients.scenario,
  KillServer.scenario,
  Garbage.scenario,
  Impostors.scenario,
  Partition.scenario,
]

/**
 * What to run: `seeds` (the seeds `firstSeed` … `firstSeed + seeds - 1`) of
 * each scenario named in `scenarios` (all when empty); `garbageFrames`, the
 * frames each garbage run sends while its clients train (the bin's default
 * is 100,000; it also sets the run's rounds, see `Garbage.settingsFor`);
 * the invariants' `limits`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly seeds: ReadonlyArray<number>
  readonly scenarios: ReadonlyArray<string>
  readonly garbageFrames: number
  readonly limits: Invariants.Limits
  /** Printed before the seed in a replay command (`npm run chaos --`). */
  readonly replayPrefix: string
  /**
   * A directory to write each failing run's `RunRecord` to, as
   * `<scenario>-seed-<seed>.json` (every server event with its time, the
   * faults, how each process ended): the evidence behind its violations.
   */
  readonly recordDir?: string | undefined
}

/**
 * One scenario's figures: runs, violations, detection latencies (ms) at the
 * 50th and 99th percentile against the heartbeat timeout, rounds completed,
 * peak server RSS, the scenario's own counts (summed, and their least and
 * most in one run), and the failing seeds.
 *
 * @since 0.1.0
 * @category models
 */
export interface Summary {
  readonly runs: number
  readonly violations: number
  readonly skipped?: string | undefined
  readonly detectionP50Ms: number | null
  readonly detectionP99Ms: number | null
  readonly detections: number
  readonly heartbeatTimeoutMs: number
  readonly roundsCompleted: number
  readonly roundsPlanned: number
  readonly peakRssMiB: number
  readonly failingSeeds: ReadonlyArray<number>
  /** The scenario's counts, summed over its runs. */
  readonly notes: Readonly<Record<string, number>>
  /** The least and the most of each count in one run. */
  readonly noteRanges: Readonly<Record<string, { readonly min: number; readonly max: number }>>
  readonly wallSeconds: number
}

/**
 * The p-th percentile (nearest rank) of `values`; null when empty.
 *
 * @since 0.1.0
 * @category statistics
 */
export const percentile = (values: ReadonlyArray<number>, p: number): number | null => {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

const secret = "chaos-campaign-secret"

// The rounds of an undisturbed run of `settings`, once per settings in a campaign.
const referenceOf =
  (cache: Map<string, ReadonlyArray<ReferenceRound>>, spawner: ChildProcessSpawner.ChildProcessSpawner["Service"]) =>
  (settings: Run.Settings) =>
    Effect.gen(function* () {
      const key = Run.serverFlags(settings).join(" ")
      const cached = cache.get(key)
      if (cached !== undefined) return cached
      const rounds = yield* Effect.gen(function* () {
        const run = yield* Run.make(settings, secret)
        yield* Run.startAll(run)
        yield* run.finish
        return run
          .server()
          .life()
          .events.flatMap(({ event }) =>
            event._tag === "RoundCompleted"
              ? [
                  {
                    round: event.round,
                    participants: event.participants,
                    modelSha256: event.modelSha256,
                    testAccuracy: event.testAccuracy,
                  },
                ]
              : [],
          )
      }).pipe(Effect.scoped, Effect.provideService(ChildProcessSpawner.ChildProcessSpawner, spawner))
      cache.set(key, rounds)
      return rounds
    })

/**
 * The campaign's reference runs: an undisturbed run per settings, run the
 * first time a scenario asks for it and kept for the campaign.
 *
 * @since 0.1.0
 * @category running
 */
export const references: Effect.Effect<
  (settings: Run.Settings) => Effect.Effect<ReadonlyArray<ReferenceRound>>,
  never,
  ChildProcessSpawner.ChildProcessSpawner
> = Effect.gen(function* () {
  return referenceOf(new Map(), yield* ChildProcessSpawner.ChildProcessSpawner)
})

const unfinished = (scenario: string, seed: number, bound: number): Invariants.Outcome => ({
  violations: [
    { invariant: "run-unfinished", detail: `${scenario} seed ${seed} did not return within ${bound / 1000} s` },
  ],
  detections: [],
  roundsCompleted: 0,
})

const runOnce = (
  scenario: Scenario.Scenario,
  seed: number,
  options: Options,
  reference: (settings: Run.Settings) => Effect.Effect<ReadonlyArray<ReferenceRound>>,
) =>
  Effect.gen(function* () {
    const bound = 240_000
    const result = yield* scenario
      .run({ seed, secret, garbageFrames: options.garbageFrames, reference })
      .pipe(Effect.scoped, Effect.timeoutOption(bound), Effect.result)
    if (result._tag === "Failure") return { _tag: "Skipped" as const, reason: result.failure.reason }
    if (Option.isNone(result.success)) {
      return { _tag: "Done" as const, record: undefined, outcome: unfinished(scenario.name, seed, bound) }
    }
    const record: RunRecord = result.success.value
    return { _tag: "Done" as const, record, outcome: Invariants.check(record, options.limits) }
  })

const describeRun = (name: string, seed: number, record: RunRecord | undefined, outcome: Invariants.Outcome) => {
  const detections = outcome.detections.map((d) => `${d.id} ${d.kind} ${d.latencyMs} ms`).join(", ") || "none"
  const rounds = record === undefined ? "?" : `${outcome.roundsCompleted}/${record.settings.rounds}`
  const rss = record === undefined ? "?" : Invariants.mib(record.peakRssBytes)
  const time = record === undefined ? "?" : `${(record.durationMs / 1000).toFixed(1)} s`
  const notes = Object.entries(record?.notes ?? {})
    .map(([k, v]) => `${k} ${v}`)
    .join(", ")
  return (
    `${name} seed ${seed}: ${outcome.violations.length} violation(s), rounds ${rounds}, detections: ${detections}, ` +
    `peak RSS ${rss}, ${time}${notes === "" ? "" : `; ${notes}`}`
  )
}

/**
 * Runs one scenario over every seed and returns its summary.
 *
 * @since 0.1.0
 * @category running
 */
export const runScenario = Effect.fnUntraced(function* (
  scenario: Scenario.Scenario,
  options: Options,
  reference: (settings: Run.Settings) => Effect.Effect<ReadonlyArray<ReferenceRound>>,
) {
  const started = yield* Fleet.now
  const latencies: Array<number> = []
  const failing: Array<number> = []
  const notes: Record<string, number> = {}
  const ranges: Record<string, { min: number; max: number }> = {}
  let runs = 0
  let violations = 0
  let rounds = 0
  let planned = 0
  let peak = 0
  let timeout = 0
  for (const seed of options.seeds) {
    const result = yield* runOnce(scenario, seed, options, reference)
    if (result._tag === "Skipped") {
      yield* Console.log(`${scenario.name}: skipped: ${result.reason}`)
      return { _tag: "Skipped", skipped: result.reason } as const
    }
    const { record, outcome } = result
    runs++
    violations += outcome.violations.length
    rounds += outcome.roundsCompleted
    planned += record?.settings.rounds ?? 0
    peak = Math.max(peak, record?.peakRssBytes ?? 0)
    timeout = record?.settings.heartbeatTimeoutMs ?? timeout
    latencies.push(...outcome.detections.map((d) => d.latencyMs))
    for (const [key, value] of Object.entries(record?.notes ?? {})) {
      notes[key] = (notes[key] ?? 0) + value
      const range = ranges[key]
      ranges[key] =
        range === undefined
          ? { min: value, max: value }
          : {
              min: Math.min(range.min, value),
              max: Math.max(range.max, value),
            }
    }
    yield* Console.log(describeRun(scenario.name, seed, record, outcome))
    if (outcome.violations.length > 0) {
      failing.push(seed)
      for (const violation of outcome.violations) yield* Console.log(`  ✗ ${violation.invariant}: ${violation.detail}`)
      for (const fault of record?.faults ?? []) {
        yield* Console.log(
          `    fault ${fault.kind} ${fault.target} at ${fault.at}${fault.note ? ` (${fault.note})` : ""}`,
        )
      }
      yield* Console.log(`  replay: ${options.replayPrefix} --scenario ${scenario.name} --seed ${seed}`)
      if (options.recordDir !== undefined && record !== undefined) {
        const path = `${options.recordDir}/${scenario.name}-seed-${seed}.json`
        const fs = yield* FileSystem.FileSystem
        const written = yield* fs
          .makeDirectory(options.recordDir, { recursive: true })
          .pipe(Effect.andThen(fs.writeFileString(path, `${JSON.stringify(record, null, 1)}\n`)), Effect.result)
        yield* Console.log(
          written._tag === "Success"
            ? `  record: ${path}`
            : `  record: could not write ${path}: ${written.failure.message}`,
        )
      }
    }
  }
  return {
    _tag: "Ran",
    runs,
    violations,
    detectionP50Ms: percentile(latencies, 50),
    detectionP99Ms: percentile(latencies, 99),
    detections: latencies.length,
    heartbeatTimeoutMs: timeout,
    roundsCompleted: rounds,
    roundsPlanned: planned,
    peakRssMiB: Math.round((peak / 1024 / 1024) * 10) / 10,
    failingSeeds: failing,
    notes,
    noteRanges: ranges,
    wallSeconds: Math.round(((yield* Fleet.now) - started) / 100) / 10,
  } as const satisfies Summary & { readonly _tag: "Ran" }
})

const pad = (cells: ReadonlyArray<string>, widths: ReadonlyArray<number>) =>
  cells
    .map((cell, i) => cell.padEnd(widths[i]!))
    .join("  ")
    .trimEnd()

/**
 * The table of a campaign, one row per scenario.
 *
 * @since 0.1.0
 * @category rendering
 */
export const table = (summaries: Readonly<Record<string, Summary | { readonly skipped: string }>>): string => {
  const header = ["scenario", "runs", "violations", "detect p50/p99 (timeout)", "rounds", "peak RSS", "notes"]
  const rows = Object.entries(summaries).map(([name, s]) => {
    if (!("runs" in s)) return [name, "-", "-", "-", "-", "-", `skipped: ${s.skipped}`]
    const latency =
      s.detectionP50Ms === null ? "-" : `${s.detectionP50Ms}/${s.detectionP99Ms} ms (${s.heartbeatTimeoutMs} ms)`
    const notes = Object.entries(s.notes)
      .map(([k, v]) => {
        const range = s.noteRanges[k]
        return range === undefined || s.runs < 2 ? `${k} ${v}` : `${k} ${v} (${range.min}–${range.max} per run)`
      })
      .join(", ")
    return [
      name,
      String(s.runs),
      String(s.violations),
      latency,
      `${s.roundsCompleted}/${s.roundsPlanned}`,
      `${s.peakRssMiB} MiB`,
      notes,
    ]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)))
  return [pad(header, widths), ...rows.map((row) => pad(row, widths))].join("\n")
}

/**
 * Runs the campaign and returns its summaries by scenario, after printing
 * the table and the JSON line.
 *
 * @since 0.1.0
 * @category running
 */
export const run = Effect.fnUntraced(function* (options: Options) {
  const chosen =
    options.scenarios.length === 0 ? scenarios : scenarios.filter((s) => options.scenarios.includes(s.name))
  const reference = yield* references
  const summaries: Record<string, Summary | { readonly skipped: string }> = {}
  for (const scenario of chosen) {
    const summary = yield* runScenario(scenario, options, reference)
    if (summary._tag === "Skipped") summaries[scenario.name] = { skipped: summary.skipped }
    else {
      const { _tag, ...figures } = summary
      summaries[scenario.name] = figures
    }
  }
  const all = Object.values(summaries).filter((s): s is Summary => "runs" in s)
  const runs = all.reduce((n, s) => n + s.runs, 0)
  const violations = all.reduce((n, s) => n + s.violations, 0)
  yield* Console.log("")
  yield* Console.log(table(summaries))
  yield* Console.log(JSON.stringify({ bench: "chaos", runs, violations, scenarios: summaries }))
  return { runs, violations, summaries }
})
