/**
 * The command-line shape both reference apps share: one optional string flag
 * per setting (decoded with the settings' Schema, so `--port abc` and
 * `FED_SERVER_PORT=abc` fail the same way), `--config FILE`, `--help`,
 * `--version`, and exit codes: 0 done, 1 failed, 2 bad usage.
 *
 * Bad usage prints one line on stderr naming what is wrong (a parse error
 * adds a short "run with --help" hint), never the help text: the settings
 * are validated as a whole (see `Settings`) before the handler runs, so
 * nothing listens or connects with settings that cannot work.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Console, Effect, Exit, Option, type Schema, Stdio } from "effect"
import { CliError, CliOutput, Command, Flag } from "effect/cli"
import * as Settings from "./Settings.ts"

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

/**
 * Builds a command whose flags are the keys of `schema` in kebab case, each
 * described by `descriptions`, plus `--config`. The handler receives the
 * settings decoded and validated as a whole by `Settings.load`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const command = <S extends Schema.Struct<Schema.Struct.Fields>, E, R>(
  name: string,
  options: {
    readonly description: string
    readonly schema: S
    readonly descriptions: Readonly<Record<string, string>>
    readonly envPrefix: string
    /**
     * Boolean switches outside the settings (`--explain-timeouts`): each is
     * `--kebab-name`, described by `descriptions`, and handed to `run` as
     * `switches[name]`.
     */
    readonly switches?: ReadonlyArray<string> | undefined
    readonly run: (settings: S["Type"], switches: Readonly<Record<string, boolean>>) => Effect.Effect<void, E, R>
  },
) => {
  const keys = Object.keys(options.schema.fields)
  const flags: Record<string, Flag.Flag<Option.Option<string>>> = {}
  for (const key of keys) {
    const env = Settings.names(key, options.envPrefix).env
    flags[key] = Flag.String(kebab(key)).pipe(
      Flag.withDescription(`${options.descriptions[key] ?? key} [env ${env}]`),
      Flag.optional,
    )
  }
  const config = Flag.String("config").pipe(
    Flag.withDescription("JSON file of settings (keys in camelCase); flags and environment override it"),
    Flag.optional,
  )
  const switchNames = options.switches ?? []
  const switchFlags: Record<string, Flag.Flag<boolean>> = {}
  for (const key of switchNames) {
    switchFlags[key] = Flag.Boolean(kebab(key)).pipe(
      Flag.withDescription(options.descriptions[key] ?? key),
      Flag.withDefault(false),
    )
  }
  return Command.make(name, { config, ...flags, ...switchFlags }, (input) => {
    const { config: configFile, ...rest } = input as Record<string, Option.Option<string> | boolean>
    const given: Record<string, Option.Option<string>> = {}
    const switches: Record<string, boolean> = {}
    for (const [key, value] of Object.entries(rest)) {
      if (typeof value === "boolean") switches[key] = value
      else given[key] = value
    }
    return Settings.load(options.schema, {
      flags: given,
      env: process.env,
      envPrefix: options.envPrefix,
      configFile: (configFile as Option.Option<string> | undefined) ?? Option.none(),
    }).pipe(Effect.flatMap((settings) => options.run(settings, switches)))
  }).pipe(Command.withDescription(options.description))
}

// A value that starts with a dash and a digit or a dot: `-5s`, `-1`, `-.5m`.
const dashedValue = /^-[\d.]/

/**
 * Prepares raw arguments for the parser: after a long flag written without
 * `=` (`--heartbeat-interval`), an argument that starts with `-` and a digit
 * or a dot (`-5s`) is that flag's value, not a cluster of short flags, so it
 * becomes `--heartbeat-interval=-5s` and the value's own error ("must not be
 * negative") is reported. Everything after `--` is left alone. Other values
 * that start with a dash are written `--flag=-value`.
 *
 * @example
 * ```ts
 * Cli.normalizeArgs(["--heartbeat-interval", "-5s"]) // ["--heartbeat-interval=-5s"]
 * ```
 *
 * @since 0.1.0
 * @category parsing
 */
