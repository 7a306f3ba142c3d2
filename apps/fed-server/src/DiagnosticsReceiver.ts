/**
 * The server's end of `@fedguard/diagnostics`' transport sink: each
 * authenticated client's `diagnostics` messages are decoded as untrusted
 * input and the client's latest report of each collector is kept, bounded
 * per client, for the JSON report (`Report.diagnostics`).
 *
 * A message that does not decode is a `DiagnosticsRejected` event naming the
 * field, counted for that client; it never ends the session or touches its
 * rounds (`ClientSession` routes `diagnostics` envelopes here and nowhere
 * else). With `accept: false` (`--accept-diagnostics false`) every message
 * is dropped unread, the first of each client announced by a
 * `DiagnosticsRefused` event; the client trains on, unaware.
 *
 * Bounds, per client: the newest report of at most `maxCollectors`
 * collectors (16), at most `maxBytes` (256 KiB) of report data as JSON in
 * all. A report older than the one held for its collector is not kept; a
 * report larger than `maxBytes` on its own is not kept; when a kept report
 * breaks a bound, the reports of the collectors heard from longest ago go
 * first. Each report not kept is counted (`dropped`). So the report holds at
 * most `maxBytes` of diagnostics per allowed client, whatever they send.
 *
 * @since 0.4.0
 */
import type { Report } from "@fedguard/app-kit"
import { DiagnosticsMessage, type DiagnosticsReport } from "@fedguard/diagnostics"
import type { Envelope } from "@fedguard/transport"
import { Clock, Context, Effect, Layer, Metric, Result } from "effect"
import * as ServerEvent from "./ServerEvent.ts"
import { ServerEvents } from "./ServerEvents.ts"
import * as ServerMetrics from "./ServerMetrics.ts"

/**
 * Options: `accept` (default `true`; `false` drops every message),
 * `maxCollectors` (default 16) and `maxBytes` (default 262 144: 256 KiB of
 * report data as JSON), the bounds of what is kept per client.
 *
 * @since 0.4.0
 * @category models
 */
export interface Options {
  readonly accept?: boolean | undefined
  readonly maxCollectors?: number | undefined
  readonly maxBytes?: number | undefined
}

/**
 * The default per-client bounds: 16 collectors, 256 KiB.
 *
 * @since 0.4.0
 * @category constants
 */
export const defaults = { maxCollectors: 16, maxBytes: 256 * 1024 } as const

/**
 * The receiver:
 *
 * - `receive(id, envelope)`: one `diagnostics` envelope from the
 *   authenticated client `id` (the id comes from its session, never from
 *   the message). Never fails.
 * - `snapshot`: every client heard from, sorted by id, as the report shows
 *   them.
 *
 * @since 0.4.0
 * @category services
 */
export class DiagnosticsReceiver extends Context.Service<
  DiagnosticsReceiver,
  {
    readonly receive: (id: string, envelope: Envelope.Envelope) => Effect.Effect<void>
    readonly snapshot: Effect.Effect<ReadonlyArray<Report.ClientDiagnostics>>
  }
>()("@fedguard/fed-server/DiagnosticsReceiver") {}

interface Kept {
  readonly report: DiagnosticsReport.DiagnosticsReport
  readonly bytes: number
}

interface ClientRecord {
  receivedAt: number | null
  messages: number
  rejected: number
  lastRejection: string | undefined
  dropped: number
  refused: number
  bytes: number
  readonly latest: Map<string, Kept>
}

const jsonBytes = (data: unknown): number => Buffer.byteLength(JSON.stringify(data), "utf8")

// Keeps `report` in `record` under the bounds; returns how many reports were not kept
// (`report` itself, or the ones evicted for it).
const keep = (
  record: { bytes: number; readonly latest: Map<string, Kept> },
  report: DiagnosticsReport.DiagnosticsReport,
  bounds: { readonly maxCollectors: number; readonly maxBytes: number },
): number => {
  const bytes = jsonBytes(report.data)
  const held = record.latest.get(report.collector)
  if (bytes > bounds.maxBytes || (held !== undefined && held.report.at > report.at)) return 1
  // Replacing the report held for the collector is what "latest" means, not a loss.
  if (held !== undefined) {
    record.bytes -= held.bytes
    record.latest.delete(report.collector)
  }
  let evicted = 0
  while (record.latest.size >= bounds.maxCollectors || record.bytes + bytes > bounds.maxBytes) {
    let oldest: Kept | undefined
    for (const kept of record.latest.values())
      if (oldest === undefined || kept.report.at < oldest.report.at) oldest = kept
    if (oldest === undefined) break
    record.latest.delete(oldest.report.collector)
    record.bytes -= oldest.bytes
    evicted++
  }
  record.latest.set(report.collector, { report, bytes })
  record.bytes += bytes
  return evicted
}

