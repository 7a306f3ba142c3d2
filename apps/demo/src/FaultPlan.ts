/**
 * The faults a demo run injects (`--kill client-2@3 --restart client-2@6`),
 * checked against the run before any process starts, so a typo fails at once
 * instead of being silently ignored half-way through the run.
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
  flag: Schema.Literals(["--kill", "--restart", "--stall"]),
  fault: Schema.String,
  problem: Schema.String,
}) {
  override get message(): string {
    return `${this.flag} ${this.fault}: ${this.problem}`
  }
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
 * A checked fault schedule, in the order the actions happen (by round; a
 * kill before a restart in the same round).
 *
 * @since 0.2.0
 * @category models
 */
export interface FaultPlan {
  readonly actions: ReadonlyArray<Action>
}

const flagOf = (kind: Action["kind"]) => (kind === "kill" ? "--kill" : "--restart")
const textOf = (action: Action) => `${action.client}@${action.round}`

/**
 * Checks every fault against the run: the client must be one the demo starts
 * (`client-0` … `client-(clients-1)`), the round within `1` … `rounds`, and a
 * client's faults must alternate kill, restart, kill … by round, so a restart
 * always follows an earlier kill of the same client and a kill always hits a
 * running client.
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
  return { actions: ordered }
})
