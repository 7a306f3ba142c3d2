/**
 * Payload bytes for a structured clone. A clone of a `Uint8Array` carries
 * its whole `ArrayBuffer`, not just the view: a 4 KiB view of a 1 GiB
 * buffer (or of Node's 8 KiB `Buffer` pool) would copy all of it, and a
 * transfer would detach all of it. So a view that does not span its buffer
 * is copied to one that does.
 */
const spans = (view: Uint8Array): boolean => view.byteOffset === 0 && view.byteLength === view.buffer.byteLength

/** `view` itself when it spans a plain `ArrayBuffer`, else a copy of its bytes. */
export const ownBytes = (view: Uint8Array): Uint8Array =>
  spans(view) && view.buffer instanceof ArrayBuffer ? view : view.slice()

/** The buffer to transfer with `view` (which must come from `ownBytes`), or none. */
export const transferList = (view: Uint8Array): ReadonlyArray<ArrayBuffer> =>
  spans(view) && view.buffer instanceof ArrayBuffer && view.byteLength > 0 ? [view.buffer] : []
