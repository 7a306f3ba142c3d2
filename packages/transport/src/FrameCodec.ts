/**
 * The binary encoding of frames: a 4-byte big-endian length, a 1-byte type,
 * then the payload. Chunk, ack and end frames carry fixed binary headers;
 * the others carry UTF-8 JSON decoded through a Schema, so that a malformed
 * frame becomes a `DecodeError` naming the field.
 *
 * @since 0.1.0
 */
import { Result, Schema, SchemaIssue } from "effect"
import { Envelope } from "./Envelope.ts"
import type { Frame } from "./Frame.ts"
import { DecodeError, FrameTooLarge } from "./TransportError.ts"

/**
 * Bytes before a frame's payload: length (4) + type (1).
 *
 * @since 0.1.0
 * @category constants
 */
export const headerBytes = 5

/**
 * The default largest frame accepted (1 MiB). Byte streams are cut into
 * chunks well below it, so only an oversized control message or a hostile
 * peer hits this limit.
 *
 * @since 0.1.0
 * @category constants
 */
export const defaultMaxFrameBytes = 1024 * 1024

const TYPE_MESSAGE = 1
const TYPE_OPEN = 2
const TYPE_CHUNK = 3
const TYPE_ACK = 4
const TYPE_END = 5
const TYPE_ABORT = 6
const TYPE_CLOSE = 7
// id (u32) + offset (f64): offsets are byte counts, exact in a double up to 2^53.
const STREAM_HEADER = 12
// A chunk frame up to its payload: length, type, id, offset.
const CHUNK_HEADER = headerBytes + STREAM_HEADER

const encoder = new TextEncoder()
// Not fatal: invalid UTF-8 becomes U+FFFD and then fails JSON or Schema decoding.
const decoder = new TextDecoder("utf-8")

const StreamOpenBody = Schema.Struct({
  id: Schema.Int,
  tag: Schema.String,
  meta: Schema.Json,
  totalBytes: Schema.NullOr(Schema.Int),
  ackBytes: Schema.optionalKey(Schema.Int.check(Schema.isGreaterThanOrEqualTo(1))),
})
const StreamAbortBody = Schema.Struct({
  id: Schema.Int,
  reason: Schema.String,
  origin: Schema.optionalKey(Schema.Literals(["sender", "receiver"])),
})
const CloseBody = Schema.Struct({ reason: Schema.String })

// Big-endian fields are read and written byte by byte (offsets through one scratch DataView), never
// through a DataView over the frame itself: `.buffer` of a small typed array makes V8 move it to a
// fresh off-heap allocation, which the GC then tracks — once per frame header on the hot path.
const scratch = new DataView(new ArrayBuffer(8))
const scratchBytes = new Uint8Array(scratch.buffer)

const writeUint32 = (out: Uint8Array, at: number, value: number): void => {
  out[at] = value >>> 24
  out[at + 1] = value >>> 16
  out[at + 2] = value >>> 8
  out[at + 3] = value
}

