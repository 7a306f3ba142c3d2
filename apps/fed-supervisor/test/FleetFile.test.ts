import { mkdtempSync, readFileSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { NodeServices } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Duration, Effect, Exit } from "effect"
import * as FleetFile from "../src/FleetFile.ts"

const examples = join(import.meta.dirname, "..", "examples")

/** Writes `files` into a fresh directory and returns it. */
const folder = (files: Readonly<Record<string, string>>) => {
  const dir = mkdtempSync(join(tmpdir(), "fed-supervisor-file-"))
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text)
  return dir
}

const load = (file: string) => FleetFile.load(file).pipe(Effect.provide(NodeServices.layer))

/** The error of a load that must fail. */
const failure = (file: string) =>
  Effect.gen(function* () {
    const exit = yield* Effect.exit(load(file))
    assert.isTrue(Exit.isFailure(exit), `${file} was accepted`)
    return yield* Effect.flip(load(file))
  })

const yamlFleet = `
workers:
  - id: trainer-0
    command: python
    args: [train.py, --rank, "0"]
    env: { CUDA_VISIBLE_DEVICES: "0" }
    cwd: jobs
  - id: trainer-1
    command: python
    significant: true
monitoring: { interval: 2 seconds, maxRssBytes: 8 GiB }
recovery: { strategy: reassign, maxRestarts: 3, restartPeriod: 30 seconds }
`

const jsonFleet = JSON.stringify({
  workers: [
    {
      id: "trainer-0",
      command: "python",
      args: ["train.py", "--rank", "0"],
      env: { CUDA_VISIBLE_DEVICES: "0" },
      cwd: "jobs",
    },
    { id: "trainer-1", command: "python", significant: true },
  ],
  monitoring: { interval: 2000, maxRssBytes: 8 * 1024 ** 3 },
  recovery: { strategy: "reassign", maxRestarts: 3, restartPeriod: "30 seconds" },
})

