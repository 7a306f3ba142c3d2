/**
 * The faults a demo run injects (`--kill client-2@3 --restart client-2@6`,
 * `--kill-server@3`), checked against the run before any process starts, so
 * a typo fails at once instead of being silently ignored half-way through
 * the run.
 *
 * @since 0.2.0
 */
import { Effect, Schema, SchemaGetter } from "effect"

/**
 * A fault scheduled at the start of a round.
 *
 * @since 0.2.0
 * @category models
 */
export interface Fault {
  readonly client: string
  readonly round: number
}

/**
 * Parses `client-2@3` into `{ client: "client-2", round: 3 }`.
 *
 * @since 0.2.0
 * @category parsing
 */
export const Fault = Schema.String.pipe(
  Schema.check(Schema.isPattern(/^[\w.-]+@\d+$/, { message: "expected CLIENT@ROUND, e.g. client-2@3" })),
  Schema.decodeTo(Schema.Struct({ client: Schema.String, round: Schema.Int }), {
    decode: SchemaGetter.transform((text: string) => {
      const at = text.lastIndexOf("@")
      return { client: text.slice(0, at), round: Number(text.slice(at + 1)) }
    }),
    encode: SchemaGetter.transform((fault: Fault) => `${fault.client}@${fault.round}`),
  }),
)

/**
 * A fault that cannot happen in this run: `flag` and `fault` name what the
 * user typed (`--kill`, `client-9@3`), `problem` says what is wrong. Its
 * message is the one line the demo prints before exiting with code 2.
 *
 * @since 0.2.0
 * @category errors
 */
export class InvalidFault extends Schema.TaggedError<InvalidFault>()("InvalidFault", {
  flag: Schema.Literals(["--kill", "--restart", "--stall", "--kill-server"]),
  fault: Schema.String,
  problem: Schema.String,
}) {
  override get message(): string {
    // `--kill-server@3` is written as one word; the client faults take their value after a space.
    const separator = this.flag === "--kill-server" ? "@" : " "
    return `${this.flag}${separator}${this.fault}: ${this.problem}`
  }
}

const killServerAt = /^--kill-server@(.*)$/

/**
 * Rewrites `--kill-server@3` (how the demo documents a server kill: no client
 * id before the `@`) into `--kill-server=3`, the form the command-line parser
 * reads; `--kill-server 3` needs no rewriting. Everything after `--` is left
 * alone. A bad value (`--kill-server@x`) is kept, so the parser reports it
 * naming the flag.
 *
 * @example
 * ```ts
 * FaultPlan.spellOutServerKills(["--kill-server@3", "--rounds", "6"]) // ["--kill-server=3", "--rounds", "6"]
 * ```
 *
 * @since 0.3.0
 * @category parsing
 */
export const spellOutServerKills = (args: ReadonlyArray<string>): ReadonlyArray<string> => {
  const end = args.indexOf("--")
  const flags = end === -1 ? args : args.slice(0, end)
  const rest = end === -1 ? [] : args.slice(end)
  return [...flags.map((arg) => arg.replace(killServerAt, "--kill-server=$1")), ...rest]
}

/**
 * What happens to a client at the start of a round.
 *
 * @since 0.2.0
 * @category models
 */
export interface Action {
  readonly kind: "kill" | "restart"
  readonly client: string
  readonly round: number
}

/**
 * A checked fault schedule: the client actions in the order they happen (by
 * round; a kill before a restart in the same round), and the rounds after
 * which the server is killed and started again, ascending.
 *
 * @since 0.2.0
 * @category models
 */
export interface FaultPlan {
  readonly actions: ReadonlyArray<Action>
  /** `--kill-server@3`: after round 3 completes, SIGKILL the server and start it again on its state file. */
  readonly serverKills: ReadonlyArray<number>
}

const flagOf = (kind: Action["kind"]) => (kind === "kill" ? "--kill" : "--restart")
const textOf = (action: Action) => `${action.client}@${action.round}`

