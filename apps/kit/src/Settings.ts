/**
 * One place that turns command-line flags, environment variables and a JSON
 * config file into validated settings: flags win over the environment, the
 * environment over the file, the file over the defaults.
 *
 * An application describes its settings as one flat `Schema.Struct` (one key
 * per flag, decoded from strings, with the defaults) and validates them as a
 * whole with checks on that struct:
 *
 * - {@link embed} validates a group of flat settings with a package's own
 *   config Schema (`RetryPolicy`, `HeartbeatConfig`), so the package's rules
 *   (`maxDelay ≥ baseDelay`, `timeout > interval`) are stated once, in the
 *   package, while the flags stay flat (`--retry-base-delay 200ms`).
 * - {@link compare} and {@link rule} state the application's own cross-field
 *   rules (`--min-clients ≤ --expected-clients`).
 *
 * Every failure is located by the issue's structured path (never by reading
 * an error message): a single wrong value becomes {@link InvalidSettings}
 * (the key, where it came from, why), two settings that contradict each other
 * become {@link ConflictingSettings} (both keys and the rule, naming both
 * flags). Applications exit with code 2 on either, before anything listens or
 * connects.
 *
 * @since 0.1.0
 */
import {
  Cause,
  Duration,
  Effect,
  Exit,
  FileSystem,
  Option,
  Path,
  Predicate,
  Schema,
  SchemaGetter,
  SchemaIssue,
} from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

const expectedDuration = (input: string) =>
  new SchemaIssue.InvalidValue({ message: `expected a duration like 200ms, 30s, 2m or 1h, got "${input}"` }, input)

const parseMillis = (input: string): Option.Option<number> => {
  const short = /^\s*(-?)(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(input)
  if (short !== null) return Option.some((short[1] === "-" ? -1 : 1) * Number(short[2]) * units[short[3]!]!)
  return Option.map(Duration.fromInput(input.trim() as Duration.Input), Duration.toMillis)
}

/**
 * A duration written as `200ms`, `30s`, `1.5m`, `1h` (or Effect's long form,
 * `30 seconds`), decoded to milliseconds. A negative duration (`-5s`) fails
 * with "must not be negative".
 *
 * @since 0.1.0
 * @category schemas
 */
export const Millis = Schema.String.pipe(
  Schema.decodeTo(Schema.Finite, {
    decode: SchemaGetter.transformEffect((input: string) =>
      Option.match(parseMillis(input), {
        onNone: () => Effect.fail(expectedDuration(input)),
        onSome: (millis) =>
          millis < 0
            ? Effect.fail(new SchemaIssue.InvalidValue({ message: `must not be negative, got "${input}"` }, input))
            : Effect.succeed(millis),
      }),
    ),
    encode: SchemaGetter.transform((millis: number) => `${millis}ms`),
  }),
)

/**
 * A duration in milliseconds that must be longer than zero: an interval or a
 * timeout of `0ms` cannot work.
 *
 * @since 0.1.0
 * @category schemas
 */
export const PositiveMillis = Millis.check(
  Schema.makeFilter((millis: number) => millis > 0 || "must be a positive duration, got 0ms"),
)

/**
 * Milliseconds as the shortest exact `200ms`/`30s`/`2m`/`1h` form, as users
 * write them (`90000` → `"90s"`, `120000` → `"2m"`).
 *
 * @since 0.1.0
 * @category formatting
 */
export const formatMillis = (millis: number): string => {
  if (millis !== 0 && Number.isFinite(millis)) {
    for (const unit of ["h", "m", "s"] as const) {
      if (millis % units[unit]! === 0) return `${millis / units[unit]!}${unit}`
    }
  }
  return `${millis}ms`
}

/**
 * An integer written as a string (flags, environment), decoded to a number.
 *
 * @since 0.1.0
 * @category schemas
 */
export const IntString = Schema.NumberFromString.pipe(Schema.check(Schema.isInt()))

/**
 * An integer setting between `min` and `max` (inclusive), from a string,
 * defaulting to `fallback` when absent (required when no fallback).
 *
 * @since 0.1.0
 * @category schemas
 */
export const int = (min: number, max: number, fallback?: string) => {
  const base = IntString.pipe(Schema.check(Schema.isBetween({ minimum: min, maximum: max })))
  return fallback === undefined ? base : base.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))
}

