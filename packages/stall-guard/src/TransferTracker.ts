/**
 * The receiving side of a transfer: is it still coming? A progress-aware wait
 * after FlareAgent's tracker for result uploads, which FLARE added next to
 * the stream guardrails of PR #4206: instead of one deadline for a whole
 * upload (too short for a large model on a slow link, far too long for a
 * client that died after its first byte), the receiver gives up when bytes
 * stop arriving.
 *
 * Two layers: a pure core, where a transfer is a value (`Transfer`) and
 * `start` / `progress` / `check` / `complete` / `fail` / `abandon` are
 * functions of it and of the current time, so every rule is testable without
 * a clock; and `collect`, the Effect helper a receiver uses in place of
 * `Connection.collectBytes` to read an incoming byte stream under the
 * tracker, on the `Clock`.
 *
 * @since 0.1.0
 */
import { Clock, type Duration, Effect, Metric, Schema, Stream } from "effect"
import { millis } from "./internal/clamp.ts"
import * as StallEvent from "./StallEvent.ts"
import * as StallGuardConfig from "./StallGuardConfig.ts"
import * as StallMetrics from "./StallMetrics.ts"

/**
 * Where a transfer is:
 *
 * - `waiting`: started, no byte yet.
 * - `active`: bytes arriving.
 * - `did-not-start`: no first byte within the idle timeout of `start`.
 * - `idle`: bytes arrived, then none for the idle timeout.
 * - `completed`: confirmed by `complete`, or by the completion grace.
 * - `failed`: the caller reported a failure (`fail`).
 * - `abandoned`: the caller stopped waiting (`abandon`).
 *
 * The last five are terminal: nothing changes a transfer after them.
 *
 * @since 0.1.0
 * @category models
 */
export type Status = "waiting" | "active" | "did-not-start" | "idle" | "completed" | "failed" | "abandoned"

/**
 * A tracked transfer, as a value. Times are epoch milliseconds of the caller's
 * clock, durations milliseconds, sizes bytes. `bytes` is the highest
 * cumulative progress seen; `outOfOrder` counts reports that went backwards
 * (ignored); `allBytesAt` is when `bytes` first reached `expectedBytes`;
 * `endedAt` / `reason` are set by the terminal transition.
 *
 * @since 0.1.0
 * @category models
 */
export interface Transfer {
  readonly status: Status
  readonly idleTimeoutMs: number
  readonly completionGraceMs: number
  readonly expectedBytes: number | undefined
  readonly startedAt: number
  readonly firstByteAt: number | undefined
  readonly lastProgressAt: number
  readonly bytes: number
  readonly outOfOrder: number
  readonly allBytesAt: number | undefined
  readonly endedAt: number | undefined
  readonly reason: string | undefined
}

/**
 * Settings of a tracked transfer: `idleTimeout` (default 60 s, the config's
 * `transferIdleTimeout`), `completionGrace` (default 5 s) and the size the
 * sender announced, when known (`expectedBytes`).
 *
 * @since 0.1.0
 * @category models
 */
export interface Settings {
  readonly idleTimeout?: Duration.Input | undefined
  readonly completionGrace?: Duration.Input | undefined
  readonly expectedBytes?: number | undefined
}

/**
 * Whether a status is terminal.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isTerminal = (status: Status): boolean => status !== "waiting" && status !== "active"

/**
 * A transfer that starts waiting for its first byte at `now`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const start = (now: number, settings: Settings = {}): Transfer => ({
  status: "waiting",
  idleTimeoutMs: millis(settings.idleTimeout ?? StallGuardConfig.defaults.transferIdleTimeout),
  completionGraceMs: millis(settings.completionGrace ?? StallGuardConfig.defaults.completionGrace),
  expectedBytes: settings.expectedBytes,
  startedAt: now,
  firstByteAt: undefined,
  lastProgressAt: now,
  bytes: 0,
  outOfOrder: 0,
  allBytesAt: undefined,
  endedAt: undefined,
  reason: undefined,
})

/**
 * Reports cumulative progress: `bytes` received (or acknowledged) so far. A
 * report above the highest seen is progress (the transfer becomes `active`
 * and its idle clock restarts); one below it arrived out of order and is
 * ignored but counted in `outOfOrder`; an equal one changes nothing. Once
 * `bytes` reaches `expectedBytes` the completion grace starts (see `check`).
 * A terminal transfer is returned unchanged.
 *
 * @since 0.1.0
 * @category transitions
 */