// A server kill comes after a round completes and the restarted server resumes the job from its
// state file: it needs a state file, and a round after it (after the last one the job is
// finished, and a restarted server would find nothing to resume).
const checkServerKills = Effect.fnUntraced(function* (options: {
  readonly rounds: number
  readonly killServer: ReadonlyArray<number>
  readonly state?: string | undefined
}): Effect.fn.Return<ReadonlyArray<number>, InvalidFault> {
  const seen = new Set<number>()
  for (const round of options.killServer) {
    const invalid = (problem: string) => new InvalidFault({ flag: "--kill-server", fault: String(round), problem })
    if (round < 1 || round > options.rounds) return yield* invalid(`round ${round} is outside 1…${options.rounds}`)
    if (round === options.rounds) {
      const earlier = options.rounds === 1 ? "this run has no earlier round" : `kill it after 1…${options.rounds - 1}`
      return yield* invalid(
        `round ${round} is the last: the job is finished after it, so a restarted server would have nothing to resume; ${earlier}`,
      )
    }
    if (seen.has(round)) return yield* invalid(`the server is already killed after round ${round}`)
    if (options.state === ":memory:") {
      return yield* invalid("--state :memory: keeps no state, so the restarted server would start the job over")
    }
    seen.add(round)
  }
  return [...seen].sort((a, b) => a - b)
})

/**
 * Checks every fault against the run: the client must be one the demo starts
 * (`client-0` … `client-(clients-1)`), the round within `1` … `rounds`, and a
 * client's faults must alternate kill, restart, kill … by round, so a restart
 * always follows an earlier kill of the same client and a kill always hits a
 * running client. A server kill (`killServer`, the round after which it
 * happens) must come before the last round, at most once per round, and
 * needs a state file (`state` other than `:memory:`).
 *
 * @since 0.2.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: {
  readonly clients: number
  readonly rounds: number
  readonly kill: ReadonlyArray<Fault>
  readonly restart: ReadonlyArray<Fault>
  readonly stall?: ReadonlyArray<Fault> | undefined
  readonly killServer?: ReadonlyArray<number> | undefined
  readonly state?: string | undefined
}): Effect.fn.Return<FaultPlan, InvalidFault> {
  const actions: Array<Action> = [
    ...options.kill.map((fault) => ({ kind: "kill" as const, ...fault })),
    ...options.restart.map((fault) => ({ kind: "restart" as const, ...fault })),
  ]
  const ids = `client-0…client-${options.clients - 1}`
  // A stall is handed to the client when it starts (its upload in that round freezes): one per client.
  const stalled = new Set<string>()
  for (const fault of options.stall ?? []) {
    const text = `${fault.client}@${fault.round}`
    const index = /^client-(\d+)$/.exec(fault.client)?.[1]
    if (index === undefined || Number(index) >= options.clients || String(Number(index)) !== index) {
      return yield* new InvalidFault({
        flag: "--stall",
        fault: text,
        problem: `no such client; this run starts ${ids}`,
      })
    }
    if (fault.round < 1 || fault.round > options.rounds) {
      return yield* new InvalidFault({
        flag: "--stall",
        fault: text,
        problem: `round ${fault.round} is outside 1…${options.rounds}`,
      })
    }
    if (stalled.has(fault.client)) {
      return yield* new InvalidFault({
        flag: "--stall",
        fault: text,
        problem: `${fault.client} already stalls in a round`,
      })
    }
    stalled.add(fault.client)
  }
  for (const action of actions) {
    const index = /^client-(\d+)$/.exec(action.client)?.[1]
    if (index === undefined || Number(index) >= options.clients || String(Number(index)) !== index) {
      return yield* new InvalidFault({
        flag: flagOf(action.kind),
        fault: textOf(action),
        problem: `no such client; this run starts ${ids}`,
      })
    }
    if (action.round < 1 || action.round > options.rounds) {
      return yield* new InvalidFault({
        flag: flagOf(action.kind),
        fault: textOf(action),
        problem: `round ${action.round} is outside 1…${options.rounds}`,
      })
    }
  }
  const ordered = actions.toSorted((a, b) => a.round - b.round || (a.kind === b.kind ? 0 : a.kind === "kill" ? -1 : 1))
  const killedAt = new Map<string, number>()
  for (const action of ordered) {
    const killed = killedAt.get(action.client)
    if (action.kind === "kill" && killed !== undefined) {
      return yield* new InvalidFault({
        flag: "--kill",
        fault: textOf(action),
        problem: `${action.client} is already killed at round ${killed} and not restarted before round ${action.round}`,
      })
    }
    if (action.kind === "restart" && (killed === undefined || killed >= action.round)) {
      return yield* new InvalidFault({
        flag: "--restart",
        fault: textOf(action),
        problem: `needs an earlier --kill of ${action.client} (a kill at a round before ${action.round})`,
      })
    }
    if (action.kind === "kill") killedAt.set(action.client, action.round)
    else killedAt.delete(action.client)
  }
  const serverKills = yield* checkServerKills({ ...options, killServer: options.killServer ?? [] })
  return { actions: ordered, serverKills }
})
