import { assert, describe, it } from "@effect/vitest"
import { Effect, Schema } from "effect"
import * as FaultPlan from "../src/FaultPlan.ts"

const plan = (kill: ReadonlyArray<string>, restart: ReadonlyArray<string> = []) =>
  FaultPlan.make({
    clients: 4,
    rounds: 10,
    kill: kill.map((text) => Schema.decodeUnknownSync(FaultPlan.Fault)(text)),
    restart: restart.map((text) => Schema.decodeUnknownSync(FaultPlan.Fault)(text)),
  })

const problem = (kill: ReadonlyArray<string>, restart: ReadonlyArray<string> = []) =>
  plan(kill, restart).pipe(
    Effect.flip,
    Effect.map((error) => error.message),
  )

describe("FaultPlan", () => {
  it("parses CLIENT@ROUND fault specs and rejects anything else", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(FaultPlan.Fault)("client-2@3"), { client: "client-2", round: 3 })
    assert.throws(() => Schema.decodeUnknownSync(FaultPlan.Fault)("client-2"), /CLIENT@ROUND/)
    assert.throws(() => Schema.decodeUnknownSync(FaultPlan.Fault)("client-2@x"), /CLIENT@ROUND/)
  })

  it.effect("accepts the README's kill-then-restart and orders actions by round, kills first", () =>
    Effect.gen(function* () {
      const { actions } = yield* plan(["client-2@3", "client-1@6"], ["client-2@6"])
      assert.deepStrictEqual(
        actions.map((a) => `${a.kind} ${a.client}@${a.round}`),
        ["kill client-2@3", "kill client-1@6", "restart client-2@6"],
      )
      assert.lengthOf((yield* plan(["client-2@3", "client-2@7"], ["client-2@5"])).actions, 3)
    }),
  )

  it.effect("rejects a client the run does not start, naming the flag and the valid ids", () =>
    Effect.gen(function* () {
      assert.strictEqual(
        yield* problem(["client-9@3"]),
        "--kill client-9@3: no such client; this run starts client-0…client-3",
      )
      assert.match(yield* problem([], ["worker-1@3"]), /^--restart worker-1@3: no such client/)
      assert.match(yield* problem(["client-01@3"]), /no such client/)
    }),
  )

  it.effect("rejects rounds outside 1…rounds, and not the bounds themselves", () =>
    Effect.gen(function* () {
      assert.strictEqual(yield* problem(["client-1@11"]), "--kill client-1@11: round 11 is outside 1…10")
      assert.match(yield* problem(["client-1@0"]), /round 0 is outside 1…10/)
      assert.lengthOf((yield* plan(["client-1@1", "client-2@10"])).actions, 2)
    }),
  )

  it.effect("rejects a restart without an earlier kill of the same client, and a second kill of a killed client", () =>
    Effect.gen(function* () {
      assert.match(yield* problem([], ["client-1@3"]), /^--restart client-1@3: needs an earlier --kill of client-1/)
      assert.match(yield* problem(["client-1@3"], ["client-1@3"]), /^--restart client-1@3: needs an earlier --kill/)
      assert.match(yield* problem(["client-1@4"], ["client-1@3"]), /^--restart client-1@3/)
      assert.match(yield* problem(["client-2@3"], ["client-1@5"]), /^--restart client-1@5/)
      assert.match(
        yield* problem(["client-1@3", "client-1@5"]),
        /^--kill client-1@5: client-1 is already killed at round 3/,
      )
    }),
  )
})

describe("FaultPlan --stall", () => {
  const stall = (faults: ReadonlyArray<string>) =>
    FaultPlan.make({
      clients: 4,
      rounds: 10,
      kill: [],
      restart: [],
      stall: faults.map((text) => Schema.decodeUnknownSync(FaultPlan.Fault)(text)),
    })
  const stallProblem = (faults: ReadonlyArray<string>) =>
    stall(faults).pipe(
      Effect.flip,
      Effect.map((error) => error.message),
    )

  it.effect(
    "accepts one stall per client within the run, and rejects an unknown client, a round outside it, or a second stall",
    () =>
      Effect.gen(function* () {
        yield* stall(["client-1@3", "client-2@10"])
        assert.strictEqual(
          yield* stallProblem(["client-9@3"]),
          "--stall client-9@3: no such client; this run starts client-0…client-3",
        )
        assert.strictEqual(yield* stallProblem(["client-1@11"]), "--stall client-1@11: round 11 is outside 1…10")
        assert.strictEqual(
          yield* stallProblem(["client-1@3", "client-1@5"]),
          "--stall client-1@5: client-1 already stalls in a round",
        )
      }),
  )
})

describe("FaultPlan --kill-server", () => {
  const killServer = (rounds: ReadonlyArray<number>, state?: string) =>
    FaultPlan.make({ clients: 4, rounds: 10, kill: [], restart: [], killServer: rounds, state })
  const killServerProblem = (rounds: ReadonlyArray<number>, state?: string) =>
    killServer(rounds, state).pipe(
      Effect.flip,
      Effect.map((error) => error.message),
    )

  it("spells --kill-server@ROUND out for the parser, and leaves --kill-server ROUND, other flags and arguments after -- alone", () => {
    assert.deepStrictEqual(FaultPlan.spellOutServerKills(["--kill-server@3", "--rounds", "6", "--kill-server@5"]), [
      "--kill-server=3",
      "--rounds",
      "6",
      "--kill-server=5",
    ])
    assert.deepStrictEqual(FaultPlan.spellOutServerKills(["--kill-server", "3", "--kill", "client-1@3"]), [
      "--kill-server",
      "3",
      "--kill",
      "client-1@3",
    ])
    // A bad value stays for the parser to report it under the flag's name.
    assert.deepStrictEqual(FaultPlan.spellOutServerKills(["--kill-server@x"]), ["--kill-server=x"])
    assert.deepStrictEqual(FaultPlan.spellOutServerKills(["--", "--kill-server@3"]), ["--", "--kill-server@3"])
  })

  it.effect("accepts kills after rounds 1…rounds-1 in any order and schedules them ascending", () =>
    Effect.gen(function* () {
      assert.deepStrictEqual((yield* killServer([9, 1, 4])).serverKills, [1, 4, 9])
      assert.deepStrictEqual((yield* killServer([3], "./job.db")).serverKills, [3])
      assert.deepStrictEqual((yield* plan([])).serverKills, [])
    }),
  )

  it.effect(
    "rejects a round outside the run, the last round, a second kill after one round, and a run without a state file",
    () =>
      Effect.gen(function* () {
        assert.strictEqual(yield* killServerProblem([0]), "--kill-server@0: round 0 is outside 1…10")
        assert.strictEqual(yield* killServerProblem([11]), "--kill-server@11: round 11 is outside 1…10")
        assert.match(
          yield* killServerProblem([10]),
          /^--kill-server@10: round 10 is the last: the job is finished after it, so a restarted server would have nothing to resume; kill it after 1…9$/,
        )
        assert.strictEqual(
          yield* killServerProblem([3, 5, 3]),
          "--kill-server@3: the server is already killed after round 3",
        )
        assert.strictEqual(
          yield* killServerProblem([3], ":memory:"),
          "--kill-server@3: --state :memory: keeps no state, so the restarted server would start the job over",
        )
      }),
  )
})
