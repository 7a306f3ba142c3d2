import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Envelope from "../src/Envelope.ts"
import type * as Frame from "../src/Frame.ts"
import * as FrameCodec from "../src/FrameCodec.ts"

const patternChunk = (bytes: number): Uint8Array => {
  const out = new Uint8Array(bytes)
  for (let i = 0; i < bytes; i++) out[i] = (i * 31 + 7) & 0xff
  return out
}

// Deterministic noise (mulberry32), so a failing split can be replayed.
const seededBytes = (length: number, seed: number): Uint8Array => {
  let state = seed >>> 0
  const out = new Uint8Array(length)
  for (let i = 0; i < length; i++) {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    out[i] = (t ^ (t >>> 14)) & 0xff
  }
  return out
}

/** A frame built by hand: length, type, body. */
const rawFrame = (type: number, body: Uint8Array | string): Uint8Array => {
  const payload = typeof body === "string" ? new TextEncoder().encode(body) : body
  const out = new Uint8Array(5 + payload.byteLength)
  new DataView(out.buffer).setUint32(0, 1 + payload.byteLength)
  out[4] = type
  out.set(payload, 5)
  return out
}

const frames: ReadonlyArray<Frame.Frame> = [
  { _tag: "Message", envelope: Envelope.make("join", { id: "client-1" }) },
  { _tag: "StreamOpen", id: 1, tag: "model", meta: { round: 3 }, totalBytes: 300_000 },
  { _tag: "Chunk", id: 1, offset: 0, bytes: patternChunk(256 * 1024) },
  { _tag: "Ack", id: 9, offset: 4096 },
  { _tag: "Chunk", id: 1, offset: 256 * 1024, bytes: patternChunk(300_000 - 256 * 1024) },
  { _tag: "StreamEnd", id: 1, totalBytes: 300_000 },
  { _tag: "StreamAbort", id: 2, reason: "stalled" },
  { _tag: "Close", reason: "bye" },
]

const wire = (() => {
  const parts = frames.map(FrameCodec.encodeToBytes)
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
  let at = 0
  for (const part of parts) {
    out.set(part, at)
    at += part.byteLength
  }
  return out
})()

// Cuts `bytes` at seeded points into pieces of 1 to `maxPiece` bytes.
const cut = (bytes: Uint8Array, seed: number, maxPiece: number): Array<Uint8Array> => {
  const sizes = seededBytes(bytes.byteLength, seed)
  const pieces: Array<Uint8Array> = []
  for (let at = 0, i = 0; at < bytes.byteLength; i++) {
    const size = 1 + Math.floor((sizes[i % sizes.byteLength]! / 256) * maxPiece)
    pieces.push(bytes.subarray(at, at + size))
    at += size
  }
  return pieces
}

const decodeAll = (pieces: ReadonlyArray<Uint8Array>, maxFrameBytes = FrameCodec.defaultMaxFrameBytes) => {
  const decoder = new FrameCodec.FrameDecoder({ peer: "peer", maxFrameBytes, streamChunks: true })
  const out: Array<Frame.Frame> = []
  for (const piece of pieces) {
    const result = decoder.push(piece)
    if (Result.isFailure(result)) return { decoder, out, error: result.failure }
    out.push(...result.success)
  }
  return { decoder, out, error: undefined }
}

// Joins consecutive chunk pieces of the same stream back into whole chunks, checking offsets as it goes.
const joinChunks = (decoded: ReadonlyArray<Frame.Frame>): Array<Frame.Frame> => {
  const out: Array<Frame.Frame> = []
  let pieces: Array<Frame.Chunk> = []
  const flush = () => {
    const first = pieces[0]
    if (first === undefined) return
    const bytes = new Uint8Array(pieces.reduce((n, piece) => n + piece.bytes.byteLength, 0))
    let at = 0
    for (const piece of pieces) {
      assert.strictEqual(piece.offset, first.offset + at)
      bytes.set(piece.bytes, at)
      at += piece.bytes.byteLength
    }
    out.push({ ...first, bytes })
    pieces = []
  }
  for (const frame of decoded) {
    if (frame._tag === "Chunk" && (pieces.length === 0 || pieces[0]!.id === frame.id)) {
      pieces.push(frame)
      continue
    }
    flush()
    if (frame._tag === "Chunk") pieces.push(frame)
    else out.push(frame)
  }
  flush()
  return out
}

