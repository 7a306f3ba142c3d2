/**
 * The command-line shape both reference apps share: one optional string flag
 * per setting (decoded with the settings' Schema, so `--port abc` and
 * `FED_SERVER_PORT=abc` fail the same way), `--config FILE`, `--help`,
 * `--version`, and exit codes: 0 done, 1 failed, 2 bad usage.
 *
 * @since 0.1.0
 */
import { NodeRuntime, NodeServices } from "@effect/platform-node"
import { Cause, Effect, Exit, Option, type Schema } from "effect"
import { CliError, Command, Flag } from "effect/cli"
import * as Settings from "./Settings.ts"

const kebab = (key: string) => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)

/**
 * Builds a command whose flags are the keys of `schema` in kebab case, each
 * described by `descriptions`, plus `--config`. The handler receives the
 * decoded settings.
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
    readonly run: (settings: S["Type"]) => Effect.Effect<void, E, R>
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
  return Command.make(name, { config, ...flags }, (input) => {
    const { config: configFile, ...given } = input as Record<string, Option.Option<string>>
    return Settings.load(options.schema, {
      flags: given,
      env: process.env,
      envPrefix: options.envPrefix,
      configFile: configFile ?? Option.none(),
    }).pipe(Effect.flatMap(options.run))
  }).pipe(Command.withDescription(options.description))
}

const isUsageError = (error: unknown): boolean =>
  CliError.isCliError(error) || (error instanceof Settings.InvalidSettings && error._tag === "InvalidSettings")

/**
 * Runs a command as the process: bad usage (unknown flag, invalid setting)
 * prints one line naming what is wrong and exits 2; any other failure exits
 * 1; success exits 0. SIGINT/SIGTERM interrupt the program, so scopes close
 * and child processes and sockets are released.
 *
 * @since 0.1.0
 * @category running
 */
export const main = <Name extends string, Input, ContextInput, E, R extends NodeServices.NodeServices>(
  cmd: Command.Command<Name, Input, ContextInput, E, R>,
  version = "0.1.0",
): void => {
  // effect/cli already printed help and parse errors; our own errors get one line on stderr.
  const program = Command.run(cmd, { version }).pipe(
    Effect.tapError((error) =>
      CliError.isCliError(error)
        ? Effect.void
        : Effect.sync(() =>
            process.stderr.write(`${cmd.name}: ${error instanceof Error ? error.message : String(error)}\n`),
          ),
    ),
    Effect.provide(NodeServices.layer),
  )
  NodeRuntime.runMain(program as Effect.Effect<void, E | CliError.CliError>, {
    disableErrorReporting: true,
    teardown: (exit, onExit) => {
      const code = Exit.isSuccess(exit)
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
      onExit(code)
      process.exit(code)
    },
  })
}