describe("FleetFile", () => {
  it.effect("a YAML file and a JSON file of the same fleet decode to the same fleet, defaults included", () =>
    Effect.gen(function* () {
      const dir = folder({ "fleet.yaml": yamlFleet, "fleet.json": jsonFleet })
      const fromYaml = yield* load(join(dir, "fleet.yaml"))
      const fromJson = yield* load(join(dir, "fleet.json"))
      assert.deepStrictEqual(fromYaml, fromJson)
      assert.deepStrictEqual(fromYaml.significant, ["trainer-1"])
      assert.strictEqual(fromYaml.config.strategy, "reassign")
      assert.strictEqual(Duration.toMillis(fromYaml.config.checkInterval), 2000)
      assert.strictEqual(fromYaml.config.maxRssBytes, 8 * 1024 ** 3)
      assert.strictEqual(fromYaml.config.unhealthyChecks, 3) // the package default
      assert.deepStrictEqual(fromYaml.workers[1]!.args, []) // the package default
      // the app's own key never reaches the supervisor's specs
      assert.isFalse("significant" in fromYaml.workers[1]!)
    }),
  )

  it.effect("a fleet that differs in one value does not decode to the same fleet", () =>
    Effect.gen(function* () {
      const dir = folder({
        "fleet.yaml": yamlFleet,
        "other.yaml": yamlFleet.replace("maxRestarts: 3", "maxRestarts: 4"),
      })
      const one = yield* load(join(dir, "fleet.yaml"))
      const other = yield* load(join(dir, "other.yaml"))
      assert.notDeepEqual(one, other)
      assert.strictEqual(other.config.maxRestarts, 4)
    }),
  )

  it.effect("a worker's relative cwd is the file's folder's, and a worker without one runs in that folder", () =>
    Effect.gen(function* () {
      const dir = folder({ "fleet.yaml": yamlFleet })
      const fleet = yield* load(join(dir, "fleet.yaml"))
      assert.strictEqual(fleet.workers[0]!.cwd, join(dir, "jobs"))
      assert.strictEqual(fleet.workers[1]!.cwd, dir)
    }),
  )

  const bad: ReadonlyArray<readonly [string, string, string, string]> = [
    ["an unknown key in a block", "monitoring: { intervl: 1 second }", "monitoring.intervl", "unknown key"],
    ["an unknown top-level key", "restart: always", "restart", "unknown key"],
    ["a wrong type", "recovery: { maxRestarts: five }", "recovery.maxRestarts", '"five"'],
    ["an unknown strategy", "recovery: { strategy: restart-some }", "recovery.strategy", '"restart-some"'],
    ["a negative duration", "recovery: { stopGrace: -5 }", "recovery.stopGrace", "negative"],
    [
      "a cap below the base",
      "recovery: { backoffBase: 10 seconds, backoffCap: 1 second }",
      "recovery.backoffCap",
      "backoffBase",
    ],
  ]
  for (const [what, block, key, reason] of bad) {
    it.effect(`${what} is refused, naming ${key}`, () =>
      Effect.gen(function* () {
        const dir = folder({ "fleet.yaml": `workers:\n  - { id: w, command: node }\n${block}\n` })
        const error = yield* failure(join(dir, "fleet.yaml"))
        assert.strictEqual(error._tag, "InvalidFleetConfig")
        if (error._tag !== "InvalidFleetConfig") return
        assert.strictEqual(error.key, key)
        assert.include(error.reason, reason)
        assert.include(error.message, `${key}: `)
      }),
    )
  }

  it.effect("worker mistakes name the worker by its index: an unknown key, a missing command, a duplicate id", () =>
    Effect.gen(function* () {
      const cases: ReadonlyArray<readonly [string, string]> = [
        ["workers:\n  - { id: w, command: node, restart: always }\n", "workers[0].restart"],
        ["workers:\n  - { id: w, command: node }\n  - { id: v }\n", "workers[1].command"],
        ["workers:\n  - { id: w, command: node }\n  - { id: w, command: node }\n", "workers[1].id"],
        ["workers:\n  - { id: w, command: node, significant: yes please }\n", "workers[0].significant"],
        ["workers: []\n", "workers"],
        ["monitoring: {}\n", "workers"],
      ]
      for (const [text, key] of cases) {
        const error = yield* failure(join(folder({ "fleet.yaml": text }), "fleet.yaml"))
        assert.strictEqual(error._tag === "InvalidFleetConfig" ? error.key : error._tag, key, text)
      }
    }),
  )

  it.effect("the same fleet with valid keys only is accepted (the negative twin of the refusals)", () =>
    Effect.gen(function* () {
      const dir = folder({
        "fleet.yaml":
          "workers:\n  - { id: w, command: node }\nmonitoring: { interval: 1 second }\nrecovery: { maxRestarts: 5 }\n",
      })
      const fleet = yield* load(join(dir, "fleet.yaml"))
      assert.strictEqual(fleet.workers.length, 1)
    }),
  )

  it.effect("a missing file, bad YAML, duplicate YAML keys, bad JSON and an unknown extension are typed errors", () =>
    Effect.gen(function* () {
      const dir = folder({
        "indent.yaml": "workers:\n  - id: a\n    command: [x\n",
        "dup.yml": "workers: []\nworkers: []\n",
        "bad.json": '{"workers": [',
        "fleet.toml": "workers = []",
      })
      const missing = yield* failure(join(dir, "none.yaml"))
      assert.strictEqual(missing._tag, "FleetFileUnreadable")
      assert.include(missing.message, "no such file")
      const indent = yield* failure(join(dir, "indent.yaml"))
      assert.strictEqual(indent._tag, "FleetFileSyntax")
      assert.include(indent.message, "line 4")
      const dup = yield* failure(join(dir, "dup.yml"))
      assert.strictEqual(dup._tag, "FleetFileSyntax")
      assert.include(dup.message, "line 2")
      assert.strictEqual((yield* failure(join(dir, "bad.json")))._tag, "FleetFileSyntax")
      const toml = yield* failure(join(dir, "fleet.toml"))
      assert.include(toml.message, ".yaml, .yml or .json")
    }),
  )

  it.effect("the example fleet decodes: a significant fed-server and three clients of three shards", () =>
    Effect.gen(function* () {
      const fleet = yield* load(join(examples, "fleet.yaml"))
      assert.deepStrictEqual(
        fleet.workers.map((w) => w.id),
        ["fed-server", "client-0", "client-1", "client-2"],
      )
      assert.deepStrictEqual(fleet.significant, ["fed-server"])
      assert.strictEqual(fleet.config.strategy, "restart-one")
      const [server, ...clients] = fleet.workers
      // The programs it names are the project's apps, found from the file's folder.
      const app = (spec: (typeof fleet.workers)[number]) =>
        JSON.parse(readFileSync(join(spec.cwd!, spec.args[0]!, "..", "..", "package.json"), "utf8")).name
      assert.strictEqual(app(server!), "@fedguard/fed-server")
      const port = /--port=(\d+)/.exec(server!.args.join(" "))![1]
      for (const [i, client] of clients.entries()) {
        assert.strictEqual(app(client), "@fedguard/fed-client")
        assert.include(client.args, `--server=127.0.0.1:${port}`)
        assert.include(client.args, `--shard-index=${i}`)
        assert.include(client.args, "--shard-count=3")
        assert.strictEqual(client.env.FED_CLIENT_SECRET, server!.env.FED_SERVER_SECRET)
      }
    }),
  )
})
