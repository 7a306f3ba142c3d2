/**
 * The fleet file: which workers `fed-supervisor` runs and how it supervises
 * them, in YAML (`.yaml`, `.yml`) or JSON (`.json`), in the shape of the
 * torchft-derived process guard's configuration that
 * `@fedguard/supervisor`'s `SupervisorFile` decodes: a `workers` list, a
 * `monitoring` block and a `recovery` block.
 *
 * The file is untrusted input, checked before any worker starts: an unknown
 * key (a typo such as `intervl`), a wrong type, a missing required key or a
 * rule broken between two keys is an {@link InvalidFleetConfig} that names
 * the key by its path in the file (`recovery.maxRestarts`,
 * `workers[1].command`); a file that cannot be read or parsed is a
 * {@link FleetFileUnreadable} or {@link FleetFileSyntax}. The CLI exits 2 on
 * each.
 *
 * One key is the app's own: a worker marked `significant: true` ends the run
 * when it exits with code 0 (OTP's significant child under
 * `auto_shutdown => any_significant`): a federation is done when its server
 * has finished the job, and restarting it then would train a new one.
 *
 * Relative paths are the file's: a worker's `cwd` is resolved against the
 * file's directory, and a worker without `cwd` runs there, so a fleet file
 * works wherever the CLI is started from.
 *
 * @since 0.1.0
 */
import { type SupervisorConfig, SupervisorFile, WorkerSpec } from "@fedguard/supervisor"
import { Effect, FileSystem, Path, Schema, SchemaIssue } from "effect"
import * as Yaml from "yaml"

/**
 * The file could not be read (missing, a directory, no permission).
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetFileUnreadable extends Schema.TaggedError<FleetFileUnreadable>()("FleetFileUnreadable", {
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `cannot read the fleet file ${this.file}: ${this.reason}`
  }
}

/**
 * The file is not valid YAML or JSON (or has an extension that is neither);
 * `reason` is the parser's, with the line and column where it has them.
 *
 * @since 0.1.0
 * @category errors
 */
