import { assert, describe, it } from "@effect/vitest"
import { Effect, Result } from "effect"
import * as Envelope from "../src/Envelope.ts"
import type { Frame } from "../src/Frame.ts"
import * as FrameCodec from "../src/FrameCodec.ts"
import type { DecodeError, FrameTooLarge } from "../src/TransportError.ts"
import { payload } from "./fixtures.ts"

const everyFrame: ReadonlyArray<Frame> = [
  { _tag: "Message", envelope: Envelope.make("join", { client: "c-1", round: 3, weights: [0.5, -1, null, true] }) },
  { _tag: "Message", envelope: Envelope.make("heartbeat") },
  { _tag: "StreamOpen", id: 1, tag: "model", meta: { round: 7, samples: 600 }, totalBytes: 3000 },
  { _tag: "StreamOpen", id: 2, tag: "update", meta: null, totalBytes: null },
  { _tag: "Chunk", id: 1, offset: 0, bytes: payload(1000) },
  { _tag: "Chunk", id: 1, offset: 2 ** 40, bytes: payload(3, 9) },
  { _tag: "Chunk", id: 0xffffffff, offset: 12, bytes: new Uint8Array(0) },
  { _tag: "Ack", id: 1, offset: 1000 },
  { _tag: "StreamEnd", id: 1, totalBytes: 3000 },
  { _tag: "StreamAbort", id: 2, reason: "larger than 10 bytes", origin: "receiver" },
  { _tag: "StreamAbort", id: 2, reason: "sender gave up", origin: "sender" },
  { _tag: "StreamAbort", id: 3, reason: "no origin" },
  { _tag: "Close", reason: "training finished" },
  { _tag: "StreamOpen", id: 3, tag: "model", meta: null, totalBytes: null, ackBytes: 1024 * 1024 },
]

const concat = (parts: ReadonlyArray<Uint8Array>): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, part) => n + part.byteLength, 0))
  let offset = 0
  for (const part of parts) {
    out.set(part, offset)
    offset += part.byteLength
  }
  return out
}

// A frame with an arbitrary type byte and payload, for inputs `encode` would never produce.
const rawFrame = (type: number, body: Uint8Array | string): Uint8Array => {
  const bytes = typeof body === "string" ? new TextEncoder().encode(body) : body
  const out = new Uint8Array(FrameCodec.headerBytes + bytes.byteLength)
  new DataView(out.buffer).setUint32(0, 1 + bytes.byteLength)
  out[4] = type
  out.set(bytes, FrameCodec.headerBytes)
  return out
}

const decodeAll = (bytes: Uint8Array, maxFrameBytes?: number) =>
  new FrameCodec.FrameDecoder({ peer: "peer-a", maxFrameBytes }).push(bytes)

const decodeOk = (bytes: Uint8Array): Array<Frame> => {
  const result = decodeAll(bytes)
  if (Result.isFailure(result)) return assert.fail(`expected frames, got ${result.failure.message}`)
  return result.success
}

const decodeFail = (bytes: Uint8Array, maxFrameBytes?: number): DecodeError | FrameTooLarge => {
  const result = decodeAll(bytes, maxFrameBytes)
  if (Result.isSuccess(result)) return assert.fail(`expected a failure, got ${result.success.length} frame(s)`)
  return result.failure
}

const decodeError = (bytes: Uint8Array): DecodeError => {
  const error = decodeFail(bytes)
  if (error._tag !== "DecodeError") return assert.fail(`expected DecodeError, got ${error._tag}`)
  assert.strictEqual(error.peer, "peer-a")
  return error
}

