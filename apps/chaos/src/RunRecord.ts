/**
 * What one chaos run leaves behind for the invariant checker: the typed
 * events of every server process (with the time each was logged), how each
 * process ended, every fault the campaign injected (with the time it was
 * injected), the hostile peers it ran, the server's peak RSS, and the
 * reference rounds a run must reproduce bit for bit when training is seeded.
 *
 * A record is a plain value: `Invariants.check` reads nothing else, so a
 * fabricated record tests the checker without a process.
 *
 * @since 0.1.0
 */
import type * as ServerEvent from "@fedguard/fed-server/ServerEvent"

/**
 * A server event and the epoch milliseconds of its log line's `time` field
 * (the moment the server published it, not when the campaign read it).
 *
 * @since 0.1.0
 * @category models
 */
export interface Timed {
  readonly at: number
  readonly event: ServerEvent.ServerEvent
}

/**
 * One server process, start to end: its events in order; how it ended
 * (`code` null when a signal ended it); whether the campaign killed it on
 * purpose (`killed`); the last lines of its stderr.
 *
 * @since 0.1.0
 * @category models
 */
export interface ServerLife {
  readonly events: ReadonlyArray<Timed>
  readonly exit: { readonly code: number | null; readonly signal: string | null } | "running"
  readonly killed: boolean
  readonly stderrTail: ReadonlyArray<string>
}

/**
 * One client process of a run: its id and pid, how it ended so far
 * (`"running"`; its exit code; null when a signal ended it) and the last
 * lines of its stderr. Not read by the invariants: the evidence a failing
 * run's record carries (a client that never joined may have died at start).
 *
 * @since 0.1.0
 * @category models
 */
export interface ClientLife {
  readonly id: string
  readonly pid: number
  readonly exit: number | null | "running"
  readonly stderrTail: ReadonlyArray<string>
}

/**
 * A fault the campaign injected into a client (`target`: its id) or the
 * server (`target`: `"server"`), at epoch milliseconds `at`, just before the
 * signal or command:
 *
 * - `kill` (SIGKILL; its socket closes, so detection may be immediate),
 * - `stop` (SIGSTOP; the socket stays open and silent) and `cont`,
 * - `link-down` / `link-up` (the client's veth link: silent, like a stop),
 * - `restart` (a killed client started again), `kill-server`, `restart-server`.
 *
 * `stop` and `link-down` are *silent*: nothing tells the server, so it may
 * only call the client offline once its heartbeat timeout has passed.
 *
 * @since 0.1.0
 * @category models
 */
export interface Fault {
  readonly kind: "kill" | "stop" | "cont" | "link-down" | "link-up" | "restart" | "kill-server" | "restart-server"
  readonly target: string
  readonly at: number
  /** Where the fault landed, for the replay log (`mid-upload`, `120 ms after round 3 started`). */
  readonly note?: string | undefined
}

/**
 * The settings the run's server had, as far as the invariants need them.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunSettings {
  readonly rounds: number
  readonly minClients: number
  readonly heartbeatIntervalMs: number
  readonly heartbeatTimeoutMs: number
  /** The honest clients' ids: only these may be averaged or marked online. */
  readonly honest: ReadonlyArray<string>
  /**
   * Ids a hostile peer may authenticate as (with the secret) to send garbage after the handshake;
   * they may be online, but never averaged.
   */
  readonly hostileIds: ReadonlyArray<string>
}

/**
 * A round as the reference run (no fault, same seed) trained it.
 *
 * @since 0.1.0
 * @category models
 */
export interface ReferenceRound {
  readonly round: number
  readonly participants: ReadonlyArray<string>
  readonly modelSha256: string
  readonly testAccuracy: number
}

/**
 * Everything one run produced.
 *
 * - `servers`: every server process, in order (more than one after a
 *   `kill-server`).
 * - `impostorRemotes`: the `host:port` of every connection an impostor or a
 *   garbage peer opened without the right to join; none may be welcomed.
 *   They come from their own source address (`RawPeer.impostorAddress`,
 *   127.0.0.2), so a local port the kernel hands out again later cannot
 *   make an honest or authenticated peer's welcome look like theirs.
 * - `peakRssBytes`: the highest RSS seen across the server processes
 *   (sampled from `/proc/PID/status`).
 * - `finished`: the run ended within its time bound.
 * - `reference`: when set, every round in which all honest clients took part,
 *   here and in the reference, must end on the reference's model.
 *
 * @since 0.1.0
 * @category models
 */
export interface RunRecord {
  readonly scenario: string
  readonly seed: number
  readonly settings: RunSettings
  readonly servers: ReadonlyArray<ServerLife>
  readonly faults: ReadonlyArray<Fault>
  readonly impostorRemotes: ReadonlyArray<string>
  readonly peakRssBytes: number
  readonly finished: boolean
  readonly durationMs: number
  readonly reference?: ReadonlyArray<ReferenceRound> | undefined
  /** Every client process the run started, restarts included, in order. */
  readonly clients?: ReadonlyArray<ClientLife> | undefined
  /** What the scenario did that the table shows (frames sent, impostors tried, stops mid-upload…). */
  readonly notes?: Readonly<Record<string, number>> | undefined
}
