import { existsSync, mkdtempSync, readFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Report } from "@fedguard/federation"
import { Effect, Schema } from "effect"
import * as Demo from "../src/Demo.ts"

describe("demo", () => {
  it("parses CLIENT@ROUND fault specs and rejects anything else", () => {
    assert.deepStrictEqual(Schema.decodeUnknownSync(Demo.Fault)("client-2@3"), { client: "client-2", round: 3 })
    assert.throws(() => Schema.decodeUnknownSync(Demo.Fault)("client-2"), /CLIENT@ROUND/)
    assert.throws(() => Schema.decodeUnknownSync(Demo.Fault)("client-2@x"), /CLIENT@ROUND/)
  })

  it.live(
    "runs a server and 3 client processes, SIGKILLs one at round 2, and the federation finishes without it",
    () =>
      Effect.gen(function* () {
        const report = join(mkdtempSync(join(tmpdir(), "fedguard-demo-")), "report.json")
        const accuracy = yield* Demo.run({
          clients: 3,
          rounds: 4,
          model: "softmax",
          partition: "iid",
          seed: 42,
          localEpochs: 1,
          report,
          kill: [{ client: "client-2", round: 2 }],
          restart: [],
          heartbeatInterval: "200ms",
          heartbeatTimeout: "1s",
          roundTimeout: "30s",
        })
        assert.isAbove(accuracy, 0.8)
        assert.isTrue(existsSync(report))
        const written = Schema.decodeUnknownSync(Report.Report)(JSON.parse(readFileSync(report, "utf8")))
        assert.strictEqual(written.rounds.length, 4)
        assert.deepStrictEqual(written.rounds[0]!.participants, ["client-0", "client-1", "client-2"])
        assert.isTrue(written.rounds.slice(1).some((r) => r.excluded.some((x) => x.id === "client-2")))
        assert.notInclude(written.rounds.at(-1)!.participants, "client-2")
      }).pipe(Effect.scoped, Effect.provide(NodeServices.layer), Effect.timeout("90 seconds")),
    120_000,
  )
})
