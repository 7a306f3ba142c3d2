/**
 * The unit of the control lane: a tagged, JSON-encodable message.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A message on a connection's control lane. `tag` names the message type
 * (`"join"`, `"heartbeat"`, …) so that receivers can pick the Schema that
 * decodes `body`; `body` is any JSON value. Applications define their own
 * message Schemas and encode them into envelopes: the transport never
 * interprets `body`.
 *
 * Bulk binary data (model weights) does not travel in envelopes but as chunked
 * byte streams (see `Connection.sendBytes`).
 *
 * @since 0.1.0
 * @category models
 */
export class Envelope extends Schema.Class<Envelope>("@fedguard/transport/Envelope")({
  tag: Schema.String.pipe(Schema.check(Schema.isMinLength(1), Schema.isMaxLength(256))),
  body: Schema.Json,
}) {}

/**
 * Builds an envelope from a tag and a JSON body.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (tag: string, body: Schema.Json = null): Envelope => new Envelope({ tag, body })