export class FleetFileSyntax extends Schema.TaggedError<FleetFileSyntax>()("FleetFileSyntax", {
  file: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.file} is not a valid fleet file: ${this.reason}`
  }
}

/**
 * A key of the file is wrong: `key` is its path in the file
 * (`recovery.maxRestarts`, `workers[0].command`; `""` for the whole file),
 * `reason` what is wrong with it (`unknown key`, `required`, `Expected
 * number, got "five"`).
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidFleetConfig extends Schema.TaggedError<InvalidFleetConfig>()("InvalidFleetConfig", {
  file: Schema.String,
  key: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `${this.file}: ${this.key === "" ? "the file" : this.key}: ${this.reason}`
  }
}

/**
 * Any failure of {@link load}: each is bad usage (exit 2).
 *
 * @since 0.1.0
 * @category errors
 */
export type FleetFileError = FleetFileUnreadable | FleetFileSyntax | InvalidFleetConfig

/**
 * A worker of the fleet file: a `WorkerSpec` plus `significant` (default
 * false).
 *
 * @since 0.1.0
 * @category schemas
 */
export const FleetWorker = WorkerSpec.WorkerSpec.mapFields((fields) => ({
  ...fields,
  significant: Schema.optional(
    Schema.Boolean.annotate({ description: "the run ends when this worker exits with code 0" }),
  ),
}))

/**
 * The fleet file: `SupervisorFile` with {@link FleetWorker}s. Decoded with
 * unknown keys refused.
 *
 * @since 0.1.0
 * @category schemas
 */
export const FleetFile = SupervisorFile.SupervisorFile.mapFields((fields) => ({
  ...fields,
  workers: Schema.NonEmptyArray(FleetWorker),
}))

/**
 * A decoded fleet: the worker specs and supervisor configuration
 * (`WorkerSupervisor.make`'s options) and the ids of the significant workers.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fleet {
  readonly workers: ReadonlyArray<WorkerSpec.WorkerSpec>
  readonly config: SupervisorConfig.SupervisorConfig
  readonly significant: ReadonlyArray<string>
}

// `workers[1].command`, `recovery.maxRestarts`
const keyOf = (path: ReadonlyArray<PropertyKey>): string =>
  path.map((part, i) => (typeof part === "number" ? `[${part}]` : i === 0 ? String(part) : `.${String(part)}`)).join("")

// The first branch of an issue tree down to its leaf, with the path on the way.
const firstLeaf = (
  issue: SchemaIssue.Issue,
  path: ReadonlyArray<PropertyKey> = [],
): { readonly path: ReadonlyArray<PropertyKey>; readonly leaf: SchemaIssue.Issue } => {
  switch (issue._tag) {
    case "Pointer":
      return firstLeaf(issue.issue, [...path, ...issue.path])
    case "Filter":
    case "Encoding":
      return firstLeaf(issue.issue, path)
    case "Composite":
      return issue.issues[0] === undefined ? { path, leaf: issue } : firstLeaf(issue.issues[0], path)
    default:
      return { path, leaf: issue }
  }
}

// What a user wrote, for a message: short values as JSON, long ones cut.
const shown = (input: unknown): string => {
  const text = JSON.stringify(input) ?? String(input)
  return text.length > 60 ? `${text.slice(0, 57)}...` : text
}

const reasonOf = (leaf: SchemaIssue.Issue, written: { readonly value: unknown } | undefined): string => {
  switch (leaf._tag) {
    case "UnexpectedKey":
      return "unknown key"
    case "MissingKey":
      return "required"
    default: {
      const message = SchemaIssue.makeFormatterStandardSchemaV1()(leaf).issues[0]?.message ?? "invalid value"
      return written === undefined ? message : `${message}, got ${shown(written.value)}`
    }
  }
}

// The keys of `SupervisorConfig` that sit in the file's `monitoring` block; the rest sit in `recovery`.
const monitoringKeys: ReadonlySet<PropertyKey> = new Set([
  "unhealthyChecks",
  "probeTimeout",
  "zombie",
  "maxCpuPercent",
  "maxRssBytes",
])

const blockOf = (key: PropertyKey): string =>
  key === "checkInterval"
    ? "monitoring.interval"
    : `${monitoringKeys.has(key) ? "monitoring" : "recovery"}.${String(key)}`

// The value at `path` in the parsed file, if there is one.
const valueAt = (input: unknown, path: ReadonlyArray<PropertyKey>): { readonly value: unknown } | undefined => {
  let value = input
  for (const part of path) {
    if (typeof value !== "object" || value === null || !Object.hasOwn(value, part)) return undefined
    value = (value as Record<PropertyKey, unknown>)[part]
  }
  return { value }
}

const invalid = (file: string, input: unknown, error: Schema.SchemaError, flat: boolean) => {
  const { path, leaf } = firstLeaf(error.issue)
  // An empty list fails as a missing first element.
  if (path.length === 2 && path[0] === "workers" && path[1] === 0 && leaf._tag === "MissingKey") {
    return new InvalidFleetConfig({ file, key: "workers", reason: "must list at least one worker" })
  }
  // A rule of the flat `SupervisorConfig` (backoffCap ≥ backoffBase) names a flat key.
  const key = flat && path.length === 1 ? blockOf(path[0]!) : keyOf(path)
  return new InvalidFleetConfig({ file, key, reason: reasonOf(leaf, flat ? undefined : valueAt(input, path)) })
}

/**
 * Decodes a parsed fleet file (`file` names it in errors): every key is
 * checked, unknown keys refused. Relative paths are not resolved here (see
 * {@link load}).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = Effect.fnUntraced(function* (input: unknown, file: string) {
  const strict = yield* Schema.decodeUnknownEffect(FleetFile)(input, { onExcessProperty: "error" }).pipe(
    Effect.mapError((error) => invalid(file, input, error, false)),
  )
  const significant = strict.workers.filter((worker) => worker.significant === true).map((worker) => worker.id)
  const raw = input as { readonly workers: ReadonlyArray<Record<string, unknown>> }
  const plain = { ...raw, workers: raw.workers.map(({ significant: _, ...spec }) => spec) }
  // The package's decoder checks what the strict pass cannot see (unique ids, backoffCap ≥ backoffBase).
  const decoded = yield* SupervisorFile.decode(plain).pipe(
    Effect.mapError((error) => invalid(file, input, error, true)),
  )
  return { workers: decoded.workers, config: decoded.config, significant } satisfies Fleet
})

/**
 * Parses the text of a fleet file by its extension: `.yaml`/`.yml` as one
 * YAML 1.2 document (duplicate keys refused), `.json` as JSON.
 *
 * @since 0.1.0
 * @category parsing
 */
export const parse = Effect.fnUntraced(function* (text: string, file: string) {
  const lower = file.toLowerCase()
  if (lower.endsWith(".json")) {
    return yield* Effect.try({
      try: (): unknown => JSON.parse(text),
      catch: (error) => new FleetFileSyntax({ file, reason: `invalid JSON: ${(error as Error).message}` }),
    })
  }
  if (!lower.endsWith(".yaml") && !lower.endsWith(".yml")) {
    return yield* new FleetFileSyntax({ file, reason: "expected a .yaml, .yml or .json file" })
  }
  const lineCounter = new Yaml.LineCounter()
  const document = Yaml.parseDocument(text, { uniqueKeys: true, prettyErrors: false, lineCounter })
  const [first] = document.errors
  if (first !== undefined) {
    const at = lineCounter.linePos(first.pos[0])
    return yield* new FleetFileSyntax({
      file,
      reason: `invalid YAML at line ${at.line}, column ${at.col}: ${first.message}`,
    })
  }
  return yield* Effect.try({
    try: (): unknown => document.toJS({ maxAliasCount: 100 }),
    catch: (error) => new FleetFileSyntax({ file, reason: `invalid YAML: ${(error as Error).message}` }),
  })
})

/**
 * Reads, parses and decodes the fleet file at `file`, then resolves each
 * worker's `cwd` against the file's directory (a worker without one runs
 * there).
 *
 * @since 0.1.0
 * @category loading
 */
export const load = Effect.fnUntraced(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const text = yield* fs.readFileString(file).pipe(
    Effect.mapError(
      (error) =>
        new FleetFileUnreadable({
          file,
          reason: error.reason._tag === "NotFound" ? "no such file" : error.message,
        }),
    ),
  )
  const fleet = yield* decode(yield* parse(text, file), file)
  const directory = path.dirname(path.resolve(file))
  return {
    ...fleet,
    workers: fleet.workers.map((worker) => ({ ...worker, cwd: path.resolve(directory, worker.cwd ?? ".") })),
  } satisfies Fleet
})