describe("FrameDecoder with streamChunks", () => {
  it.effect("decodes what FrameCodec encodes however the bytes are cut, chunk payloads rejoining exactly", () =>
    Effect.sync(() => {
      for (const [seed, maxPiece] of [
        [1, wire.byteLength],
        [2, 65_536],
        [3, 1000],
        [4, 7],
      ] as const) {
        const { out, error, decoder } = decodeAll(cut(wire, seed, maxPiece))
        assert.isUndefined(error)
        assert.isFalse(decoder.insideFrame)
        assert.deepStrictEqual(joinChunks(out), [...frames])
      }
    }),
  )

  it.effect("hands a chunk's payload on as views of the pushed buffers, without waiting for its tail", () =>
    Effect.sync(() => {
      const encoded = FrameCodec.encodeToBytes({ _tag: "Chunk", id: 4, offset: 100, bytes: patternChunk(65_536) })
      const decoder = new FrameCodec.FrameDecoder({
        peer: "peer",
        maxFrameBytes: FrameCodec.defaultMaxFrameBytes,
        streamChunks: true,
      })
      const head = encoded.subarray(0, 40_000)
      const first = decoder.push(head)
      assert.isTrue(Result.isSuccess(first))
      if (Result.isFailure(first)) return
      const [piece] = first.success
      assert.strictEqual(first.success.length, 1)
      assert.strictEqual(piece?._tag, "Chunk")
      if (piece?._tag !== "Chunk") return
      assert.strictEqual(piece.offset, 100)
      assert.strictEqual(piece.bytes.byteLength, 40_000 - 17)
      // A view of the pushed buffer, not a copy.
      assert.strictEqual(piece.bytes.buffer, head.buffer)
      assert.isTrue(decoder.insideFrame)
      const rest = decoder.push(encoded.subarray(40_000))
      assert.isTrue(Result.isSuccess(rest))
      if (Result.isSuccess(rest))
        assert.strictEqual(rest.success[0]?._tag === "Chunk" && rest.success[0].offset, 100 + 40_000 - 17)
      assert.isFalse(decoder.insideFrame)
    }),
  )

  it.effect("rejects a declared length above maxFrameBytes from its first five bytes, before buffering the body", () =>
    Effect.sync(() => {
      const { error, out } = decodeAll([Uint8Array.of(0, 0x10, 0, 1, 3)], 1024 * 1024)
      assert.deepStrictEqual(out, [])
      assert.strictEqual(error?._tag, "FrameTooLarge")
      if (error?._tag === "FrameTooLarge") assert.strictEqual(error.size, 0x100001)
    }),
  )

  it.effect(
    "rejects a frame of length 0, an unknown type and a chunk too short for its header, and accepts none of them",
    () =>
      Effect.sync(() => {
        const zero = decodeAll([Uint8Array.of(0, 0, 0, 0, 1)])
        const unknown = decodeAll([rawFrame(42, "x")])
        const short = decodeAll([rawFrame(3, Uint8Array.of(0, 0, 0, 1))])
        assert.strictEqual(zero.error?._tag, "DecodeError")
        assert.strictEqual(unknown.error?._tag, "DecodeError")
        assert.strictEqual(short.error?._tag, "DecodeError")
        assert.deepStrictEqual([...zero.out, ...unknown.out, ...short.out], [])
      }),
  )

  it.effect("fails a chunk header with an impossible offset like FrameCodec does, naming the offset", () =>
    Effect.sync(() => {
      const encoded = FrameCodec.encodeToBytes({ _tag: "Chunk", id: 1, offset: 0, bytes: patternChunk(256) })
      new DataView(encoded.buffer).setFloat64(9, -1)
      const { error, out } = decodeAll([encoded])
      assert.strictEqual(error?._tag, "DecodeError")
      if (error?._tag === "DecodeError") assert.strictEqual(error.path, "offset")
      assert.deepStrictEqual(out, [])
    }),
  )
})
