import { Duration, Effect, Option, Schema, SchemaIssue, SchemaTransformation } from "effect"

const expected = 'a non-negative duration such as "1 second", "200 millis", a number of milliseconds, or a Duration'

const plainNumber = /^\d+(\.\d+)?$/

// Environment variables are strings: "200" means 200 ms there, as 200 does in JSON.
const parse = (input: string | number | Duration.Duration): Option.Option<Duration.Duration> =>
  typeof input === "string" && plainNumber.test(input.trim())
    ? Option.some(Duration.millis(Number(input.trim())))
    : Duration.fromInput((typeof input === "string" ? input.trim() : input) as Duration.Input)

/**
 * A duration field of a configuration Schema: decodes a string that
 * `Duration.fromInput` understands ("1 second", "200 millis"), a number of
 * milliseconds (also as a string, for environment variables), or a `Duration`
 * value; rejects negative durations. Encodes to a number of milliseconds,
 * which round-trips through JSON and environment variables alike.
 */
export const DurationInput = Schema.Union([Schema.String, Schema.Finite, Schema.Duration]).pipe(
  Schema.decodeTo(
    Schema.Duration,
    SchemaTransformation.transformEffect<Duration.Duration, string | number | Duration.Duration>({
      decode: (input, options) =>
        Option.match(
          Option.filter(parse(input), (d) => !Duration.isNegative(d)),
          {
            onNone: () => Effect.fail(new SchemaIssue.InvalidValue({ expected }, input, options)),
            onSome: Effect.succeed,
          },
        ),
      encode: (duration) => Effect.succeed(Duration.toMillis(duration)),
    }),
  ),
)