export const progress = (transfer: Transfer, bytes: number, now: number): Transfer => {
  if (isTerminal(transfer.status)) return transfer
  if (bytes < transfer.bytes) return { ...transfer, outOfOrder: transfer.outOfOrder + 1 }
  if (bytes === transfer.bytes) return transfer
  const complete = transfer.expectedBytes !== undefined && bytes >= transfer.expectedBytes
  return {
    ...transfer,
    status: "active",
    firstByteAt: transfer.firstByteAt ?? now,
    lastProgressAt: now,
    bytes,
    allBytesAt: complete ? (transfer.allBytesAt ?? now) : undefined,
  }
}

/**
 * Applies the timeouts at `now`:
 *
 * - `waiting` for `idleTimeout` since `start` → `did-not-start`;
 * - `active` without progress for `idleTimeout` → `idle`;
 * - `active` with every expected byte in for `completionGrace` → `completed`.
 *
 * Completion follows FlareAgent's progress tracker: a transfer is complete
 * when its end is confirmed (`complete`, e.g. the stream ended), not the
 * moment the last expected byte is counted; if the confirmation does not
 * come, it is complete `completionGrace` after the last expected byte, so a
 * lost end marker neither hangs the receiver nor turns a fully received
 * transfer into an idle failure. While in that grace the idle timeout does
 * not apply. Boundaries are inclusive: at exactly the timeout, it fires.
 *
 * @since 0.1.0
 * @category transitions
 */
export const check = (transfer: Transfer, now: number): Transfer => {
  switch (transfer.status) {
    case "waiting":
      return now - transfer.startedAt >= transfer.idleTimeoutMs
        ? end(transfer, "did-not-start", now, `no first byte within ${transfer.idleTimeoutMs} ms`)
        : transfer
    case "active":
      if (transfer.allBytesAt !== undefined) {
        return now - transfer.allBytesAt >= transfer.completionGraceMs
          ? end(transfer, "completed", now, `every expected byte in for ${transfer.completionGraceMs} ms`)
          : transfer
      }
      return now - transfer.lastProgressAt >= transfer.idleTimeoutMs
        ? end(transfer, "idle", now, `no progress for ${transfer.idleTimeoutMs} ms after ${transfer.bytes} bytes`)
        : transfer
    default:
      return transfer
  }
}

/**
 * The next instant at which `check` may change the transfer (a timeout or the
 * end of the grace), or `undefined` for a terminal one: a waiter sleeps until
 * then instead of polling.
 *
 * @since 0.1.0
 * @category getters
 */
export const deadline = (transfer: Transfer): number | undefined => {
  switch (transfer.status) {
    case "waiting":
      return transfer.startedAt + transfer.idleTimeoutMs
    case "active":
      return transfer.allBytesAt !== undefined
        ? transfer.allBytesAt + transfer.completionGraceMs
        : transfer.lastProgressAt + transfer.idleTimeoutMs
    default:
      return undefined
  }
}

/**
 * Confirms the end of the transfer (the stream ended): `completed` at once.
 *
 * @since 0.1.0
 * @category transitions
 */
export const complete = (transfer: Transfer, now: number): Transfer => end(transfer, "completed", now, "ended")

/**
 * Records a failure of the transfer (the stream failed): `failed`.
 *
 * @since 0.1.0
 * @category transitions
 */
export const fail = (transfer: Transfer, now: number, reason: string): Transfer => end(transfer, "failed", now, reason)

/**
 * Records that the receiver stopped waiting: `abandoned`.
 *
 * @since 0.1.0
 * @category transitions
 */
export const abandon = (transfer: Transfer, now: number, reason: string): Transfer =>
  end(transfer, "abandoned", now, reason)

const end = (transfer: Transfer, status: Status, now: number, reason: string): Transfer =>
  isTerminal(transfer.status) ? transfer : { ...transfer, status, endedAt: now, reason }

/**
 * No byte arrived for `idleMs` after `bytes` bytes: the sender stalled or died
 * mid-transfer.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransferIdle extends Schema.TaggedError<TransferIdle>()("TransferIdle", {
  bytes: Schema.Number,
  idleMs: Schema.Number,
}) {}

/**
 * No first byte arrived within `waitedMs` of the start.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransferDidNotStart extends Schema.TaggedError<TransferDidNotStart>()("TransferDidNotStart", {
  waitedMs: Schema.Number,
}) {}

/**
 * The transfer grew past `maxBytes` (at `bytes`): a peer's announced size is
 * not trusted, the receiver's bound is.
 *
 * @since 0.1.0
 * @category errors
 */