/**
 * A duration setting in milliseconds, defaulting to `fallback` (`"30s"`).
 *
 * @since 0.1.0
 * @category schemas
 */
export const millis = (fallback: string) => Millis.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

/**
 * A duration setting in milliseconds that must be positive (timeouts and
 * intervals), defaulting to `fallback`.
 *
 * @since 0.1.0
 * @category schemas
 */
export const positiveMillis = (fallback: string) =>
  PositiveMillis.pipe(Schema.withDecodingDefaultKey(Effect.succeed(fallback)))

const outputFileAnnotation = "@fedguard/federation/Settings/outputFile"

/**
 * A file the application will write (a report). {@link load} checks at start
 * that its directory exists and is writable, and that the path is not a
 * directory, so that a typo fails before the work rather than after it.
 * Only checked: nothing is created.
 *
 * @since 0.1.0
 * @category schemas
 */
export const OutputFile = Schema.String.annotate({ [outputFileAnnotation]: true }).pipe(
  Schema.check(Schema.isMinLength(1)),
)

/**
 * Where a setting's value came from, for error messages.
 *
 * @since 0.1.0
 * @category models
 */
export type Source = "flag" | "environment" | "config file" | "default"

/**
 * A setting could not be read or decoded. The message names the key, the
 * flag and variable that set it, and why it is wrong. Applications exit with
 * code 2 on it.
 *
 * @since 0.1.0
 * @category errors
 */
export class InvalidSettings extends Schema.TaggedError<InvalidSettings>()("InvalidSettings", {
  key: Schema.String,
  source: Schema.String,
  reason: Schema.String,
}) {
  override get message(): string {
    return `invalid setting ${this.key} (from ${this.source}): ${this.reason}`
  }
}

/**
 * Two settings that are each valid contradict each other
 * (`--heartbeat-timeout` not longer than `--heartbeat-interval`). `keys` are
 * the two keys, the one at fault first; `rule` says what must hold, naming
 * both flags and their values. Applications exit with code 2 on it.
 *
 * @since 0.1.0
 * @category errors
 */
export class ConflictingSettings extends Schema.TaggedError<ConflictingSettings>()("ConflictingSettings", {
  keys: Schema.Array(Schema.String),
  rule: Schema.String,
}) {
  override get message(): string {
    return `invalid settings: ${this.rule}`
  }
}

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)
const screaming = (key: string) => kebab(key).replace(/-/g, "_").toUpperCase()

/**
 * The flag name (`--heartbeat-timeout`) and environment variable
 * (`FED_SERVER_HEARTBEAT_TIMEOUT`) of a setting key (`heartbeatTimeout`).
 *
 * @since 0.1.0
 * @category naming
 */
export const names = (key: string, envPrefix: string) => ({
  flag: `--${kebab(key)}`,
  env: `${envPrefix}${screaming(key)}`,
})

const flag = (key: string) => names(key, "").flag

/**
 * How a cross-field rule shows values: `"duration"` as `30s`, `"number"` as
 * is.
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = "number" | "duration"

const show = (kind: Kind, value: unknown) =>
  kind === "duration" && Predicate.isNumber(value) ? formatMillis(value) : String(value)

/**
 * The annotation a package's cross-field check puts on its issue (at the path
 * of the key at fault) so that an application that renames the keys can name
 * both of its settings: `other` is the key compared with, `must` the rule
 * (`"not be shorter than"`), `because` why, optionally. `RetryPolicy` and
 * `HeartbeatConfig` annotate their issues this way; {@link embed} reads it.
 *
 * @since 0.1.0
 * @category models
 */
export interface Relation {
  readonly other: string
  readonly must: string
  readonly because?: string | undefined
}

// The annotation {@link rule} puts on its issues: which settings conflict.
const conflictAnnotation = "@fedguard/federation/Settings/conflict"

const conflict = (key: string, other: string, sentence: string) => ({
  path: [key],
  issue: new SchemaIssue.InvalidValue({ message: sentence, [conflictAnnotation]: [key, other] }),
})

const sentence = (
  settings: Readonly<Record<string, unknown>>,
  key: string,
  must: string,
  other: string,
  kind: Kind,
  because: string | undefined,
) =>
  `${flag(key)} (${show(kind, settings[key])}) must ${must} ${flag(other)} (${show(kind, settings[other])})${
    because === undefined ? "" : `: ${because}`
  }`

