/**
 * What a supervisor runs: one worker process per spec, started from a
 * command line with its environment and working directory, as in the
 * torchft-derived process guard's `workers:` list (id, command, env, working
 * directory, pid file, thresholds).
 *
 * @since 0.1.0
 */
import { Effect, Schema } from "effect"
import { HealthThresholds } from "./SupervisorConfig.ts"

/**
 * A worker id: 1 to 128 characters of letters, digits, `.`, `_` and `-`, so
 * it is safe in a log line, a metric attribute and a file name.
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkerId = Schema.String.check(
  Schema.makeFilter((id) => /^[A-Za-z0-9._-]{1,128}$/.test(id) || "must be 1 to 128 letters, digits, '.', '_' or '-'"),
).annotate({ identifier: "WorkerId", description: "the worker's unique id" })

/**
 * One worker:
 *
 * | key | default | meaning |
 * | --- | --- | --- |
 * | `id` | required | unique id (`WorkerId`) |
 * | `command` | required | the program (a path or a name looked up in `PATH`) |
 * | `args` | `[]` | its arguments, passed as they are (no shell) |
 * | `env` | `{}` | variables added to the supervisor's environment |
 * | `cwd` | the supervisor's | working directory |
 * | `pidFile` | none | for a launcher (a shell wrapper, a job launcher) that starts the real worker: the file where it writes that process's pid; health is then read from that pid, and a zombie or vanished target is a failure of the worker |
 * | `health` | the supervisor's | per-worker `maxCpuPercent`, `maxRssBytes`, `zombie` overriding `SupervisorConfig` |
 *
 * @since 0.1.0
 * @category schemas
 */
export const WorkerSpec = Schema.Struct({
  id: WorkerId,
  command: Schema.NonEmptyString.annotate({ description: "the program to run" }),
  args: Schema.Array(Schema.String)
    .annotate({ description: "its arguments, passed without a shell" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed([]))),
  env: Schema.Record(Schema.String, Schema.String)
    .annotate({ description: "variables added to the supervisor's environment" })
    .pipe(Schema.withDecodingDefaultKey(Effect.succeed({}))),
  cwd: Schema.optional(Schema.NonEmptyString.annotate({ description: "working directory" })),
  pidFile: Schema.optional(
    Schema.NonEmptyString.annotate({ description: "file where a launcher writes the real worker's pid" }),
  ),
  health: Schema.optional(HealthThresholds),
}).annotate({ identifier: "WorkerSpec", description: "a supervised worker process" })

/**
 * @since 0.1.0
 * @category models
 */
export type WorkerSpec = typeof WorkerSpec.Type

/**
 * Decodes a spec from untrusted input (a config file); the error names the
 * wrong key.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode: (input: unknown) => Effect.Effect<WorkerSpec, Schema.SchemaError> =
  Schema.decodeUnknownEffect(WorkerSpec)
