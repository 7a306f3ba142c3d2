/**
 * The diagnostics message on the fedguard wire: a batch of reports in a
 * transport `Envelope` tagged `"diagnostics"`, from a client's
 * `TransportSink` to the server.
 *
 * To the server the body is untrusted input: `fromEnvelope` decodes it with
 * the Schema and turns any problem into a `TransportError.DecodeError` whose
 * `path` names the field (`reports.3.collector`), never a crash of the
 * fiber serving that client. The server decides who sent it from the
 * connection's authenticated identity; the message carries no identity of
 * its own to trust.
 *
 * @since 0.1.0
 */
import { Envelope, TransportError } from "@fedguard/transport"
import { Effect, Schema, SchemaIssue } from "effect"
import { DiagnosticsReport } from "./DiagnosticsReport.ts"

/**
 * The envelope tag of a diagnostics message.
 *
 * @since 0.1.0
 * @category constants
 */
export const tag = "diagnostics"

/**
 * Most reports one message may carry (1000): a batch is at most
 * `batchSize` reports, and a receiver must not accept an unbounded array.
 *
 * @since 0.1.0
 * @category constants
 */
export const maxReports = 1000

/**
 * The message body: `reports`, 1 to `maxReports` `DiagnosticsReport`s,
 * oldest first.
 *
 * @since 0.1.0
 * @category schemas
 */
export const DiagnosticsMessage = Schema.Struct({
  reports: Schema.Array(DiagnosticsReport).check(Schema.isMinLength(1), Schema.isMaxLength(maxReports)),
}).annotate({ identifier: "DiagnosticsMessage", description: "a batch of diagnostics reports from a client" })

/**
 * @since 0.1.0
 * @category models
 */
export type DiagnosticsMessage = typeof DiagnosticsMessage.Type

const encode = Schema.encodeSync(DiagnosticsMessage)
const decodeBody = Schema.decodeUnknownEffect(DiagnosticsMessage)
const standardIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/**
 * Wraps a batch in an envelope tagged `"diagnostics"`.
 *
 * @since 0.1.0
 * @category encoding
 */
export const toEnvelope = (reports: ReadonlyArray<DiagnosticsReport>): Envelope.Envelope =>
  Envelope.make(tag, encode({ reports }) as unknown as Schema.Json)

/**
 * Decodes a diagnostics message from an untrusted body (`envelope.body`);
 * `peer` is the sender, for the error. Fails with a `DecodeError` whose
 * `path` is the first offending field (`reports.0.at`) and whose `reason`
 * says what is wrong with it.
 *
 * @since 0.1.0
 * @category decoding
 */
export const decode = (body: unknown, peer: string): Effect.Effect<DiagnosticsMessage, TransportError.DecodeError> =>
  decodeBody(body).pipe(
    Effect.mapError((error) => {
      const [first] = standardIssues(error.issue).issues
      const path = first?.path?.map((segment) => String(typeof segment === "object" ? segment.key : segment))
      return new TransportError.DecodeError({
        peer,
        reason: `diagnostics message: ${first?.message ?? error.message}`,
        ...(path === undefined || path.length === 0 ? {} : { path: path.join(".") }),
      })
    }),
  )

/**
 * Decodes an envelope into a diagnostics message: an envelope of another tag
 * is a `DecodeError` with `path: "tag"`; a body that fails the Schema is one
 * naming the field (see `decode`).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { Envelope } from "@fedguard/transport"
 * import { DiagnosticsMessage } from "@fedguard/diagnostics"
 *
 * // On the server, for each inbound envelope of an authenticated client:
 * const receive = (envelope: Envelope.Envelope, clientId: string) =>
 *   DiagnosticsMessage.fromEnvelope(envelope, clientId).pipe(
 *     Effect.tap((message) => Effect.logDebug(`${message.reports.length} reports from ${clientId}`)),
 *   )
 * ```
 *
 * @since 0.1.0
 * @category decoding
 */
export const fromEnvelope = (
  envelope: Envelope.Envelope,
  peer: string,
): Effect.Effect<DiagnosticsMessage, TransportError.DecodeError> =>
  envelope.tag === tag
    ? decode(envelope.body, peer)
    : Effect.fail(
        new TransportError.DecodeError({
          peer,
          reason: `expected a "${tag}" envelope, got "${envelope.tag}"`,
          path: "tag",
        }),
      )
