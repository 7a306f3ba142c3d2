import { assert, describe, it } from "@effect/vitest"
import { Effect, Metric } from "effect"
import { TestClock } from "effect/testing"
import type { JobTransitioned, SiteExcluded } from "../src/JobEvent.ts"
import * as JobLifecycle from "../src/JobLifecycle.ts"
import * as JobMetrics from "../src/JobMetrics.ts"
import {
  ended,
  failureOf,
  isRunning,
  record,
  type Script,
  scripted,
  settle,
  siteIds,
  spec,
  successOf,
} from "./support.ts"

const DEPLOY = 60_000
const START = 30_000

const moves = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is JobTransitioned => e._tag === "JobTransitioned").map((e) => `${e.from}→${e.to}`)

const exclusions = (events: ReadonlyArray<{ readonly _tag: string }>) =>
  events.filter((e): e is SiteExcluded => e._tag === "SiteExcluded").map((e) => `${e.site}/${e.phase}: ${e.reason}`)

const setup = (
  overrides: Parameters<typeof spec>[0],
  deploy: Record<string, Script> = {},
  start: Record<string, Script> = {},
  options: JobLifecycle.Options = {},
) =>
  Effect.gen(function* () {
    const job = yield* JobLifecycle.make(
      spec({ deployTimeout: DEPLOY, startTimeout: START, ...overrides }),
      { deploy: scripted(deploy), start: scripted(start) },
      options,
    )
    const events = yield* record(job.subscribe)
    return { job, events }
  })