/**
 * A cross-field rule of an application's settings, as a check of its struct:
 * `violation` returns a sentence naming both flags when the rule is broken
 * (`flag(key)` gives a key's flag), `undefined` when it holds. The failure
 * is reported at `key` as {@link ConflictingSettings} of `key` and `other`.
 *
 * @example
 * ```ts
 * Settings.rule<{ readonly a: number; readonly ids: string }>("a", "ids", (s, flag) =>
 *   s.a <= s.ids.split(",").length ? undefined : `${flag("a")} (${s.a}) must not exceed the ids in ${flag("ids")}`,
 * )
 * ```
 *
 * @since 0.1.0
 * @category rules
 */
export const rule = <T>(
  key: keyof T & string,
  other: keyof T & string,
  violation: (settings: T, flag: (key: keyof T & string) => string) => string | undefined,
) =>
  Schema.makeFilter<T>((settings) => {
    const broken = violation(settings, flag)
    return broken === undefined ? undefined : conflict(key, other, broken)
  })

const comparators = {
  ">": { holds: (a: number, b: number) => a > b, number: "be greater than", duration: "be longer than" },
  ">=": { holds: (a: number, b: number) => a >= b, number: "be at least", duration: "not be shorter than" },
  "<": { holds: (a: number, b: number) => a < b, number: "be less than", duration: "be shorter than" },
  "<=": { holds: (a: number, b: number) => a <= b, number: "not be greater than", duration: "not be longer than" },
} as const

/**
 * The rule `key comparator other` between two numeric settings (counts, or
 * durations in milliseconds with `kind: "duration"`), skipped while either is
 * absent (an optional setting not given). Broken, it reads e.g.
 * `--round-timeout (30s) must not be shorter than --heartbeat-timeout (90s):
 * because`.
 *
 * @example
 * ```ts
 * Schema.Struct({ minClients: Settings.int(1, 100, "2"), expectedClients: Settings.int(1, 100, "4") }).check(
 *   Settings.compare("minClients", "<=", "expectedClients"),
 * )
 * ```
 *
 * @since 0.1.0
 * @category rules
 */
export const compare = <T>(
  key: keyof T & string,
  comparator: keyof typeof comparators,
  other: keyof T & string,
  options: { readonly kind?: Kind | undefined; readonly because?: string | undefined } = {},
) =>
  Schema.makeFilter<T>((settings) => {
    const values = settings as Readonly<Record<string, unknown>>
    const a = values[key]
    const b = values[other]
    if (!Predicate.isNumber(a) || !Predicate.isNumber(b) || comparators[comparator].holds(a, b)) return undefined
    const kind = options.kind ?? "number"
    return conflict(key, other, sentence(values, key, comparators[comparator][kind], other, kind, options.because))
  })

/**
 * Picks a package's config input out of flat settings: `keys` maps each of
 * the package's keys to the setting that holds it.
 *
 * @example
 * ```ts
 * Settings.project({ baseDelay: "retryBaseDelay" }, { retryBaseDelay: 200, port: 1 }) // { baseDelay: 200 }
 * ```
 *
 * @since 0.1.0
 * @category rules
 */
export const project = <T, const M extends Readonly<Record<string, keyof T>>>(
  keys: M,
  settings: T,
): { -readonly [K in keyof M]: T[M[K]] } => {
  const input: Record<string, unknown> = {}
  for (const [inner, outer] of Object.entries(keys)) input[inner] = settings[outer as keyof T]
  return input as { -readonly [K in keyof M]: T[M[K]] }
}

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
      return firstLeaf(issue.issues[0], path)
    case "AnyOf":
      return issue.issues[0] === undefined ? { path, leaf: issue } : firstLeaf(issue.issues[0], path)
    default:
      return { path, leaf: issue }
  }
}

const annotation = (leaf: SchemaIssue.Issue, key: string): unknown =>
  leaf._tag === "InvalidValue" ? leaf.annotations?.[key] : undefined

const isRelation = (u: unknown): u is Relation =>
  Predicate.hasProperty(u, "other") &&
  Predicate.isString(u.other) &&
  Predicate.hasProperty(u, "must") &&
  Predicate.isString(u.must)

const messageOf = (issue: SchemaIssue.Issue) =>
  SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues[0]?.message ?? "invalid value"

