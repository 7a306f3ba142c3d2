import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema } from "effect"
import * as Settings from "../src/Settings.ts"

const schema = Schema.Struct({
  port: Settings.int(0, 65535, "7070"),
  timeout: Settings.millis("90s"),
  name: Schema.String,
})

const load = (options: {
  readonly flags?: Record<string, string>
  readonly env?: Record<string, string>
  readonly file?: unknown
}) =>
  Effect.gen(function* () {
    let configFile: Option.Option<string> = Option.none()
    if (options.file !== undefined) {
      const path = join(mkdtempSync(join(tmpdir(), "settings-")), "config.json")
      writeFileSync(path, typeof options.file === "string" ? options.file : JSON.stringify(options.file))
      configFile = Option.some(path)
    }
    const flags: Record<string, Option.Option<string>> = {}
    for (const [k, v] of Object.entries(options.flags ?? {})) flags[k] = Option.some(v)
    return yield* Settings.load(schema, { flags, env: options.env ?? {}, envPrefix: "APP_", configFile })
  }).pipe(Effect.provide(NodeServices.layer))

describe("Settings", () => {
  it.effect("applies defaults, then the file, then the environment, then flags", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* load({ flags: { name: "a" } }), { port: 7070, timeout: 90_000, name: "a" })
      const layered = yield* load({
        file: { port: 1, timeout: "1s", name: "file" },
        env: { APP_PORT: "2", APP_NAME: "env" },
        flags: { name: "flag" },
      })
      assert.deepStrictEqual(layered, { port: 2, timeout: 1000, name: "flag" })
    }),
  )

  it.effect("reads durations as 200ms, 30s, 2m, 1h and Effect's long form", () =>
    Effect.gen(function* () {
      for (const [text, millis] of [
        ["200ms", 200],
        ["30s", 30_000],
        ["1.5m", 90_000],
        ["1h", 3_600_000],
        ["30 seconds", 30_000],
      ] as const) {
        assert.strictEqual((yield* load({ flags: { name: "a", timeout: text } })).timeout, millis)
      }
    }),
  )

  it.effect("names the key, its flag or variable, and the problem", () =>
    Effect.gen(function* () {
      const fromFlag = yield* Effect.flip(load({ flags: { name: "a", port: "abc" } }))
      assert.strictEqual(fromFlag.key, "port")
      assert.match(fromFlag.message, /port \(from --port\).*integer/)
      const fromEnv = yield* Effect.flip(load({ flags: { name: "a" }, env: { APP_TIMEOUT: "soon" } }))
      assert.match(fromEnv.message, /timeout \(from APP_TIMEOUT\).*200ms, 30s/)
      const range = yield* Effect.flip(load({ flags: { name: "a", port: "70000" } }))
      assert.match(range.message, /port/)
      const missing = yield* Effect.flip(load({}))
      assert.match(missing.message, /name.*required: pass --name, set APP_NAME/)
    }),
  )

  it.effect("rejects unknown keys and malformed JSON in the config file", () =>
    Effect.gen(function* () {
      const unknown = yield* Effect.flip(load({ file: { name: "a", prot: 1 } }))
      assert.match(unknown.message, /prot.*unknown key/)
      const malformed = yield* Effect.flip(load({ file: "{ not json" }))
      assert.strictEqual(malformed.key, "config")
    }),
  )
})
