/**
 * The seeded fault schedule: which client suffers what, when, and for how
 * long, in virtual time. A pure function of its options: the same seed gives
 * the same schedule, which `FaultInjector` plays on the in-memory network.
 *
 * Kinds (`InMemoryTransport`'s faults):
 *
 * - `drop`: the client's control messages to the server (heartbeats, its
 *   join) are lost with probability `probability`;
 * - `delay`: every frame between the client and the server arrives
 *   `delayMs` late, both ways;
 * - `partition`: nothing crosses between the client and the server; frames
 *   wait and arrive in order after healing, as TCP retransmits;
 * - `stall`: the client stops reading (SIGSTOP-like): the server's sends to
 *   it stop moving;
 * - `kill`: the client's connections break at once and its process is gone
 *   (its fiber interrupted); after `forMs` it starts again and rejoins.
 *
 * A client has at most one fault at a time. Durations straddle the
 * heartbeat timeout (0.2× to 2.5×), so short faults must never take a
 * client offline and long ones must. `outage` adds one mass partition of a
 * fraction of the clients, to take the federation below its quorum.
 *
 * @since 0.1.0
 */
import * as Prng from "./internal/Prng.ts"

/**
 * A fault kind.
 *
 * @since 0.1.0
 * @category models
 */
export type Kind = "drop" | "delay" | "partition" | "stall" | "kill"

/**
 * One scheduled fault: at virtual time `at` (ms), client `client` (its
 * index) suffers `kind` for `forMs`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fault {
  readonly at: number
  readonly kind: Kind
  readonly client: number
  readonly forMs: number
  readonly probability?: number
  readonly delayMs?: number
}

/**
 * Options: the run's `seed`, `clients`, the virtual `horizonMs` over which
 * faults are spread (they start between 5 % and 85 % of it), `faults` (how
 * many), `heartbeatTimeoutMs` (the scale of the durations) and `outage`
 * (the fraction of clients partitioned at once at 40 % of the horizon, for
 * twice the heartbeat timeout; 0 for none).
 *
 * @since 0.1.0
 * @category models
 */
export interface Options {
  readonly seed: number
  readonly clients: number
  readonly horizonMs: number
  readonly faults: number
  readonly heartbeatTimeoutMs: number
  readonly outage: number
}

const kinds: ReadonlyArray<Kind> = ["drop", "delay", "partition", "stall", "kill"]

/**
 * The schedule, sorted by time (ties in client order).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (options: Options): ReadonlyArray<Fault> => {
  const next = Prng.make(Prng.mix(options.seed, 0xfa17))
  const busyUntil = new Float64Array(options.clients)
  const faults: Array<Fault> = []
  const outageAt = Math.round(options.horizonMs * 0.4)
  const outageFor = 2 * options.heartbeatTimeoutMs
  const outageCount = Math.floor(options.clients * options.outage)
  // The outage takes the last clients; their own faults stay clear of it.
  for (let c = options.clients - outageCount; c < options.clients; c++) {
    faults.push({ at: outageAt, kind: "partition", client: c, forMs: outageFor })
  }
  const clear = (c: number, at: number, forMs: number) =>
    at >= busyUntil[c]! &&
    (c < options.clients - outageCount || at + forMs < outageAt - 1_000 || at > outageAt + outageFor + 60_000)
  for (let i = 0; i < options.faults; i++) {
    const kind = kinds[Prng.between(next, 0, kinds.length - 1)]!
    const at = Math.round(options.horizonMs * (0.05 + 0.8 * next()))
    const forMs = Math.round(options.heartbeatTimeoutMs * (0.2 + 2.3 * next()))
    const client = Prng.between(next, 0, options.clients - 1)
    const probability = Math.round((0.3 + 0.6 * next()) * 100) / 100
    const delayMs = Prng.between(next, 100, 3_000)
    // A client already faulted then is left alone: one fault per client at a time.
    if (!clear(client, at, forMs)) continue
    // Room after each fault to rejoin before the next one.
    busyUntil[client] = at + forMs + 2 * options.heartbeatTimeoutMs
    faults.push({
      at,
      kind,
      client,
      forMs,
      ...(kind === "drop" ? { probability } : {}),
      ...(kind === "delay" ? { delayMs } : {}),
    })
  }
  return faults.sort((a, b) => a.at - b.at || a.client - b.client)
}
