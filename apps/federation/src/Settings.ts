/**
 * One place that turns command-line flags, environment variables and a JSON
 * config file into validated settings: flags win over the environment, the
 * environment over the file, the file over the defaults. Every value is
 * decoded by a Schema, and an error names the key, where it came from, and
 * what was wrong.
 *
 * @since 0.1.0
 */
import { Duration, Effect, FileSystem, Option, Schema, SchemaGetter, SchemaIssue } from "effect"

const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }

/**
 * A duration written as `200ms`, `30s`, `1.5m`, `1h` (or Effect's long form,
 * `30 seconds`), decoded to milliseconds.
 *
 * @since 0.1.0
 * @category schemas
 */
export const Millis = Schema.String.pipe(
  Schema.decodeTo(Schema.Number.pipe(Schema.check(Schema.isGreaterThanOrEqualTo(0))), {
    decode: SchemaGetter.transformEffect((input: string) => {
      const short = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(input)
      if (short !== null) return Effect.succeed(Number(short[1]) * units[short[2]!]!)
      const long = Duration.fromInput(input as Duration.Input)
      if (Option.isSome(long)) return Effect.succeed(Duration.toMillis(long.value))
      return Effect.fail(
        new SchemaIssue.InvalidValue(
          { message: `expected a duration like 200ms, 30s, 2m or 1h, got "${input}"` },
          input,
        ),
      )
    }),
    encode: SchemaGetter.transform((millis: number) => `${millis}ms`),
  }),
)

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

/**
 * Decodes settings from flags, environment and an optional JSON config file.
 * `flags` holds the raw string of every flag the user passed (absent keys
 * are not set); the schema's fields decode from strings and carry the
 * defaults. Unknown keys in the config file are an error (a typo must not
 * silently fall back to a default).
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
): Effect.fn.Return<S["Type"], InvalidSettings, FileSystem.FileSystem | S["DecodingServices"]> {
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
  return yield* Schema.decodeUnknownEffect(schema)(raw, { errors: "first" }).pipe(
    Effect.mapError((error) => {
      const match = /at \["([^"\]]+)"/.exec(error.message)
      const key = match?.[1] ?? "settings"
      const where = names(key, options.envPrefix)
      const source = sources[key] ?? "default"
      const detail =
        source === "flag"
          ? where.flag
          : source === "environment"
            ? where.env
            : source === "default"
              ? "default"
              : source
      const first = error.message.split("\n")[0] ?? error.message
      return first === "Missing key"
        ? new InvalidSettings({
            key,
            source: "nowhere",
            reason: `required: pass ${where.flag}, set ${where.env}, or put "${key}" in the config file`,
          })
        : new InvalidSettings({ key, source: detail, reason: first })
    }),
  )
})
