import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { TestClock } from "effect/testing"
import type { SiteDied, SiteNeverStarted } from "../src/JobEvent.ts"
import * as JobWatch from "../src/JobWatch.ts"
import { record, settle, siteIds, tags } from "./support.ts"

const START_TIMEOUT = 60_000

const setup = Effect.gen(function* () {
  const watch = yield* JobWatch.make(siteIds(2), { startTimeout: START_TIMEOUT })
  const events = yield* record(watch.subscribe)
  return { watch, events }
})

describe("JobWatch", () => {
  it.effect("reports a site dead once it was seen running and then reported gone", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* TestClock.adjust(5_000)
      yield* watch.reportRunning("site-1")
      yield* TestClock.adjust(10_000)
      yield* watch.reportGone("site-1", "job process exited")
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteDied"])
      const died = events[0] as SiteDied
      assert.deepStrictEqual(
        [died.site, died.at, died.lastSeenAt, died.reason],
        ["site-1", 15_000, 5_000, "job process exited"],
      )
      assert.strictEqual(yield* watch.status("site-1"), "dead")
    }),
  )

  it.effect("never reports a site dead that was never seen running (the dead-job notice before any report)", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* watch.reportGone("site-1", "job not running")
      yield* TestClock.adjust(START_TIMEOUT - 1)
      yield* watch.reportGone("site-1", "job not running")
      yield* settle
      assert.deepStrictEqual(events, [])
      assert.strictEqual(yield* watch.status("site-1"), "waiting")
    }),
  )

  it.effect("reports SiteNeverStarted at the start timeout, not before, for each site never seen", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* TestClock.adjust(START_TIMEOUT - 1)
      assert.deepStrictEqual(events, [])
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteNeverStarted", "SiteNeverStarted"])
      const first = events[0] as SiteNeverStarted
      assert.deepStrictEqual([first.site, first.at, first.waitedMs], ["site-1", START_TIMEOUT, START_TIMEOUT])
      assert.strictEqual(yield* watch.status("site-2"), "never-started")
    }),
  )

  it.effect("reports no SiteNeverStarted for a site seen running before the timeout", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* TestClock.adjust(START_TIMEOUT - 1)
      yield* watch.reportRunning("site-1")
      yield* TestClock.adjust(1)
      yield* settle
      assert.deepStrictEqual(
        events.map((e) => e.site),
        ["site-2"],
      )
      assert.strictEqual(yield* watch.status("site-1"), "running")
    }),
  )

  it.effect("keeps never-started apart from dead: gone without a start is no death, a late start then gone is", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* TestClock.adjust(START_TIMEOUT)
      yield* watch.reportGone("site-1", "job not running")
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteNeverStarted", "SiteNeverStarted"])
      yield* watch.reportRunning("site-1")
      assert.strictEqual(yield* watch.status("site-1"), "running")
      yield* watch.reportGone("site-1", "job not running")
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteNeverStarted", "SiteNeverStarted", "SiteDied"])
    }),
  )

  it.effect("reports one death per run: gone twice is one SiteDied, a restart can die again", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* watch.reportRunning("site-2")
      yield* watch.reportGone("site-2", "offline")
      yield* watch.reportGone("site-2", "offline")
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteDied"])
      yield* watch.reportRunning("site-2")
      yield* watch.reportGone("site-2", "offline")
      yield* settle
      assert.deepStrictEqual(tags(events), ["SiteDied", "SiteDied"])
    }),
  )

  it.effect("ignores reports about a site it does not watch", () =>
    Effect.gen(function* () {
      const { watch, events } = yield* setup
      yield* watch.reportRunning("intruder")
      yield* watch.reportGone("intruder", "offline")
      yield* settle
      assert.deepStrictEqual(events, [])
      assert.isUndefined(yield* watch.status("intruder"))
    }),
  )
})
