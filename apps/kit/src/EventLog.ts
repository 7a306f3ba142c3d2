/**
 * JSON-lines logging for the reference apps, and the two-way mapping between
 * typed events and those lines.
 *
 * What happened is a typed event (`ServerEvent`, `ClientEvent`); a log line is
 * only its rendering: `{"event":"round-completed","round":3,…,"level":"INFO","time":"…"}`.
 * {@link codec} gives both directions for one event union, so the demo and the
 * tests decode lines back into the same typed events instead of grepping.
 *
 * @since 0.1.0
 */
import { Effect, type Layer, Logger, Option, PubSub, Schema, type Scope, Stream } from "effect"

const eventName = /^[a-z]+(?:-[a-z]+)*$/

const toLine = (structured: {
  readonly message: unknown
  readonly level: string
  readonly timestamp: string
  readonly cause?: string | undefined
  readonly annotations: Record<string, unknown>
}): string =>
  JSON.stringify({
    // `event` is always a name (`client-joined`); free-text messages from libraries
    // (the heartbeat package's "client c1 went offline …") go under `message`.
    ...(typeof structured.message === "string" && eventName.test(structured.message)
      ? { event: structured.message }
      : { event: "log", message: structured.message }),
    ...structured.annotations,
    level: structured.level,
    time: structured.timestamp,
    ...(structured.cause === undefined ? {} : { cause: structured.cause }),
  })

/**
 * The line format: `Effect.logInfo("client-joined").pipe(Effect.annotateLogs({ id }))`
 * prints `{"event":"client-joined","id":"c1","level":"INFO","time":"…"}`.
 *
 * @since 0.1.0
 * @category loggers
 */
export const formatter = Logger.map(Logger.formatStructured, toLine)

/**
 * {@link formatter}, printed to stdout.
 *
 * @since 0.1.0
 * @category loggers
 */
export const logger = formatter.pipe(Logger.withConsoleLog)

/**
 * Replaces the default logger with the JSON-lines one. The level is the CLI's
 * global `--log-level` (default info).
 *
 * @since 0.1.0
 * @category layers
 */
export const layer: Layer.Layer<never> = Logger.layer([logger])

/**
 * How one event kind is logged: its stable line name (`"round-completed"`)
 * and its level.
 *
 * @since 0.1.0
 * @category models
 */
export interface LineSpec {
  readonly name: string
  readonly level: "Debug" | "Info" | "Warning" | "Error"
}

/**
 * Both directions between a tagged event union and log lines:
 *
 * - `log(event)` logs the event as one line: the event's line name, then its
 *   encoded fields as annotations (the `_tag` is dropped: the name replaces it).
 * - `fromLine(line)` decodes a line back into the typed event, or `None` for
 *   a line that is not one of these events (library text, another app's
 *   events, garbage). Extra keys (`level`, `time`) are ignored.
 *
 * Every `_tag` of the union must have a `LineSpec`; line names must be unique.
 *
 * @since 0.1.0
 * @category codecs
 */
export const codec = <S extends Schema.Codec<{ readonly _tag: string }, { readonly _tag: string }>>(
  schema: S,
  specs: { readonly [Tag in S["Type"]["_tag"]]: LineSpec },
) => {
  const byName = new Map<string, string>()
  for (const [tag, spec] of Object.entries(specs) as Array<[string, LineSpec]>) {
    if (byName.has(spec.name)) throw new Error(`EventLog.codec: line name ${spec.name} is used twice`)
    byName.set(spec.name, tag)
  }
  const encode = Schema.encodeSync(schema as unknown as Schema.Codec<S["Type"], Record<string, unknown>>)
  const decode = Schema.decodeUnknownOption(schema as unknown as Schema.Codec<S["Type"], unknown>)
  const parseJson = Schema.decodeUnknownOption(Schema.fromJsonString(Schema.Record(Schema.String, Schema.Json)))

  const log = (event: S["Type"]): Effect.Effect<void> => {
    const spec = (specs as Record<string, LineSpec>)[event._tag]!
    const { _tag, ...fields } = encode(event)
    const line = spec.name
    const logged =
      spec.level === "Debug"
        ? Effect.logDebug(line)
        : spec.level === "Warning"
          ? Effect.logWarning(line)
          : spec.level === "Error"
            ? Effect.logError(line)
            : Effect.logInfo(line)
    return logged.pipe(Effect.annotateLogs(fields))
  }

  const fromObject = (object: Readonly<Record<string, unknown>>): Option.Option<S["Type"]> => {
    const tag = typeof object.event === "string" ? byName.get(object.event) : undefined
    if (tag === undefined) return Option.none()
    const { event: _event, level: _level, time: _time, ...fields } = object
    return decode({ ...fields, _tag: tag })
  }

  const fromLine = (line: string): Option.Option<S["Type"]> => Option.flatMap(parseJson(line), fromObject)

  return { log, fromLine, fromObject, nameOf: (tag: S["Type"]["_tag"]) => specs[tag].name } as const
}

/**
 * An event hub: `publish` logs the event's line (through `log`, from
 * {@link codec}), then delivers the event to every subscriber, in that order,
 * so a line is never later than a reaction to it; `subscribe` subscribes at
 * once in the caller's Scope, so nothing published after it returns is
 * missed. The `PubSub` is unbounded (events are rare: a few per client and
 * per round) and shut down with the Scope the hub is built in.
 *
 * @example
 * ```ts
 * export const layer = Layer.effect(ServerEvents, EventLog.hub(ServerEvent.lines))
 * ```
 *
 * @since 0.2.0
 * @category hubs
 */
export interface Hub<E> {
  readonly publish: (event: E) => Effect.Effect<void>
  readonly subscribe: Effect.Effect<Stream.Stream<E>, never, Scope.Scope>
}

/**
 * Builds a {@link Hub} for the events `lines` renders.
 *
 * @since 0.2.0
 * @category hubs
 */
export const hub = <E>(lines: {
  readonly log: (event: E) => Effect.Effect<void>
}): Effect.Effect<Hub<E>, never, Scope.Scope> =>
  Effect.map(Effect.acquireRelease(PubSub.unbounded<E>(), PubSub.shutdown), (pubsub) => ({
    publish: (event: E) => Effect.andThen(lines.log(event), PubSub.publish(pubsub, event)),
    subscribe: Effect.map(PubSub.subscribe(pubsub), Stream.fromSubscription),
  }))
