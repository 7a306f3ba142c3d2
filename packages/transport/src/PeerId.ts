/**
 * Identities of the participants in a federation.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * The identity of a participant (a client id, or the server's name), as proven
 * by the application's join handshake. A non-empty string of at most 128
 * characters, branded so that an arbitrary string cannot be passed where an
 * authenticated identity is expected.
 *
 * @example
 * ```ts
 * import { PeerId } from "@fedguard/transport"
 * const id = PeerId.make("client-1")
 * ```
 *
 * @since 0.1.0
 * @category models
 */
export const PeerId = Schema.String.pipe(
  Schema.check(Schema.isMinLength(1), Schema.isMaxLength(128)),
  Schema.brand("@fedguard/transport/PeerId"),
)

/**
 * @since 0.1.0
 * @category models
 */
export type PeerId = typeof PeerId.Type

/**
 * Builds a `PeerId`, throwing on an empty or over-long string. Use it for
 * trusted literals (tests, configuration already validated); decode untrusted
 * input with `Schema.decodeUnknownEffect(PeerId)`.
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (id: string): PeerId => PeerId.make(id)