/**
 * Validates a group of flat settings with a package's own config Schema, as a
 * check of the application's struct: `keys` maps each package key to the
 * setting that holds it (`{ baseDelay: "retryBaseDelay" }`); the settings'
 * values (numbers of milliseconds for durations) are decoded by `schema`, so
 * every rule of the package applies without being restated. A failure is
 * reported at the setting that holds the package key at fault; a package
 * issue carrying a {@link Relation} becomes a {@link ConflictingSettings}
 * naming both flags (`--retry-max-delay (1s) must not be shorter than
 * --retry-base-delay (5s)`). The group is checked once every setting in it is
 * present (optional settings not given leave it to the package's defaults
 * elsewhere).
 *
 * @example
 * ```ts
 * import { RetryPolicy } from "@fedguard/retry"
 * const retryKeys = { maxRetries: "maxRetries", baseDelay: "retryBaseDelay", maxDelay: "retryMaxDelay" } as const
 * Schema.Struct({ maxRetries: Settings.int(0, 100, "3"), retryBaseDelay: Settings.millis("1s"), retryMaxDelay: Settings.millis("30s") })
 *   .check(Settings.embed(RetryPolicy.RetryPolicy, retryKeys, { kind: "duration" }))
 * ```
 *
 * @since 0.1.0
 * @category rules
 */
export const embed = <T, const M extends Readonly<Record<string, keyof T & string>>>(
  schema: Schema.ConstraintDecoder<unknown>,
  keys: M,
  options: { readonly kind?: Kind | undefined } = {},
) =>
  Schema.makeFilter<T>((settings) => {
    const input = project(keys, settings) as Record<string, unknown>
    if (Object.values(input).some((value) => value === undefined)) return undefined
    const exit = Schema.decodeUnknownExit(schema)(input, { errors: "first" })
    if (Exit.isSuccess(exit)) return undefined
    const error = Cause.findErrorOption(exit.cause)
    if (Option.isNone(error)) return "invalid settings"
    const { path, leaf } = firstLeaf(error.value.issue)
    const inner = path[0]
    const outer = Predicate.isString(inner) ? keys[inner] : undefined
    if (outer === undefined) return messageOf(error.value.issue)
    const relation = annotation(leaf, "relation")
    const other = isRelation(relation) ? keys[relation.other] : undefined
    if (isRelation(relation) && other !== undefined) {
      const kind = options.kind ?? "number"
      return conflict(
        outer,
        other,
        sentence(settings as Record<string, unknown>, outer, relation.must, other, kind, relation.because),
      )
    }
    return { path: [outer, ...path.slice(1)], issue: messageOf(leaf) }
  })

const isOutputFile = (schema: Schema.Constraint): boolean => schema.ast.annotations?.[outputFileAnnotation] === true

const checkOutputFile = Effect.fnUntraced(function* (file: string) {
  const fs = yield* FileSystem.FileSystem
  const path = yield* Path.Path
  const directory = path.dirname(path.resolve(file))
  const info = yield* Effect.option(fs.stat(directory))
  if (Option.isNone(info)) return Option.some(`cannot write ${file}: directory ${directory} does not exist`)
  if (info.value.type !== "Directory") return Option.some(`cannot write ${file}: ${directory} is not a directory`)
  const writable = yield* Effect.isSuccess(fs.access(directory, { writable: true }))
  if (!writable) return Option.some(`cannot write ${file}: directory ${directory} is not writable`)
  const existing = yield* Effect.option(fs.stat(file))
  if (Option.isSome(existing) && existing.value.type === "Directory") {
    return Option.some(`cannot write ${file}: it is a directory`)
  }
  if (Option.isSome(existing) && !(yield* Effect.isSuccess(fs.access(file, { writable: true })))) {
    return Option.some(`cannot write ${file}: it is not writable`)
  }
  return Option.none<string>()
})

/**
 * Decodes settings from flags, environment and an optional JSON config file.
 * `flags` holds the raw string of every flag the user passed (absent keys
 * are not set); the schema's fields decode from strings and carry the
 * defaults, and its checks validate the settings as a whole. Unknown keys in
 * the config file are an error (a typo must not silently fall back to a
 * default). Then every {@link OutputFile} setting is checked for
 * writability. Fails with {@link InvalidSettings} or
 * {@link ConflictingSettings}, located by the issue's path.
 *
 * @since 0.1.0
 * @category constructors
 */
