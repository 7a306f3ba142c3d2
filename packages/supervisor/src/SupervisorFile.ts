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
import { SupervisorConfig } from "./SupervisorConfig.ts"
import { WorkerSpec } from "./WorkerSpec.ts"

const fields = SupervisorConfig.fields

const block = <F extends Schema.Struct.Fields>(fields: F, identifier: string) =>
  Schema.Struct(fields)
    .annotate({ identifier })
    // an absent block is an empty one: every key takes its default
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed({}) as never))

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
  monitoring: block(
    {
      interval: fields.checkInterval,
      unhealthyChecks: fields.unhealthyChecks,
      probeTimeout: fields.probeTimeout,
      zombie: fields.zombie,
      maxCpuPercent: fields.maxCpuPercent,
      maxRssBytes: fields.maxRssBytes,
    },
    "Monitoring",
  ),
  recovery: block(
    {
      strategy: fields.strategy,
      maxRestarts: fields.maxRestarts,
      restartPeriod: fields.restartPeriod,
      backoffBase: fields.backoffBase,
      backoffFactor: fields.backoffFactor,
      backoffCap: fields.backoffCap,
      jitter: fields.jitter,
      stopGrace: fields.stopGrace,
    },
    "Recovery",
  ),
}).annotate({ identifier: "SupervisorFile" })

/**
 * Decodes a parsed configuration file into the worker specs and the
 * supervisor configuration (`WorkerSupervisor.make`'s options). The
 * `SchemaError` names the wrong key by its path in the file
 * (`["recovery"]["maxRestarts"]`, `["workers"][1]["id"]`).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = Effect.fnUntraced(function* (input: unknown) {
  const file = yield* Schema.decodeUnknownEffect(SupervisorFile)(input)
  const { interval, ...monitoring } = file.monitoring
  const config = yield* Schema.decodeUnknownEffect(SupervisorConfig)({
    ...Schema.encodeSync(SupervisorConfig)({
      ...Schema.decodeUnknownSync(SupervisorConfig)({}),
      ...monitoring,
      ...file.recovery,
      checkInterval: interval,
    }),
  })
  return { workers: file.workers, config }
})
