/**
 * The id of a site (a federated client) taking part in a job.
 *
 * @since 0.1.0
 */
import { Schema } from "effect"

/**
 * A site's id: a non-empty string, at most 128 characters (the same bounds as
 * `@fedguard/transport`'s `PeerId`, so a peer id is always a valid site id).
 *
 * @since 0.1.0
 * @category schemas
 */
export const SiteId = Schema.String.check(Schema.isMinLength(1), Schema.isMaxLength(128))

/**
 * @since 0.1.0
 * @category models
 */
export type SiteId = typeof SiteId.Type