export class TransferTooLarge extends Schema.TaggedError<TransferTooLarge>()("TransferTooLarge", {
  bytes: Schema.Number,
  maxBytes: Schema.Number,
}) {}

/**
 * Options of `collect` and `forEach`: the `Settings` (idle timeout,
 * completion grace, expected size) and
 *
 * - `maxBytes`: the most bytes accepted (required: a bound the receiver
 *   chooses);
 * - `abort`: called with a reason when the receiver gives up (idle,
 *   did-not-start, too large), e.g. `transfer.abort`, so the sender learns it
 *   instead of waiting on its window;
 * - `onEvent`: receives `TransferIdle` / `TransferAbandoned` events.
 *
 * @since 0.1.0
 * @category models
 */
export interface CollectOptions extends Settings {
  readonly maxBytes: number
  readonly abort?: ((reason: string) => Effect.Effect<void>) | undefined
  readonly onEvent?:
    | ((event: StallEvent.TransferIdle | StallEvent.TransferAbandoned) => Effect.Effect<void>)
    | undefined
}

/**
 * Reads a byte stream chunk by chunk under a tracker, on the `Clock`, and
 * hands each chunk to `f` instead of keeping it: the receiver holds one chunk
 * at a time, whatever the transfer's size (a large model streamed to disk or
 * through a checksum). It gives up exactly as {@link collect} does
 * (`TransferDidNotStart`, `TransferIdle`, `TransferTooLarge` before `f` sees
 * the chunk that crosses `maxBytes`, calling `abort`; `TransferAbandoned`
 * when interrupted mid-transfer), fails with the stream's or `f`'s own error
 * (without aborting: the caller decides), and succeeds with the number of
 * bytes read. Progress counts when a chunk arrives, so a slow `f` does not
 * make the sender look idle.
 *
 * @example
 * ```ts
 * import type { Connection } from "@fedguard/transport"
 * import { TransferTracker } from "@fedguard/stall-guard"
 * import { Effect } from "effect"
 *
 * declare const transfer: Connection.IncomingTransfer
 * declare const hash: { update: (bytes: Uint8Array) => void }
 * const bytes = TransferTracker.forEach(transfer.bytes, (chunk) => Effect.sync(() => hash.update(chunk)), {
 *   idleTimeout: "60 seconds",
 *   maxBytes: 1024 * 1024 * 1024,
 *   abort: transfer.abort,
 * })
 * ```
 *
 * @since 0.2.0
 * @category combinators
 */
