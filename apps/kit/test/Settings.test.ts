import { mkdtempSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Option, Schema, SchemaIssue } from "effect"
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
      assert.instanceOf(fromFlag, Settings.InvalidSettings)
      assert.strictEqual(fromFlag._tag === "InvalidSettings" && fromFlag.key, "port")
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
      assert.strictEqual(malformed._tag === "InvalidSettings" && malformed.key, "config")
    }),
  )
})

// A package's config schema, as `RetryPolicy` and `HeartbeatConfig` are: its own keys, its own
// rules, a `relation` annotation on its cross-field issue.
const Backoff = Schema.Struct({
  base: Schema.Finite.check(Schema.makeFilter((n: number) => n > 0 || "must be a positive duration")),
  cap: Schema.Finite,
}).check(
  Schema.makeFilter((b) =>
    b.cap >= b.base
      ? undefined
      : {
          path: ["cap"],
          issue: new SchemaIssue.InvalidValue({
            message: "cap must not be shorter than base",
            relation: { other: "base", must: "not be shorter than" },
          }),
        },
  ),
)

const Rules = Schema.Struct({
  interval: Settings.millis("30s"),
  timeout: Settings.millis("90s"),
  wait: Settings.positiveMillis("1m"),
  least: Settings.int(1, 100, "2"),
  most: Settings.int(1, 100, "4"),
  retryBase: Settings.millis("1s"),
  retryCap: Settings.millis("30s"),
  override: Schema.optionalKey(Settings.PositiveMillis),
  report: Schema.optionalKey(Settings.OutputFile),
})
type Rules = typeof Rules.Type
const rules = Rules.check(
  Settings.compare<Rules>("timeout", ">", "interval", { kind: "duration", because: "peers would flap" }),
  Settings.compare<Rules>("least", "<=", "most"),
  Settings.compare<Rules>("override", ">", "interval", { kind: "duration" }),
  Settings.embed<Rules, { readonly base: "retryBase"; readonly cap: "retryCap" }>(
    Backoff,
    { base: "retryBase", cap: "retryCap" },
    { kind: "duration" },
  ),
)

const loadRules = (flags: Record<string, string>, env: Record<string, string> = {}) =>
  Settings.load(rules, {
    flags: Object.fromEntries(Object.entries(flags).map(([k, v]) => [k, Option.some(v)])),
    env,
    envPrefix: "APP_",
    configFile: Option.none(),
  }).pipe(Effect.provide(NodeServices.layer))

const conflictOf = (flags: Record<string, string>) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(loadRules(flags))
    assert.instanceOf(error, Settings.ConflictingSettings)
    return error as Settings.ConflictingSettings
  })

const invalidOf = (flags: Record<string, string>) =>
  Effect.gen(function* () {
    const error = yield* Effect.flip(loadRules(flags))
    assert.instanceOf(error, Settings.InvalidSettings)
    return error as Settings.InvalidSettings
  })

describe("Settings as a whole", () => {
  it.effect("accepts settings that obey every rule, with defaults filling the rest", () =>
    Effect.gen(function* () {
      const settings = yield* loadRules({ timeout: "3s", interval: "1s", least: "4", retryBase: "5s", retryCap: "5s" })
      assert.deepStrictEqual(
        [settings.timeout, settings.interval, settings.least, settings.most, settings.retryCap],
        [3000, 1000, 4, 4, 5000],
      )
    }),
  )

  it.effect("names both flags, their values and the rule when a comparison breaks, not one flag alone", () =>
    Effect.gen(function* () {
      const flapping = yield* conflictOf({ timeout: "1s", interval: "2s" })
      assert.deepStrictEqual(flapping.keys, ["timeout", "interval"])
      assert.strictEqual(
        flapping.message,
        "invalid settings: --timeout (1s) must be longer than --interval (2s): peers would flap",
      )
      const equal = yield* conflictOf({ timeout: "2s", interval: "2000ms" })
      assert.strictEqual(equal.rule, "--timeout (2s) must be longer than --interval (2s): peers would flap")
      const counts = yield* conflictOf({ least: "5" })
      assert.strictEqual(counts.rule, "--least (5) must not be greater than --most (4)")
    }),
  )

  it.effect("compares an optional setting only when it is given", () =>
    Effect.gen(function* () {
      assert.isUndefined((yield* loadRules({})).override)
      const broken = yield* conflictOf({ override: "10s" })
      assert.strictEqual(broken.rule, "--override (10s) must be longer than --interval (30s)")
    }),
  )

  it.effect("reports an embedded package's rule in the application's flags, from the issue's relation", () =>
    Effect.gen(function* () {
      const inverted = yield* conflictOf({ retryBase: "5s", retryCap: "1s" })
      assert.deepStrictEqual(inverted.keys, ["retryCap", "retryBase"])
      assert.strictEqual(inverted.rule, "--retry-cap (1s) must not be shorter than --retry-base (5s)")
    }),
  )

  it.effect("reports an embedded package's single-value rule at the setting that holds it", () =>
    Effect.gen(function* () {
      const zero = yield* invalidOf({ retryBase: "0ms" })
      assert.strictEqual(zero.key, "retryBase")
      assert.strictEqual(zero.message, "invalid setting retryBase (from --retry-base): must be a positive duration")
    }),
  )

  it.effect("rejects zero and negative durations with the value's own error", () =>
    Effect.gen(function* () {
      const zero = yield* invalidOf({ wait: "0s" })
      assert.strictEqual(zero.key, "wait")
      assert.match(zero.message, /wait \(from --wait\): must be a positive duration/)
      const negative = yield* invalidOf({ interval: "-5s" })
      assert.strictEqual(
        negative.message,
        'invalid setting interval (from --interval): must not be negative, got "-5s"',
      )
      const longNegative = yield* invalidOf({ interval: "-5 seconds" })
      assert.match(longNegative.message, /must not be negative/)
    }),
  )

  it.effect("reports where a value came from by the issue's path, not its message", () =>
    Effect.gen(function* () {
      const error = yield* Effect.flip(loadRules({}, { APP_LEAST: "abc" }))
      assert.instanceOf(error, Settings.InvalidSettings)
      assert.match(error.message, /least \(from APP_LEAST\)/)
    }),
  )

  it.effect("checks an output file's directory at load, naming the setting and the path", () =>
    Effect.gen(function* () {
      const missing = yield* invalidOf({ report: "/nonexistent/dir/r.json" })
      assert.strictEqual(missing.key, "report")
      assert.strictEqual(
        missing.message,
        "invalid setting report (from --report): cannot write /nonexistent/dir/r.json: directory /nonexistent/dir does not exist",
      )
      const directory = mkdtempSync(join(tmpdir(), "settings-"))
      const isDirectory = yield* invalidOf({ report: directory })
      assert.match(isDirectory.message, /--report.*it is a directory/)
      const file = join(directory, "report.json")
      assert.strictEqual((yield* loadRules({ report: file })).report, file)
    }),
  )

  it("formats milliseconds the way users write them", () => {
    assert.deepStrictEqual([0, 200, 1000, 1500, 90_000, 120_000, 3_600_000].map(Settings.formatMillis), [
      "0ms",
      "200ms",
      "1s",
      "1500ms",
      "90s",
      "2m",
      "1h",
    ])
  })

  it("projects flat settings onto a package's keys", () => {
    assert.deepStrictEqual(Settings.project({ base: "retryBase" } as const, { retryBase: 200, other: 1 }), {
      base: 200,
    })
  })
})
