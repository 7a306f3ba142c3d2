/**
 * The shape of a supervisor configuration file (YAML or JSON, parsed by the
 * application), after the torchft-derived process guard's: a `workers` list
 * (id, command, args, env, cwd, pid file, thresholds), a `monitoring` block
 * (check interval, probe timeout, thresholds) and a `recovery` block
 * (strategy, restart limits, backoff, stop grace). Every key but `workers`
 * has the default of `SupervisorConfig`.
 *
 * ```yaml
 * workers:
 *   - id: trainer-0
 *     command: python
 *     args: [train.py, --rank, "0"]
 *     env: { CUDA_VISIBLE_DEVICES: "0" }
 * monitoring: { interval: 1 second, probeTimeout: 10 seconds, maxRssBytes: 8 GiB }
 * recovery: { strategy: reassign, maxRestarts: 5, restartPeriod: 60 seconds }
 * ```
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { backoffCapAtLeastBase, SupervisorConfig } from "./SupervisorConfig.ts"
import { WorkerSpec } from "./WorkerSpec.ts"

const fields = SupervisorConfig.fields

const monitoringBlock = Schema.Struct({
  interval: fields.checkInterval,
  unhealthyChecks: fields.unhealthyChecks,
  probeTimeout: fields.probeTimeout,
  zombie: fields.zombie,
  maxCpuPercent: fields.maxCpuPercent,
  maxRssBytes: fields.maxRssBytes,
}).annotate({ identifier: "Monitoring" })

const recoveryBlock = Schema.Struct({
  strategy: fields.strategy,
  maxRestarts: fields.maxRestarts,
  restartPeriod: fields.restartPeriod,
  backoffBase: fields.backoffBase,
  backoffFactor: fields.backoffFactor,
  backoffCap: fields.backoffCap,
  jitter: fields.jitter,
  stopGrace: fields.stopGrace,
})
  .check(backoffCapAtLeastBase())
  .annotate({ identifier: "Recovery" })

// An absent block is an empty one: every key takes its default.
const orEmpty = <S extends Schema.Struct<Schema.Struct.Fields>>(block: S) =>
  block.pipe(Schema.withDecodingDefaultKey(Effect.succeed({}) as never))

/**
 * The file: `workers` (at least one, unique ids), `monitoring` and
 * `recovery` blocks.
 *
 * @since 0.1.0
 * @category schemas
 */
export const SupervisorFile = Schema.Struct({
  workers: Schema.NonEmptyArray(WorkerSpec).check(
    Schema.makeFilter((workers) => {
      const seen = new Set<string>()
      for (const [index, worker] of workers.entries()) {
        if (seen.has(worker.id)) return { path: [index, "id"], issue: `duplicate worker id ${worker.id}` }
        seen.add(worker.id)
      }
      return undefined
    }),
  ),
  monitoring: orEmpty(monitoringBlock),
  recovery: orEmpty(recoveryBlock),
}).annotate({ identifier: "SupervisorFile" })

/**
 * Decodes a parsed configuration file into the worker specs and the
 * supervisor configuration (`WorkerSupervisor.make`'s options). The
 * `SchemaError` names the wrong key by its path in the file
 * (`["recovery"]["maxRestarts"]`, `["workers"][1]["id"]`), an unknown key
 * included (`["recovery"]["maxRestart"]`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = Effect.fnUntraced(function* (input: unknown) {
  // An unknown key anywhere in the file is refused by name, not ignored: a misspelt `maxRestart`
  // would otherwise leave the default in force without a word.
  const file = yield* Schema.decodeUnknownEffect(SupervisorFile)(input, { onExcessProperty: "error" })
  const { interval, ...monitoring } = file.monitoring
  // Every key of the blocks is decoded and checked (the cross-key backoff rule included) above:
  // the configuration is assembled from decoded values, never re-encoded (an encode of a value
  // that breaks a rule throws).
  const config: SupervisorConfig = { ...monitoring, ...file.recovery, checkInterval: interval }
  return { workers: file.workers, config }
})