const outcome = (name: "accepted" | "rejected" | "refused") =>
  Metric.withAttributes(ServerMetrics.diagnosticsMessages, { outcome: name })

/**
 * Builds the receiver over the `ServerEvents` in context.
 *
 * @since 0.4.0
 * @category constructors
 */
export const make = Effect.fnUntraced(function* (options: Options = {}) {
  const events = yield* ServerEvents
  const accept = options.accept ?? true
  const bounds = {
    maxCollectors: Math.max(1, options.maxCollectors ?? defaults.maxCollectors),
    maxBytes: Math.max(1, options.maxBytes ?? defaults.maxBytes),
  }
  const clients = new Map<string, ClientRecord>()
  const recordOf = (id: string): ClientRecord => {
    const existing = clients.get(id)
    if (existing !== undefined) return existing
    const created: ClientRecord = {
      receivedAt: null,
      messages: 0,
      rejected: 0,
      lastRejection: undefined,
      dropped: 0,
      refused: 0,
      bytes: 0,
      latest: new Map(),
    }
    clients.set(id, created)
    return created
  }

  const refuse = Effect.fnUntraced(function* (id: string, envelope: Envelope.Envelope) {
    const record = recordOf(id)
    record.refused++
    yield* Metric.update(outcome("refused"), 1)
    if (record.refused > 1) return
    const body = envelope.body
    const reports =
      typeof body === "object" && body !== null && "reports" in body && Array.isArray(body.reports)
        ? body.reports.length
        : 0
    yield* events.publish(new ServerEvent.DiagnosticsRefused({ id, reports }))
  })

  const receive = Effect.fnUntraced(function* (id: string, envelope: Envelope.Envelope) {
    if (!accept) return yield* refuse(id, envelope)
    const decoded = yield* Effect.result(DiagnosticsMessage.fromEnvelope(envelope, id))
    const record = recordOf(id)
    if (Result.isFailure(decoded)) {
      const { reason, path } = decoded.failure
      record.rejected++
      record.lastRejection = path === undefined ? reason : `${path}: ${reason}`
      yield* Metric.update(outcome("rejected"), 1)
      return yield* events.publish(
        new ServerEvent.DiagnosticsRejected({ id, reason, ...(path === undefined ? {} : { path }) }),
      )
    }
    record.receivedAt = yield* Clock.currentTimeMillis
    record.messages++
    let dropped = 0
    for (const report of decoded.success.reports) dropped += keep(record, report, bounds)
    record.dropped += dropped
    yield* Metric.update(outcome("accepted"), 1)
    if (dropped > 0) yield* Metric.update(ServerMetrics.diagnosticsDropped, dropped)
  })

  const snapshot = Effect.sync(() =>
    [...clients.entries()]
      .filter(([, record]) => record.messages > 0 || record.rejected > 0)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(
        ([id, record]): Report.ClientDiagnostics => ({
          id,
          receivedAt: record.receivedAt,
          messages: record.messages,
          rejected: record.rejected,
          ...(record.lastRejection === undefined ? {} : { lastRejection: record.lastRejection }),
          dropped: record.dropped,
          reports: [...record.latest.values()]
            .map((kept) => kept.report)
            .sort((a, b) => (a.collector < b.collector ? -1 : a.collector > b.collector ? 1 : 0)),
        }),
      ),
  )

  return DiagnosticsReceiver.of({ receive, snapshot })
})

/**
 * The receiver as a Layer.
 *
 * @since 0.4.0
 * @category layers
 */
export const layer = (options: Options = {}): Layer.Layer<DiagnosticsReceiver, never, ServerEvents> =>
  Layer.effect(DiagnosticsReceiver, make(options))
