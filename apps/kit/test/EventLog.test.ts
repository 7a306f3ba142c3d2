import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import * as EventLog from "../src/EventLog.ts"

const capture = (program: Effect.Effect<void>) =>
  Effect.gen(function* () {
    const lines: Array<string> = []
    const logger = Logger.map(EventLog.formatter, (line) => {
      lines.push(String(line))
    })
    yield* program.pipe(Effect.provide(Logger.layer([logger])))
    return lines.map((line) => JSON.parse(line) as Record<string, unknown>)
  })

describe("EventLog", () => {
  it.effect("prints one JSON object per line with the event name first and the annotations", () =>
    Effect.gen(function* () {
      const [line] = yield* capture(Effect.logInfo("client-joined").pipe(Effect.annotateLogs({ id: "c1" })))
      assert.deepStrictEqual(Object.keys(line!).slice(0, 2), ["event", "id"])
      assert.strictEqual(line!.event, "client-joined")
      assert.strictEqual(line!.level, "INFO")
    }),
  )

  it.effect("keeps free text out of the event field", () =>
    Effect.gen(function* () {
      const [line] = yield* capture(Effect.logWarning("client c1 went offline (timeout)"))
      assert.strictEqual(line!.event, "log")
      assert.strictEqual(line!.message, "client c1 went offline (timeout)")
    }),
  )
})