export const load = Effect.fnUntraced(function* <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S,
  options: {
    readonly flags: Readonly<Record<string, Option.Option<string>>>
    readonly env: Readonly<Record<string, string | undefined>>
    readonly envPrefix: string
    readonly configFile: Option.Option<string>
  },
): Effect.fn.Return<
  S["Type"],
  InvalidSettings | ConflictingSettings,
  FileSystem.FileSystem | Path.Path | S["DecodingServices"]
> {
  const keys = Object.keys(schema.fields)
  const raw: Record<string, string> = {}
  const sources: Record<string, Source> = {}
  if (Option.isSome(options.configFile)) {
    const fs = yield* FileSystem.FileSystem
    const path = options.configFile.value
    const text = yield* fs
      .readFileString(path)
      .pipe(
        Effect.mapError(
          (error) =>
            new InvalidSettings({ key: "config", source: "flag", reason: `cannot read ${path}: ${error.message}` }),
        ),
      )
    const parsed = yield* Schema.decodeUnknownEffect(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Json)))(
      text,
    ).pipe(
      Effect.mapError(
        (error) => new InvalidSettings({ key: "config", source: "config file", reason: `${path}: ${error.message}` }),
      ),
    )
    for (const [key, value] of Object.entries(parsed)) {
      if (!keys.includes(key)) {
        return yield* new InvalidSettings({
          key,
          source: `config file ${path}`,
          reason: `unknown key (known keys: ${keys.join(", ")})`,
        })
      }
      raw[key] = typeof value === "string" ? value : JSON.stringify(value)
      sources[key] = "config file"
    }
  }
  for (const key of keys) {
    const fromEnv = options.env[names(key, options.envPrefix).env]
    if (fromEnv !== undefined && fromEnv !== "") {
      raw[key] = fromEnv
      sources[key] = "environment"
    }
    const fromFlag = options.flags[key]
    if (fromFlag !== undefined && Option.isSome(fromFlag)) {
      raw[key] = fromFlag.value
      sources[key] = "flag"
    }
  }
  const sourceOf = (key: string) => {
    const where = names(key, options.envPrefix)
    const source = sources[key] ?? "default"
    return source === "flag" ? where.flag : source === "environment" ? where.env : source
  }
  const settings = yield* Schema.decodeUnknownEffect(schema)(raw, { errors: "first" }).pipe(
    Effect.mapError((error) => {
      const { path, leaf } = firstLeaf(error.issue)
      const conflicting = annotation(leaf, conflictAnnotation)
      if (Predicate.isIterable(conflicting)) {
        return new ConflictingSettings({ keys: Array.from(conflicting, String), rule: messageOf(leaf) })
      }
      // A check of the whole struct that names no key: nothing to point at but the settings.
      if (!Predicate.isString(path[0])) {
        return new InvalidSettings({ key: "settings", source: "their combination", reason: messageOf(error.issue) })
      }
      const key = path[0]
      if (leaf._tag === "MissingKey") {
        const where = names(key, options.envPrefix)
        return new InvalidSettings({
          key,
          source: "nowhere",
          reason: `required: pass ${where.flag}, set ${where.env}, or put "${key}" in the config file`,
        })
      }
      return new InvalidSettings({ key, source: sourceOf(key), reason: messageOf(error.issue) })
    }),
  )
  for (const [key, field] of Object.entries(schema.fields)) {
    const value = (settings as Record<string, unknown>)[key]
    if (!isOutputFile(field) || !Predicate.isString(value)) continue
    const problem = yield* checkOutputFile(value)
    if (Option.isSome(problem)) {
      return yield* new InvalidSettings({ key, source: sourceOf(key), reason: problem.value })
    }
  }
  return settings
})

/**
 * {@link load} from a plain record of flag values (`{ heartbeatTimeout: "1s" }`),
 * with no environment and no config file: for settings built in code (an
 * embedding program, a test) that must pass the same validation as a command
 * line.
 *
 * @since 0.2.0
 * @category constructors
 */
export const loadFlags = <S extends Schema.Struct<Schema.Struct.Fields>>(
  schema: S,
  envPrefix: string,
  flags: Readonly<Record<string, string>>,
) =>
  load(schema, {
    flags: Object.fromEntries(Object.entries(flags).map(([key, value]) => [key, Option.some(value)])),
    env: {},
    envPrefix,
    configFile: Option.none(),
  })