const readUint32 = (bytes: Uint8Array, at: number): number =>
  ((bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!) >>> 0

const readFloat64 = (bytes: Uint8Array, at: number): number => {
  for (let i = 0; i < 8; i++) scratchBytes[i] = bytes[at + i]!
  return scratch.getFloat64(0)
}

// Stream frame headers are carved from shared 64 KiB slabs, as Node's Buffer pool does: one
// off-heap allocation per ~3800 headers instead of one each (a socket write needs its bytes
// off-heap). A slab is never rewritten; it is collected once no header in it is referenced.
const slabBytes = 64 * 1024
let slab = new Uint8Array(slabBytes)
let slabUsed = 0

const allocHeader = (size: number): Uint8Array => {
  if (slabUsed + size > slabBytes) {
    slab = new Uint8Array(slabBytes)
    slabUsed = 0
  }
  const out = slab.subarray(slabUsed, slabUsed + size)
  slabUsed += size
  return out
}

const jsonFrame = (type: number, value: unknown): Uint8Array => {
  const body = encoder.encode(JSON.stringify(value))
  const out = new Uint8Array(headerBytes + body.byteLength)
  writeUint32(out, 0, 1 + body.byteLength)
  out[4] = type
  out.set(body, headerBytes)
  return out
}

const streamFrame = (type: number, id: number, offset: number, payloadLength: number): Uint8Array => {
  const out = allocHeader(headerBytes + STREAM_HEADER)
  writeUint32(out, 0, 1 + STREAM_HEADER + payloadLength)
  out[4] = type
  writeUint32(out, 5, id)
  scratch.setFloat64(0, offset)
  out.set(scratchBytes, 9)
  return out
}

/**
 * Encodes a frame as one or two buffers (the header, then a chunk's bytes
 * untouched), so that chunk payloads are never copied on the way out.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encode = (frame: Frame): readonly [Uint8Array] | readonly [Uint8Array, Uint8Array] => {
  switch (frame._tag) {
    case "Message":
      return [jsonFrame(TYPE_MESSAGE, Schema.encodeSync(Envelope)(frame.envelope))]
    case "StreamOpen":
      return [
        jsonFrame(TYPE_OPEN, {
          id: frame.id,
          tag: frame.tag,
          meta: frame.meta,
          totalBytes: frame.totalBytes,
          ackBytes: frame.ackBytes,
        }),
      ]
    case "Chunk":
      return [streamFrame(TYPE_CHUNK, frame.id, frame.offset, frame.bytes.byteLength), frame.bytes]
    case "Ack":
      return [streamFrame(TYPE_ACK, frame.id, frame.offset, 0)]
    case "StreamEnd":
      return [streamFrame(TYPE_END, frame.id, frame.totalBytes, 0)]
    case "StreamAbort":
      return [jsonFrame(TYPE_ABORT, { id: frame.id, reason: frame.reason, origin: frame.origin })]
    case "Close":
      return [jsonFrame(TYPE_CLOSE, { reason: frame.reason })]
  }
}

/**
 * Encodes a frame into a single buffer (copies a chunk's bytes). Handy for
 * tests and for links that want one buffer per frame.
 *
 * @since 0.1.0
 * @category encoding
 */
export const encodeToBytes = (frame: Frame): Uint8Array => {
  const parts = encode(frame)
  if (parts.length === 1) return parts[0]
  const out = new Uint8Array(parts[0].byteLength + parts[1].byteLength)
  out.set(parts[0], 0)
  out.set(parts[1], parts[0].byteLength)
  return out
}

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()

// The first issue's message and its full path as dotted keys (`body.weights.3`), read from the
// issue tree rather than parsed out of the formatted message.
const describeIssue = (error: Schema.SchemaError): { reason: string; path?: string } => {
  const first = formatIssues(error.issue).issues[0]
  if (first === undefined) return { reason: error.message }
  const path = (first.path ?? []).map((segment) => String(typeof segment === "object" ? segment.key : segment))
  return path.length === 0 ? { reason: first.message } : { reason: first.message, path: path.join(".") }
}

const jsonDecoder = <S extends Schema.Constraint>(schema: S, what: string) => {
  const decode = Schema.decodeUnknownResult(Schema.fromJsonString(schema) as unknown as Schema.Decoder<S["Type"]>)
  return (bytes: Uint8Array, peer: string): Result.Result<S["Type"], DecodeError> =>
    Result.mapError(decode(decoder.decode(bytes)), (error) => {
      const issue = describeIssue(error)
      return new DecodeError({ peer, reason: `${what} frame: ${issue.reason}`, ...pathOf(issue) })
    })
}

const decodeMessage = jsonDecoder(Envelope, "message")
const decodeOpen = jsonDecoder(StreamOpenBody, "stream-open")
const decodeAbort = jsonDecoder(StreamAbortBody, "stream-abort")
const decodeClose = jsonDecoder(CloseBody, "close")

const pathOf = (issue: { path?: string }): { path?: string } => (issue.path === undefined ? {} : { path: issue.path })

/**
 * Decodes one complete frame body (the bytes after the 4-byte length).
 *
 * @since 0.1.0
 * @category decoding
 */
export const decodeBody = (body: Uint8Array, peer: string): Result.Result<Frame, DecodeError> => {
  const type = body[0]
  const binary = (): Result.Result<{ id: number; offset: number }, DecodeError> => {
    if (body.byteLength < 1 + STREAM_HEADER) {
      return Result.fail(new DecodeError({ peer, reason: `frame type ${type} shorter than its header` }))
    }
    const offset = readFloat64(body, 5)
    if (!Number.isSafeInteger(offset) || offset < 0) {
      return Result.fail(new DecodeError({ peer, reason: `frame type ${type} has an invalid offset`, path: "offset" }))
    }
    return Result.succeed({ id: readUint32(body, 1), offset })
  }
  switch (type) {
    case TYPE_MESSAGE:
      return Result.map(decodeMessage(body.subarray(1), peer), (envelope) => ({
        _tag: "Message" as const,
        envelope,
      }))
    case TYPE_OPEN:
      return Result.map(decodeOpen(body.subarray(1), peer), (open) => ({
        _tag: "StreamOpen" as const,
        ...open,
      }))
    case TYPE_CHUNK:
      return Result.map(binary(), ({ id, offset }) => ({
        _tag: "Chunk" as const,
        id,
        offset,
        bytes: body.subarray(1 + STREAM_HEADER),
      }))
    case TYPE_ACK:
      return Result.map(binary(), ({ id, offset }) => ({ _tag: "Ack" as const, id, offset }))
    case TYPE_END:
      return Result.map(binary(), ({ id, offset }) => ({ _tag: "StreamEnd" as const, id, totalBytes: offset }))
    case TYPE_ABORT:
      return Result.map(decodeAbort(body.subarray(1), peer), (abort) => ({
        _tag: "StreamAbort" as const,
        ...abort,
      }))
    case TYPE_CLOSE:
      return Result.map(decodeClose(body.subarray(1), peer), ({ reason }) => ({
        _tag: "Close" as const,
        reason,
      }))
    default:
      return Result.fail(new DecodeError({ peer, reason: `unknown frame type ${String(type)}`, path: "type" }))
  }
}

/**
 * Incremental decoder for a byte stream of frames: feed it whatever the
 * socket delivered and get back every frame completed so far. It keeps at most
 * one partial frame (bounded by `maxFrameBytes`), rejects a declared length
 * above the limit before buffering it, and never copies a frame that arrived
 * within a single read.
 *
 * With `streamChunks`, a chunk's payload is handed on as it arrives instead of
 * being assembled: one `Chunk` frame per piece of received buffer, each a view
 * of those bytes, at consecutive offsets. To a `Connection` that means the
 * same (it checks and counts offsets), and on TCP — where nearly every chunk
 * spans several reads — it saves a copy per chunk and the garbage it makes
 * (measured: about a third of the transport's CPU on the 256 MiB benchmark).
 *
 * @since 0.1.0
 * @category decoding
 */
export class FrameDecoder {
  readonly peer: string
  readonly maxFrameBytes: number
  readonly streamChunks: boolean
  private pending: Array<Uint8Array> = []
  private pendingBytes = 0
  private chunk: { readonly id: number; offset: number; remaining: number } | undefined = undefined

  constructor(options: {
    readonly peer: string
    readonly maxFrameBytes?: number | undefined
    readonly streamChunks?: boolean | undefined
  }) {
    this.peer = options.peer
    this.maxFrameBytes = options.maxFrameBytes ?? defaultMaxFrameBytes
    this.streamChunks = options.streamChunks ?? false
  }

  /**
   * Bytes received but not yet part of a complete frame.
   */
  get bufferedBytes(): number {
    return this.pendingBytes
  }

  /**
   * Whether the bytes so far end inside a frame (a stream that ends here was cut).
   */
  get insideFrame(): boolean {
    return this.pendingBytes > 0 || this.chunk !== undefined
  }

  /**
   * Consumes `bytes` and returns the frames they complete, or the first error.
   * After an error the decoder must not be used again: the stream is out of
   * sync and the connection should be closed.
   */
  push(bytes: Uint8Array): Result.Result<Array<Frame>, DecodeError | FrameTooLarge> {
    if (bytes.byteLength > 0) {
      this.pending.push(bytes)
      this.pendingBytes += bytes.byteLength
    }
    const frames: Array<Frame> = []
    while (true) {
      const chunk = this.chunk
      if (chunk !== undefined) {
        while (chunk.remaining > 0 && this.pendingBytes > 0) {
          const first = this.pending[0]!
          const size = Math.min(first.byteLength, chunk.remaining)
          // A read that is all payload (most of them) is handed on as it is, without a new view.
          const bytes = size === first.byteLength ? first : first.subarray(0, size)
          frames.push({ _tag: "Chunk", id: chunk.id, offset: chunk.offset, bytes })
          chunk.offset += size
          chunk.remaining -= size
          this.drop(size)
        }
        if (chunk.remaining > 0) break
        this.chunk = undefined
      }
      if (this.pendingBytes < 4) break
      const head = this.peek(Math.min(headerBytes, this.pendingBytes))
      const length = readUint32(head, 0)
      if (length === 0) {
        return Result.fail(new DecodeError({ peer: this.peer, reason: "frame of length 0", path: "length" }))
      }
      if (length > this.maxFrameBytes) {
        return Result.fail(new FrameTooLarge({ peer: this.peer, size: length, maxBytes: this.maxFrameBytes }))
      }
      if (
        this.streamChunks &&
        this.pendingBytes >= headerBytes &&
        head[4] === TYPE_CHUNK &&
        4 + length > CHUNK_HEADER
      ) {
        if (this.pendingBytes < CHUNK_HEADER) break
        const header = decodeBody(this.take(CHUNK_HEADER).subarray(4), this.peer)
        if (Result.isFailure(header)) return Result.fail(header.failure)
        if (header.success._tag === "Chunk") {
          this.chunk = { id: header.success.id, offset: header.success.offset, remaining: 4 + length - CHUNK_HEADER }
        }
        continue
      }
      if (this.pendingBytes < 4 + length) break
      const frame = decodeBody(this.take(4 + length).subarray(4), this.peer)
      if (Result.isFailure(frame)) return Result.fail(frame.failure)
      frames.push(frame.success)
    }
    return Result.succeed(frames)
  }

  private drop(n: number): void {
    const first = this.pending[0]!
    if (first.byteLength === n) this.pending.shift()
    else this.pending[0] = first.subarray(n)
    this.pendingBytes -= n
  }

  // The first n buffered bytes without consuming them; a copy only when they span buffers.
  private peek(n: number): Uint8Array {
    const first = this.pending[0]!
    return first.byteLength >= n ? first : this.copy(n, false)
  }

  // Removes and returns the first n buffered bytes; a view when they lie in one buffer.
  private take(n: number): Uint8Array {
    const first = this.pending[0]!
    if (first.byteLength < n) return this.copy(n, true)
    this.drop(n)
    return first.subarray(0, n)
  }

  private copy(n: number, consume: boolean): Uint8Array {
    const out = new Uint8Array(n)
    let filled = 0
    let index = 0
    while (filled < n) {
      const part = consume ? this.pending[0]! : this.pending[index++]!
      const size = Math.min(part.byteLength, n - filled)
      out.set(part.subarray(0, size), filled)
      filled += size
      if (consume) this.drop(size)
    }
    return out
  }
}