describe("JobLifecycle", () => {
  it.effect(
    "runs a 144-site job that loses sites at deploy and start, instead of aborting it in round 0 (FLARE #4209)",
    () =>
      Effect.gen(function* () {
        const sites = siteIds(144)
        const { job, events } = yield* setup(
          { clients: sites, minSites: 100, requiredSites: ["site-1"] },
          { "site-10": { silent: true }, "site-11": { refuse: "disk full" } },
          { "site-20": { silent: true } },
        )
        const launch = yield* Effect.forkChild(job.launch)
        yield* TestClock.adjust(DEPLOY - 1)
        assert.strictEqual(yield* job.status, "deploying")
        yield* TestClock.adjust(1)
        yield* settle
        assert.strictEqual(yield* job.status, "starting")
        yield* TestClock.adjust(START)
        const report = successOf(yield* ended(launch))
        assert.strictEqual(yield* job.status, "running")
        assert.strictEqual(report.participants.length, 141)
        assert.deepStrictEqual(moves(events), ["submitted→deploying", "deploying→starting", "starting→running"])
        const excluded = [
          "site-10/deploy: deployment timeout",
          "site-11/deploy: disk full",
          "site-20/start: start timeout",
        ]
        assert.deepStrictEqual(exclusions(events), excluded)
        assert.deepStrictEqual(
          report.excluded.map((e) => `${e.site}/${e.phase}: ${e.reason}`),
          excluded,
        )
        assert.strictEqual((events[3] as JobTransitioned).reason, "deployed to 142 of 144 site(s)")
      }),
  )

  it.effect("fails the job, and does not start it, when deployment misses the quorum", () =>
    Effect.gen(function* () {
      const { job, events } = yield* setup({}, { "site-1": { silent: true }, "site-2": { refuse: "disk full" } })
      const launch = yield* Effect.forkChild(job.launch)
      yield* TestClock.adjust(DEPLOY)
      const error = failureOf(yield* ended(launch), "QuorumNotMet")
      assert.strictEqual(error.phase, "deploy")
      assert.strictEqual(yield* job.status, "failed")
      assert.deepStrictEqual(moves(events), ["submitted→deploying", "deploying→failed"])
      assert.deepStrictEqual(exclusions(events), ["site-1/deploy: deployment timeout", "site-2/deploy: disk full"])
      failureOf(yield* Effect.exit(job.resume("retry")), "IllegalTransition")
    }),
  )

  it.effect("pauses, resumes and completes a running job; a completed job never runs again", () =>
    Effect.gen(function* () {
      const { job, events } = yield* setup({})
      yield* job.launch
      yield* job.pause("operator")
      assert.strictEqual(yield* job.status, "paused")
      failureOf(yield* Effect.exit(job.complete("done")), "IllegalTransition")
      yield* job.resume("operator")
      yield* job.complete("3 rounds done")
      const refused = failureOf(yield* Effect.exit(job.resume("again")), "IllegalTransition")
      assert.deepStrictEqual([refused.from, refused.to], ["completed", "running"])
      yield* settle
      assert.deepStrictEqual(moves(events).slice(3), ["running→paused", "paused→running", "running→completed"])
      assert.strictEqual(yield* job.status, "completed")
    }),
  )

  it.effect("aborting during deployment stops the launch at once, and an aborted job never resumes", () =>
    Effect.gen(function* () {
      const { job, events } = yield* setup({}, { "site-1": { silent: true } })
      const launch = yield* Effect.forkChild(job.launch)
      yield* TestClock.adjust(1_000)
      assert.isTrue(yield* isRunning(launch))
      yield* job.abort("operator cancelled")
      const error = failureOf(yield* ended(launch), "JobEnded")
      assert.deepStrictEqual([error.status, error.reason], ["aborted", "operator cancelled"])
      failureOf(yield* Effect.exit(job.resume("resume")), "IllegalTransition")
      yield* TestClock.adjust(DEPLOY)
      yield* settle
      assert.strictEqual(yield* job.status, "aborted")
      assert.deepStrictEqual(moves(events), ["submitted→deploying", "deploying→aborted"])
    }),
  )

  it.effect("does not launch a job twice", () =>
    Effect.gen(function* () {
      const { job } = yield* setup({})
      yield* job.launch
      const error = failureOf(yield* Effect.exit(job.launch), "IllegalTransition")
      assert.deepStrictEqual([error.from, error.to], ["running", "deploying"])
    }),
  )

  it.effect(
    "a job restored in its stored state goes on from there, is never launched again, and records each move before publishing it",
    () =>
      Effect.gen(function* () {
        const recorded: Array<string> = []
        const { job, events } = yield* setup(
          {},
          {},
          {},
          {
            status: "running",
            onTransition: (event) => Effect.sync(() => recorded.push(`${event.from}→${event.to}: ${event.reason}`)),
          },
        )
        assert.strictEqual(yield* job.status, "running")
        const relaunch = failureOf(yield* Effect.exit(job.launch), "IllegalTransition")
        assert.deepStrictEqual([relaunch.from, relaunch.to], ["running", "deploying"])
        yield* job.pause("server restarted")
        yield* job.resume("clients back")
        // An illegal move is neither recorded nor published.
        failureOf(yield* Effect.exit(job.resume("already running")), "IllegalTransition")
        yield* settle
        assert.deepStrictEqual(recorded, ["running→paused: server restarted", "paused→running: clients back"])
        assert.deepStrictEqual(moves(events), ["running→paused", "paused→running"])
      }),
  )

  it.effect("a job restored as completed refuses every move", () =>
    Effect.gen(function* () {
      const recorded: Array<string> = []
      const { job } = yield* setup(
        {},
        {},
        {},
        {
          status: "completed",
          onTransition: (event) => Effect.sync(() => recorded.push(event.to)),
        },
      )
      for (const move of [job.resume("r"), job.pause("p"), job.abort("a"), job.fail("f"), job.launch]) {
        failureOf(yield* Effect.exit(move), "IllegalTransition")
      }
      assert.deepStrictEqual(recorded, [])
      assert.strictEqual(yield* job.status, "completed")
    }),
  )

  it.effect("deploys an open-enrolment job to the enrolled sites", () =>
    Effect.gen(function* () {
      const { job } = yield* setup({ clients: "open", minSites: 2 }, {}, {}, { enrolled: ["x", "y"] })
      assert.deepStrictEqual(job.sites, ["x", "y"])
      const report = yield* job.launch
      assert.deepStrictEqual(report.participants, ["x", "y"])
    }),
  )

  it.effect("with strictStart: false runs with a silent site kept as unconfirmed", () =>
    Effect.gen(function* () {
      const { job, events } = yield* setup({}, {}, { "site-3": { silent: true } }, { strictStart: false })
      const launch = yield* Effect.forkChild(job.launch)
      yield* TestClock.adjust(START)
      const report = successOf(yield* ended(launch))
      assert.deepStrictEqual(report.unconfirmed, ["site-3"])
      assert.deepStrictEqual(report.participants, siteIds(3))
      assert.deepStrictEqual(exclusions(events), [])
    }),
  )

  it.effect("run makes and launches the job, and counts exclusions by phase", () =>
    Effect.gen(function* () {
      const before = yield* Metric.value(Metric.withAttributes(JobMetrics.sitesExcluded, { phase: "start" }))
      const fiber = yield* Effect.forkChild(
        JobLifecycle.run(spec({ startTimeout: START }), {
          deploy: scripted({}),
          start: scripted({ "site-2": { refuse: "no GPU" } }),
        }),
      )
      const { job, report } = successOf(yield* ended(fiber))
      assert.strictEqual(yield* job.status, "running")
      assert.deepStrictEqual(
        report.excluded.map((e) => e.reason),
        ["no GPU"],
      )
      const after = yield* Metric.value(Metric.withAttributes(JobMetrics.sitesExcluded, { phase: "start" }))
      assert.strictEqual(after.count - before.count, 1)
    }),
  )
})
