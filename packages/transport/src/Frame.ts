/**
 * The frames a connection exchanges: control messages, chunked byte streams
 * and their acknowledgements.
 *
 * @since 0.1.0
 */
import type { Schema } from "effect"
import type { Envelope } from "./Envelope.ts"

/**
 * A control-lane message.
 *
 * @since 0.1.0
 * @category models
 */
export interface Message {
  readonly _tag: "Message"
  readonly envelope: Envelope
}

/**
 * Announces a byte stream: its id (unique per sender and connection), an
 * application tag, JSON metadata and, when known, its total size.
 *
 * `ackBytes` is how many consumed bytes the receiver may leave
 * unacknowledged: it acknowledges once that many have accumulated (and the
 * last byte at once). The sender chooses it below its window, so that a
 * sender held at its window always gets the ack that releases it. Absent (a
 * sender from before 0.2.0), every consumed piece is acknowledged.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamOpen {
  readonly _tag: "StreamOpen"
  readonly id: number
  readonly tag: string
  readonly meta: Schema.Json
  readonly totalBytes: number | null
  readonly ackBytes?: number
}

/**
 * A piece of a byte stream starting at `offset`.
 *
 * @since 0.1.0
 * @category models
 */
export interface Chunk {
  readonly _tag: "Chunk"
  readonly id: number
  readonly offset: number
  readonly bytes: Uint8Array
}

/**
 * The receiver has consumed stream `id` up to `offset` bytes. Acks are
 * cumulative: a later ack covers every earlier one.
 *
 * @since 0.1.0
 * @category models
 */
export interface Ack {
  readonly _tag: "Ack"
  readonly id: number
  readonly offset: number
}

/**
 * The sender has sent every byte of stream `id`; `totalBytes` is its length.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamEnd {
  readonly _tag: "StreamEnd"
  readonly id: number
  readonly totalBytes: number
}

/**
 * Either side gives up on stream `id`. Stream ids are chosen by each sender,
 * so the same id can name one stream in each direction: `origin` says which
 * end gives up — `"sender"` (the stream the peer was receiving) or
 * `"receiver"` (the stream the peer was sending). Without it, the peer's
 * outgoing stream of that id is assumed first.
 *
 * @since 0.1.0
 * @category models
 */
export interface StreamAbort {
  readonly _tag: "StreamAbort"
  readonly id: number
  readonly reason: string
  readonly origin?: "sender" | "receiver"
}

/**
 * The sender closes the connection gracefully.
 *
 * @since 0.1.0
 * @category models
 */
export interface Close {
  readonly _tag: "Close"
  readonly reason: string
}

/**
 * Every frame of the wire protocol.
 *
 * @since 0.1.0
 * @category models
 */
export type Frame = Message | StreamOpen | Chunk | Ack | StreamEnd | StreamAbort | Close

/**
 * Whether a frame travels on the priority (control) lane. Chunks and the end
 * marker that must follow them travel on the bulk lane; everything else —
 * messages, acks, stream announcements, aborts, close — is control traffic
 * and is never queued behind bulk chunks.
 *
 * @since 0.1.0
 * @category predicates
 */
export const isControl = (frame: Frame): boolean => frame._tag !== "Chunk" && frame._tag !== "StreamEnd"

/**
 * How many bytes of application payload a frame carries (chunk bytes only);
 * used for accounting.
 *
 * @since 0.1.0
 * @category getters
 */
export const payloadBytes = (frame: Frame): number => (frame._tag === "Chunk" ? frame.bytes.byteLength : 0)
