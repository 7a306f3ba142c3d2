import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit, Result } from "effect"
import * as JobSpec from "../src/JobSpec.ts"
import { failureOf } from "./support.ts"

const minimal = { name: "cifar10", rounds: 20, model: "resnet18", clients: ["a", "b", "c"], minSites: 2 }

const problems = (input: unknown) => {
  const result = JobSpec.validate(input)
  if (Result.isSuccess(result)) return assert.fail("expected the spec to be refused")
  return result.failure.problems
}

const fields = (input: unknown) => problems(input).map((problem) => problem.field)

describe("JobSpec", () => {
  it("accepts a minimal spec and fills in the defaults", () => {
    const spec = Result.getOrThrow(JobSpec.validate(minimal))
    assert.deepStrictEqual(spec.requiredSites, [])
    assert.strictEqual(Duration.toMillis(spec.deployTimeout), 60_000)
    assert.strictEqual(Duration.toMillis(spec.startTimeout), 60_000)
    assert.strictEqual(Duration.toMillis(spec.roundTimeout), 600_000)
    assert.strictEqual(spec.seed, 0)
  })

  it("reads durations as strings or as milliseconds", () => {
    const spec = Result.getOrThrow(
      JobSpec.validate({ ...minimal, deployTimeout: "2 minutes", startTimeout: 45_000, roundTimeout: "1 hour" }),
    )
    assert.strictEqual(Duration.toMillis(spec.deployTimeout), 120_000)
    assert.strictEqual(Duration.toMillis(spec.startTimeout), 45_000)
    assert.strictEqual(Duration.toMillis(spec.roundTimeout), 3_600_000)
  })

  it("refuses a spec with one problem per broken field, every field at once, naming each", () => {
    const found = problems({
      name: "",
      rounds: 0,
      model: 3,
      clients: ["a", ""],
      minSites: 1.5,
      requiredSites: [7],
      deployTimeout: "soon",
      startTimeout: 0,
      roundTimeout: -5,
      seed: "x",
    })
    assert.deepStrictEqual(
      found.map((p) => p.field),
      [
        "name",
        "rounds",
        "model",
        "clients",
        "minSites",
        "requiredSites",
        "deployTimeout",
        "startTimeout",
        "roundTimeout",
        "seed",
      ],
    )
    assert.strictEqual(found.find((p) => p.field === "rounds")?.message, "must be a positive integer")
    assert.strictEqual(found.find((p) => p.field === "startTimeout")?.message, "must be a positive duration")
  })

  it("reports a field with several bad items as one problem, not one per item", () => {
    const found = problems({ ...minimal, clients: ["", "a", ""] })
    assert.deepStrictEqual(
      found.map((p) => p.field),
      ["clients"],
    )
  })

  it("names every missing required field, and no defaulted one", () => {
    assert.deepStrictEqual(fields({}), ["name", "rounds", "model", "clients", "minSites"])
    assert.strictEqual(problems({})[0]!.message, "is required")
  })

  it("refuses an unknown key by its name (a misspelt minSites does not pass silently)", () => {
    const found = problems({ ...minimal, minsites: 3 })
    assert.deepStrictEqual(found, [{ field: "minsites", message: "is not a job spec field" }])
  })

  it("refuses an input that is not an object as the field spec", () => {
    assert.deepStrictEqual(fields(42), ["spec"])
  })

  it("refuses minSites above the number of clients, and accepts it equal to it", () => {
    assert.deepStrictEqual(problems({ ...minimal, minSites: 4 }), [
      { field: "minSites", message: "4 exceeds the 3 site(s) in clients" },
    ])
    assert.isTrue(Result.isSuccess(JobSpec.validate({ ...minimal, minSites: 3 })))
  })

  it("refuses required sites that are not among the clients, naming them", () => {
    assert.deepStrictEqual(problems({ ...minimal, requiredSites: ["a", "x", "y"] }), [
      { field: "requiredSites", message: '"x", "y" not among clients' },
    ])
  })

  it("reports cross-field problems together with field problems", () => {
    assert.deepStrictEqual(fields({ ...minimal, rounds: 0, minSites: 5, requiredSites: ["z"] }), [
      "rounds",
      "minSites",
      "requiredSites",
    ])
  })

  it("refuses a client listed twice", () => {
    assert.deepStrictEqual(fields({ ...minimal, clients: ["a", "b", "a"] }), ["clients"])
  })

  it("accepts fewer minSites than required sites (all of them must still be present)", () => {
    const spec = Result.getOrThrow(JobSpec.validate({ ...minimal, minSites: 1, requiredSites: ["a", "b"] }))
    assert.strictEqual(spec.minSites, 1)
  })

  it("accepts open enrolment with any minSites and named required sites", () => {
    const spec = Result.getOrThrow(
      JobSpec.validate({ ...minimal, clients: "open", minSites: 50, requiredSites: ["hospital-a"] }),
    )
    assert.strictEqual(spec.clients, "open")
    assert.deepStrictEqual(JobSpec.sitesOf(spec, ["x", "y", "x"]), ["x", "y"])
    assert.deepStrictEqual(JobSpec.sitesOf(Result.getOrThrow(JobSpec.validate(minimal)), ["x"]), ["a", "b", "c"])
  })

  it("lists every problem in the error's message", () => {
    const result = JobSpec.validate({ ...minimal, rounds: 0, minSites: 4 })
    if (Result.isSuccess(result)) return assert.fail("expected a refusal")
    assert.strictEqual(
      result.failure.message,
      "invalid job spec: rounds: must be a positive integer; minSites: 4 exceeds the 3 site(s) in clients",
    )
  })

  it.effect("decode fails with InvalidJobSpec, and succeeds with the spec", () =>
    Effect.gen(function* () {
      const refused = yield* Effect.exit(JobSpec.decode({ ...minimal, rounds: -1 }))
      assert.deepStrictEqual(
        failureOf(refused, "InvalidJobSpec").problems.map((p) => p.field),
        ["rounds"],
      )
      const accepted = yield* Effect.exit(JobSpec.decode(minimal))
      assert.isTrue(Exit.isSuccess(accepted))
    }),
  )
})