describe("FrameCodec", () => {
  describe("round trip", () => {
    for (const frame of everyFrame) {
      it.effect(`decodes an encoded ${frame._tag} frame back to an equal frame`, () =>
        Effect.sync(() => {
          assert.deepStrictEqual(decodeOk(FrameCodec.encodeToBytes(frame)), [frame])
          assert.deepStrictEqual(decodeOk(concat(FrameCodec.encode(frame))), [frame])
        }),
      )
    }

    it.effect("keeps every chunk header it handed out intact while it encodes thousands more", () =>
      Effect.sync(() => {
        // Headers share slabs: one encoded early must still say what it said after many slabs were filled.
        const headers = Array.from({ length: 10_000 }, (_, i) => {
          const [header] = FrameCodec.encode({ _tag: "Chunk", id: i, offset: i * 4096, bytes: payload(1) })
          return header
        })
        for (const [i, header] of headers.entries()) {
          const frames = decodeOk(concat([header, payload(1)]))
          assert.deepStrictEqual(frames, [{ _tag: "Chunk", id: i, offset: i * 4096, bytes: payload(1) }])
        }
      }),
    )

    it.effect("decodes every frame type when the bytes arrive one at a time", () =>
      Effect.sync(() => {
        const decoder = new FrameCodec.FrameDecoder({ peer: "peer-a" })
        const bytes = concat(everyFrame.map(FrameCodec.encodeToBytes))
        const frames: Array<Frame> = []
        const completedAt: Array<number> = []
        for (let i = 0; i < bytes.byteLength; i++) {
          const result = decoder.push(bytes.subarray(i, i + 1))
          if (Result.isFailure(result)) return assert.fail(result.failure.message)
          for (const frame of result.success) {
            frames.push(frame)
            completedAt.push(i + 1)
          }
        }
        assert.deepStrictEqual(frames, everyFrame)
        // A frame is released exactly when its last byte arrives, not a byte earlier.
        let end = 0
        const expectedEnds = everyFrame.map((frame) => (end += FrameCodec.encodeToBytes(frame).byteLength))
        assert.deepStrictEqual(completedAt, expectedEnds)
        assert.strictEqual(decoder.bufferedBytes, 0)
      }),
    )

    it.effect("decodes many frames delivered in one buffer, in order", () =>
      Effect.sync(() => {
        const many = Array.from({ length: 200 }, (_, i): Frame => ({ _tag: "Ack", id: i % 3, offset: i * 1024 }))
        assert.deepStrictEqual(decodeOk(concat(many.map(FrameCodec.encodeToBytes))), many)
      }),
    )

    it.effect("keeps a partial frame buffered and returns nothing until it is complete", () =>
      Effect.sync(() => {
        const decoder = new FrameCodec.FrameDecoder({ peer: "peer-a" })
        const first = FrameCodec.encodeToBytes(everyFrame[0]!)
        const second = FrameCodec.encodeToBytes(everyFrame[4]!)
        const bytes = concat([first, second])
        const cut = first.byteLength + 10
        assert.deepStrictEqual(decoder.push(bytes.subarray(0, cut)), Result.succeed([everyFrame[0]!]))
        assert.strictEqual(decoder.bufferedBytes, 10)
        assert.deepStrictEqual(decoder.push(bytes.subarray(cut)), Result.succeed([everyFrame[4]!]))
        assert.strictEqual(decoder.bufferedBytes, 0)
      }),
    )

    it.effect("encode hands a chunk's bytes over untouched instead of copying them", () =>
      Effect.sync(() => {
        const bytes = payload(100)
        const parts = FrameCodec.encode({ _tag: "Chunk", id: 1, offset: 0, bytes })
        assert.strictEqual(parts.length, 2)
        assert.strictEqual(parts[1], bytes)
        assert.strictEqual(parts[0].byteLength, FrameCodec.headerBytes + 12)
      }),
    )

    it.effect("returns a chunk that arrived within one buffer as a view of it, and a copy when it was split", () =>
      Effect.sync(() => {
        const wire = FrameCodec.encodeToBytes({ _tag: "Chunk", id: 4, offset: 0, bytes: payload(64) })
        const [whole] = decodeOk(wire)
        assert.strictEqual(whole?._tag, "Chunk")
        if (whole?._tag !== "Chunk") return
        assert.strictEqual(whole.bytes.buffer, wire.buffer)

        const decoder = new FrameCodec.FrameDecoder({ peer: "peer-a" })
        decoder.push(wire.slice(0, 20))
        const split = decoder.push(wire.slice(20))
        assert.isTrue(Result.isSuccess(split))
        if (Result.isFailure(split)) return
        const [copied] = split.success
        assert.strictEqual(copied?._tag, "Chunk")
        if (copied?._tag !== "Chunk") return
        assert.notStrictEqual(copied.bytes.buffer, wire.buffer)
        assert.deepStrictEqual(copied.bytes, payload(64))
      }),
    )
  })

  describe("limits", () => {
    it.effect("rejects a declared length above maxFrameBytes from the header alone, before buffering the body", () =>
      Effect.sync(() => {
        const decoder = new FrameCodec.FrameDecoder({ peer: "peer-a", maxFrameBytes: 1000 })
        const header = new Uint8Array(FrameCodec.headerBytes)
        new DataView(header.buffer).setUint32(0, 1001)
        header[4] = 3
        const result = decoder.push(header)
        assert.isTrue(Result.isFailure(result))
        if (Result.isSuccess(result)) return
        assert.strictEqual(result.failure._tag, "FrameTooLarge")
        if (result.failure._tag !== "FrameTooLarge") return
        assert.strictEqual(result.failure.size, 1001)
        assert.strictEqual(result.failure.maxBytes, 1000)
        assert.include(result.failure.message, "1001 bytes")
        assert.include(result.failure.message, "1000 bytes")
      }),
    )

    it.effect("accepts a frame of exactly maxFrameBytes and waits for its body", () =>
      Effect.sync(() => {
        const decoder = new FrameCodec.FrameDecoder({ peer: "peer-a", maxFrameBytes: 1000 })
        const frame = rawFrame(3, new Uint8Array(999))
        assert.deepStrictEqual(decoder.push(frame.subarray(0, 100)), Result.succeed([]))
        assert.strictEqual(decoder.bufferedBytes, 100)
        const rest = decoder.push(frame.subarray(100))
        assert.isTrue(Result.isSuccess(rest))
      }),
    )

    it.effect("defaults maxFrameBytes to 1 MiB", () =>
      Effect.sync(() => {
        assert.strictEqual(FrameCodec.defaultMaxFrameBytes, 1024 * 1024)
        assert.strictEqual(new FrameCodec.FrameDecoder({ peer: "p" }).maxFrameBytes, 1024 * 1024)
        const chunk = (size: number) =>
          FrameCodec.encodeToBytes({ _tag: "Chunk", id: 1, offset: 0, bytes: new Uint8Array(size) })
        assert.isTrue(Result.isSuccess(decodeAll(chunk(1024 * 1024 - 13))))
        assert.strictEqual(decodeFail(chunk(1024 * 1024 - 12))._tag, "FrameTooLarge")
      }),
    )

    it.effect("rejects a frame of length 0 as undecodable", () =>
      Effect.sync(() => {
        const error = decodeError(new Uint8Array([0, 0, 0, 0]))
        assert.strictEqual(error.path, "length")
        assert.include(error.message, "length 0")
      }),
    )
  })

  describe("malformed frames", () => {
    it.effect("rejects an unknown frame type with a DecodeError naming `type`", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(42, "{}"))
        assert.strictEqual(error.path, "type")
        assert.include(error.message, "unknown frame type 42")
        // Its negative twin: the highest known type decodes.
        assert.strictEqual(decodeOk(rawFrame(7, '{"reason":"bye"}'))[0]?._tag, "Close")
      }),
    )

    it.effect("rejects a message whose tag is empty, naming the field", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(1, '{"tag":"","body":1}'))
        assert.strictEqual(error.path, "tag")
        assert.include(error.message, "at tag")
      }),
    )

    it.effect("rejects a message without a body, naming the field", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(1, '{"tag":"join"}'))
        assert.strictEqual(error.path, "body")
        assert.include(error.reason, "Missing key")
      }),
    )

    it.effect("rejects a body that is not JSON data (a non-finite number), naming the field", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(1, '{"tag":"join","body":{"ok":[1,{"bad":1e999}]}}'))
        assert.strictEqual(error.path, "body")
        assert.include(error.message, "at body")
      }),
    )

    it.effect("names the field of an invalid stream announcement", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(2, '{"id":1,"tag":"model","meta":null,"totalBytes":"many"}'))
        assert.strictEqual(error.path, "totalBytes")
        assert.include(error.message, "stream-open frame")
      }),
    )

    it.effect("rejects bytes that are not JSON where JSON is expected", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(1, "{tag: join"))
        assert.include(error.message, "message frame")
        assert.include(error.message, "JSON")
        assert.strictEqual(decodeError(rawFrame(7, new Uint8Array([0xff, 0xfe]))).peer, "peer-a")
      }),
    )

    it.effect("rejects malformed stream-open, stream-abort and close bodies", () =>
      Effect.sync(() => {
        assert.strictEqual(decodeError(rawFrame(2, '{"id":1.5,"tag":"m","meta":null,"totalBytes":null}')).path, "id")
        assert.strictEqual(decodeError(rawFrame(6, '{"id":1}')).path, "reason")
        assert.strictEqual(decodeError(rawFrame(6, '{"id":1,"reason":"x","origin":"both"}')).path, "origin")
        assert.strictEqual(decodeError(rawFrame(7, "{}")).path, "reason")
      }),
    )

    it.effect("rejects an ackBytes that is not a positive integer, and reads a stream-open without one as before", () =>
      Effect.sync(() => {
        for (const ackBytes of ["0", "-1", "1.5", '"1024"']) {
          const body = `{"id":1,"tag":"m","meta":null,"totalBytes":null,"ackBytes":${ackBytes}}`
          assert.strictEqual(decodeError(rawFrame(2, body)).path, "ackBytes", ackBytes)
        }
        assert.deepStrictEqual(decodeOk(rawFrame(2, '{"id":1,"tag":"m","meta":null,"totalBytes":null}')), [
          { _tag: "StreamOpen", id: 1, tag: "m", meta: null, totalBytes: null },
        ])
      }),
    )

    it.effect("rejects a negative or fractional offset and accepts offset 0", () =>
      Effect.sync(() => {
        for (const offset of [-1, 1.5, Number.NaN, 2 ** 53]) {
          for (const frame of [
            { _tag: "Chunk", id: 1, offset, bytes: payload(4) },
            { _tag: "Ack", id: 1, offset },
            { _tag: "StreamEnd", id: 1, totalBytes: offset },
          ] satisfies Array<Frame>) {
            const error = decodeError(FrameCodec.encodeToBytes(frame))
            assert.strictEqual(error.path, "offset", `${frame._tag} at ${offset}`)
          }
        }
        assert.deepStrictEqual(decodeOk(FrameCodec.encodeToBytes({ _tag: "Ack", id: 1, offset: 0 })), [
          { _tag: "Ack", id: 1, offset: 0 },
        ])
      }),
    )

    it.effect("rejects a binary frame shorter than its header", () =>
      Effect.sync(() => {
        const error = decodeError(rawFrame(4, new Uint8Array(5)))
        assert.include(error.message, "shorter than its header")
      }),
    )

    it.effect("reports the first bad frame even when good frames precede it in the same buffer", () =>
      Effect.sync(() => {
        const bytes = concat([FrameCodec.encodeToBytes(everyFrame[0]!), rawFrame(99, "")])
        assert.strictEqual(decodeError(bytes).path, "type")
      }),
    )
  })
})