export const normalizeArgs = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const out: Array<string> = []
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg === "--") return [...out, ...args.slice(i)]
    const next = args[i + 1]
    if (arg.startsWith("--") && !arg.includes("=") && next !== undefined && dashedValue.test(next)) {
      out.push(`${arg}=${next}`)
      i++
    } else {
      out.push(arg)
    }
  }
  return out
}

const isUsageError = (error: unknown): boolean =>
  CliError.isCliError(error) ||
  error instanceof Settings.InvalidSettings ||
  error instanceof Settings.ConflictingSettings

/**
 * The process exit code of a finished run: 0 done, 130 interrupted (SIGINT,
 * SIGTERM), 2 bad usage (a parse error, `InvalidSettings`,
 * `ConflictingSettings`), 1 any other failure. `--help` and `--version`
 * are done (0).
 *
 * @since 0.1.0
 * @category running
 */
export const exitCode = (exit: Exit.Exit<unknown, unknown>): number =>
  Exit.isSuccess(exit)
    ? 0
    : Cause.hasInterruptsOnly(exit.cause)
      ? 130
      : Option.match(Cause.findErrorOption(exit.cause), {
          onNone: () => 1,
          onSome: (error) =>
            CliError.isCliError(error) && error._tag === "ShowHelp"
              ? error.errors.length > 0
                ? 2
                : 0
              : isUsageError(error)
                ? 2
                : 1,
        })

// Parse errors as one line and a hint instead of the full help text.
const presenter = (name: string) =>
  CliOutput.layerPresenter({
    present: (event) =>
      event._tag === "InvalidInvocation"
        ? Console.error(
            `${name}: ${(event.errors[0]?.message ?? "invalid command line").split("\n")[0]} (run ${name} --help for usage)`,
          )
        : CliOutput.defaultPresenter.present(event),
  })

/**
 * Runs a command with the arguments of the `Stdio` service (normalized by
 * {@link normalizeArgs}): help and version as usual, bad usage and any other
 * failure as one line on stderr (`fed-server: invalid settings: …`). Fails
 * with the command's error; {@link exitCode} maps the result to the exit
 * code. {@link main} runs it as the process.
 *
 * @since 0.1.0
 * @category running
 */
export const run = <Name extends string, Input, ContextInput, E, R>(
  cmd: Command.Command<Name, Input, ContextInput, E, R>,
  version = "0.1.0",
) =>
  Effect.gen(function* () {
    const stdio = yield* Stdio.Stdio
    const args = yield* stdio.args
    return yield* Command.runWith(cmd, { version })(normalizeArgs(args))
  }).pipe(
    Effect.tapError((error) =>
      CliError.isCliError(error)
        ? Effect.void
        : Console.error(`${cmd.name}: ${error instanceof Error ? error.message : String(error)}`),
    ),
    // A defect (a bug, or an exception from a library) is said too, never a silent exit 1.
    Effect.tapCause((cause) =>
      Cause.hasDies(cause)
        ? Console.error(`${cmd.name}: unexpected error: ${String(Cause.squash(cause))}`)
        : Effect.void,
    ),
    Effect.provide(presenter(cmd.name)),
  )

/**
 * Runs a command as the process: bad usage (unknown flag, invalid or
 * conflicting settings, an output file that cannot be written) prints one
 * line naming what is wrong and exits 2; any other failure exits 1; success
 * exits 0. SIGINT/SIGTERM interrupt the program, so scopes close and child
 * processes and sockets are released.
 *
 * @since 0.1.0
 * @category running
 */
export const main = <Name extends string, Input, ContextInput, E, R extends NodeServices.NodeServices>(
  cmd: Command.Command<Name, Input, ContextInput, E, R>,
  version = "0.1.0",
): void => {
  const program = run(cmd, version).pipe(Effect.provide(NodeServices.layer))
  NodeRuntime.runMain(program as Effect.Effect<void, E | CliError.CliError>, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const code = exitCode(exit)
      onExit(code)
      process.exit(code)
    },
  })
}