export const forEach = <E, E2, R>(
  stream: Stream.Stream<Uint8Array, E>,
  f: (chunk: Uint8Array) => Effect.Effect<void, E2, R>,
  options: CollectOptions,
): Effect.Effect<number, E | E2 | TransferIdle | TransferDidNotStart | TransferTooLarge, R> =>
  Effect.gen(function* () {
    const clock = yield* Clock.Clock
    const now = () => clock.currentTimeMillisUnsafe()
    let transfer = start(now(), options)

    const giveUp = <X>(error: X, event: StallEvent.TransferIdle | undefined) =>
      Effect.gen(function* () {
        const reason = transfer.reason ?? "gave up"
        yield* Effect.logWarning(`incoming transfer given up: ${reason}`)
        if (event !== undefined) {
          yield* Metric.update(Metric.withAttributes(StallMetrics.transfersIdle, { status: transfer.status }), 1)
          if (options.onEvent !== undefined) yield* options.onEvent(event)
        }
        return yield* Effect.fail(error)
      })

    const consume = Stream.runForEach(stream, (chunk) =>
      Effect.suspend((): Effect.Effect<void, E2 | TransferTooLarge, R> => {
        const bytes = transfer.bytes + chunk.byteLength
        if (bytes > options.maxBytes) {
          transfer = fail(transfer, now(), `more than ${options.maxBytes} bytes`)
          return giveUp(new TransferTooLarge({ bytes, maxBytes: options.maxBytes }), undefined)
        }
        transfer = progress(transfer, bytes, now())
        return f(chunk)
      }),
    ).pipe(
      Effect.tap(() => Effect.sync(() => (transfer = complete(transfer, now())))),
      Effect.tapError(() => Effect.sync(() => (transfer = fail(transfer, now(), "the stream failed")))),
    )

    // Sleeps to the tracker's next deadline, not on a grid: a receiver's give-up is exact.
    const watcher = Effect.gen(function* () {
      while (true) {
        const until = deadline(transfer)
        if (until === undefined) return yield* Effect.never
        const current = now()
        if (until > current) {
          yield* Effect.sleep(until - current)
          continue
        }
        const before = transfer
        transfer = check(transfer, current)
        if (transfer.status === "completed") return
        if (transfer.status === "did-not-start") {
          const waitedMs = current - before.startedAt
          return yield* giveUp(
            new TransferDidNotStart({ waitedMs }),
            new StallEvent.TransferIdle({ at: current, bytes: 0, idleMs: waitedMs, started: false }),
          )
        }
        if (transfer.status === "idle") {
          const idleMs = current - before.lastProgressAt
          return yield* giveUp(
            new TransferIdle({ bytes: before.bytes, idleMs }),
            new StallEvent.TransferIdle({ at: current, bytes: before.bytes, idleMs, started: true }),
          )
        }
      }
    })

    yield* Effect.raceFirst(consume, watcher).pipe(
      // The sender is told only once the verdict is in: aborting fails the byte stream (as a
      // transport does), and that failure must not overtake the reason for giving up.
      Effect.tapError((error) =>
        options.abort !== undefined &&
        (error instanceof TransferIdle || error instanceof TransferDidNotStart || error instanceof TransferTooLarge)
          ? options.abort(transfer.reason ?? "gave up")
          : Effect.void,
      ),
      Effect.onInterrupt(() =>
        Effect.gen(function* () {
          if (isTerminal(transfer.status)) return
          const at = now()
          transfer = abandon(transfer, at, "the receiver was interrupted")
          yield* Metric.update(StallMetrics.transfersAbandoned, 1)
          if (options.onEvent !== undefined) {
            yield* options.onEvent(
              new StallEvent.TransferAbandoned({ at, bytes: transfer.bytes, reason: "the receiver was interrupted" }),
            )
          }
        }),
      ),
    )
    return transfer.bytes
  })

/**
 * Reads a byte stream into one buffer under a tracker, on the `Clock`: fails
 * with `TransferDidNotStart` when no first chunk arrives within `idleTimeout`,
 * with `TransferIdle` as soon as no chunk arrives within `idleTimeout` of the
 * last one, with `TransferTooLarge` past `maxBytes` (calling `abort` in each
 * case), and with the stream's own error. It succeeds when the stream ends,
 * or, with `expectedBytes`, `completionGrace` after they are all in if the
 * end does not come (see `check`). Interrupted while the transfer is
 * in progress, it reports `TransferAbandoned`. Each give-up is logged,
 * counted (`StallMetrics.transfersIdle`, `transfersAbandoned`) and passed to
 * `onEvent`. It is {@link forEach} keeping every chunk; a receiver that
 * must not hold a whole transfer uses `forEach`.
 *
 * @example
 * ```ts
 * import type { Connection } from "@fedguard/transport"
 * import { TransferTracker } from "@fedguard/stall-guard"
 *
 * declare const transfer: Connection.IncomingTransfer
 * const update = TransferTracker.collect(transfer.bytes, {
 *   idleTimeout: "60 seconds",
 *   maxBytes: 4 * 1024 * 1024,
 *   expectedBytes: transfer.totalBytes ?? undefined,
 *   abort: transfer.abort,
 * })
 * ```
 *
 * @since 0.1.0
 * @category combinators
 */
export const collect = <E>(
  stream: Stream.Stream<Uint8Array, E>,
  options: CollectOptions,
): Effect.Effect<Uint8Array, E | TransferIdle | TransferDidNotStart | TransferTooLarge> =>
  Effect.suspend(() => {
    const parts: Array<Uint8Array> = []
    return forEach(stream, (chunk) => Effect.sync(() => void parts.push(chunk)), options).pipe(
      Effect.map(() => concat(parts)),
    )
  })

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  if (parts.length === 1) return parts[0]!
  const total = parts.reduce((n, part) => n + part.byteLength, 0)
  const out = new Uint8Array(total)
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}
