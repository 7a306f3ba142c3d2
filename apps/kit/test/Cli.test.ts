import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Cause, Effect, Exit, Schema, Stdio } from "effect"
import * as Cli from "../src/Cli.ts"
import * as Settings from "../src/Settings.ts"

const Fields = Schema.Struct({
  interval: Settings.millis("30s"),
  timeout: Settings.millis("90s"),
})
type Fields = typeof Fields.Type
const schema = Fields.check(Settings.compare<Fields>("timeout", ">", "interval", { kind: "duration" }))

// Runs a command built by `Cli.command` with `args`, returning its exit code and what the handler got.
const invoke = (args: ReadonlyArray<string>) =>
  Effect.gen(function* () {
    const received: Array<Fields> = []
    const command = Cli.command("app", {
      description: "test",
      schema,
      descriptions: {},
      envPrefix: "CLI_TEST_",
      run: (settings) => Effect.sync(() => received.push(settings)),
    })
    const exit = yield* Cli.run(command).pipe(
      Effect.provide(Stdio.layerTest({ args: Effect.succeed(args) })),
      Effect.provide(NodeServices.layer),
      Effect.exit,
    )
    return { code: Cli.exitCode(exit), received }
  })

describe("Cli", () => {
  it("joins a long flag and a value that starts with a dash and a digit, and nothing else", () => {
    assert.deepStrictEqual(Cli.normalizeArgs(["--heartbeat-interval", "-5s"]), ["--heartbeat-interval=-5s"])
    assert.deepStrictEqual(Cli.normalizeArgs(["--a", "-.5m", "--b", "1"]), ["--a=-.5m", "--b", "1"])
    assert.deepStrictEqual(Cli.normalizeArgs(["--a=1", "-5s"]), ["--a=1", "-5s"])
    assert.deepStrictEqual(Cli.normalizeArgs(["--a", "--b", "-h"]), ["--a", "--b", "-h"])
    assert.deepStrictEqual(Cli.normalizeArgs(["--", "--a", "-5s"]), ["--", "--a", "-5s"])
  })

  it("maps a run's end to 0 done, 2 bad usage, 1 failed, 130 interrupted", () => {
    assert.strictEqual(Cli.exitCode(Exit.void), 0)
    assert.strictEqual(
      Cli.exitCode(Exit.fail(new Settings.ConflictingSettings({ keys: ["a", "b"], rule: "a > b" }))),
      2,
    )
    assert.strictEqual(
      Cli.exitCode(Exit.fail(new Settings.InvalidSettings({ key: "a", source: "--a", reason: "bad" }))),
      2,
    )
    assert.strictEqual(Cli.exitCode(Exit.fail(new Error("boom"))), 1)
    assert.strictEqual(Cli.exitCode(Exit.failCause(Cause.interrupt())), 130)
  })

  it.effect("accepts --flag=value and --flag value alike", () =>
    Effect.gen(function* () {
      const { code, received } = yield* invoke(["--interval=2s", "--timeout", "3s"])
      assert.strictEqual(code, 0)
      assert.deepStrictEqual(received, [{ interval: 2000, timeout: 3000 }])
    }),
  )

  it.effect("reads `--interval -5s` as a negative value (exit 2), never as short flags, and runs nothing", () =>
    Effect.gen(function* () {
      const { code, received } = yield* invoke(["--interval", "-5s"])
      assert.strictEqual(code, 2)
      assert.deepStrictEqual(received, [])
    }),
  )

  it.effect("exits 2 without running the handler when settings conflict or a flag is unknown", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual(yield* invoke(["--interval", "2s", "--timeout", "1s"]), { code: 2, received: [] })
      assert.deepStrictEqual(yield* invoke(["--bogus", "1"]), { code: 2, received: [] })
    }),
  )
})
