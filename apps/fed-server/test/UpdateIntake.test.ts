import * as fs from "node:fs"
import { assert, describe, it } from "@effect/vitest"
import { Weights } from "@fedguard/federation"
import { TransportError } from "@fedguard/transport"
import { type Cause, Effect, Exit, Fiber, Queue, Stream } from "effect"
import { TestClock } from "effect/testing"
import * as UpdateAdmission from "../src/UpdateAdmission.ts"
import * as UpdateIntake from "../src/UpdateIntake.ts"
import * as UpdateSpill from "../src/UpdateSpill.ts"
import { spillSpy } from "./support/SpillSpy.ts"
import { cut, incomingTransfer } from "./support/Uploads.ts"

const paramCount = 1000
const weights = Float32Array.from({ length: paramCount }, (_, i) => Math.sin(i) * 10)
const encoded = Weights.encode(weights)

// A byte stream the test feeds chunk by chunk.
const feed = Effect.gen(function* () {
  const queue = yield* Queue.unbounded<Uint8Array, TransportError.TransportError | Cause.Done>()
  const settle = Effect.gen(function* () {
    for (let i = 0; i < 100; i++) yield* Effect.yieldNow
  })
  return {
    stream: Stream.fromQueue(queue),
    send: (chunk: Uint8Array) => Effect.andThen(Queue.offer(queue, chunk), settle),
    end: Effect.andThen(Queue.end(queue), settle),
    fail: (error: TransportError.TransportError) => Effect.andThen(Queue.fail(queue, error), settle),
  }
})

/** A spy store with a round directory; `read` streams an upload into it. */
const intake = Effect.gen(function* () {
  const spy = yield* spillSpy
  const directory = yield* spy.service.directory(1)
  const read = (
    bytes: Stream.Stream<Uint8Array, TransportError.TransportError>,
    destination: UpdateIntake.Destination = { _tag: "Spill", directory },
  ) => {
    const { transfer, aborts } = incomingTransfer(bytes)
    const content = UpdateIntake.read(transfer, { id: "c1", paramCount, destination, idleTimeout: "60 seconds" }).pipe(
      Effect.provideService(UpdateSpill.UpdateSpill, spy.service),
    )
    return { content, aborts }
  }
  return { spy, directory, read }
})

const withNaNAt = (index: number) => {
  const poisoned = weights.slice()
  poisoned[index] = Number.NaN
  return Weights.encode(poisoned)
}

describe("UpdateIntake.read", () => {
  it.effect(
    "streams an update into its spill chunk by chunk: the spill holds exactly its bytes, and it is admitted",
    () =>
      Effect.gen(function* () {
        const { spy, read } = yield* intake
        const content = yield* read(Stream.fromIterable(cut(encoded, [1021, 3, 1, 777]))).content
        assert.strictEqual(content._tag, "Spilled")
        if (content._tag !== "Spilled") return
        assert.strictEqual(content.bytes, paramCount * 4)
        assert.deepStrictEqual(new Uint8Array(fs.readFileSync(content.spill.path)), encoded)
        assert.deepStrictEqual(
          spy.created.map((c) => [c.appended, c.discarded]),
          [[paramCount * 4, false]],
        )
      }).pipe(Effect.scoped),
  )

  it.effect(
    "a NaN in the last chunk: refused as non-finite, and what was spilled before it is deleted before the round sees the candidate",
    () =>
      Effect.gen(function* () {
        const { spy, directory, read } = yield* intake
        const chunks = cut(withNaNAt(paramCount - 1), [1000])
        const { content, aborts } = read(Stream.fromIterable(chunks))
        const result = yield* content
        assert.strictEqual(result._tag, "Refused")
        if (result._tag === "Refused") assert.strictEqual(result.refusal.reason, "non-finite weights")
        // Every chunk but the last was written, then the whole spill went.
        assert.deepStrictEqual(
          spy.created.map((c) => [c.appended, c.discarded]),
          [[paramCount * 4 - chunks.at(-1)!.byteLength, true]],
        )
        assert.deepStrictEqual(fs.readdirSync(directory), [])
        // The sender is not cut off: its upload ends normally, and the refusal is the round's to tell.
        assert.deepStrictEqual(aborts, [])
      }).pipe(Effect.scoped),
  )

  it.effect(
    "a NaN in an early chunk: the spill is deleted at once, while the rest of the upload is still coming, and nothing more is written",
    () =>
      Effect.gen(function* () {
        const { spy, directory, read } = yield* intake
        const input = yield* feed
        const fiber = yield* Effect.forkChild(read(input.stream).content)
        const [first, second, ...rest] = cut(withNaNAt(300), [1000])
        yield* input.send(first!)
        assert.strictEqual(fs.readdirSync(directory).length, 1)
        yield* input.send(second!)
        assert.deepStrictEqual(fs.readdirSync(directory), [])
        for (const chunk of rest) yield* input.send(chunk)
        yield* input.end
        const result = yield* Fiber.join(fiber)
        assert.strictEqual(result._tag === "Refused" && result.refusal.reason, "non-finite weights")
        assert.deepStrictEqual(
          spy.created.map((c) => [c.appended, c.discarded]),
          [[1000, true]],
        )
      }).pipe(Effect.scoped),
  )

  it.effect("a short update is refused as the wrong length and its spill deleted", () =>
    Effect.gen(function* () {
      const { directory, read } = yield* intake
      const result = yield* read(Stream.make(encoded.subarray(0, 3996))).content
      assert.strictEqual(
        result._tag === "Refused" && result.refusal.reason,
        "wrong length: 3996 bytes, expected 4000 (1000 float32)",
      )
      assert.deepStrictEqual(fs.readdirSync(directory), [])
    }).pipe(Effect.scoped),
  )

  it.effect("an update the metadata already refused is read to its end but never stored", () =>
    Effect.gen(function* () {
      const { spy, read } = yield* intake
      const refusal = UpdateAdmission.notRunning("c1", 7)
      const { content, aborts } = read(Stream.fromIterable(cut(encoded, [512])), { _tag: "Drop", refusal })
      const result = yield* content
      assert.deepStrictEqual(result, { _tag: "Refused", refusal })
      assert.deepStrictEqual(spy.created, [])
      assert.deepStrictEqual(aborts, [])
    }).pipe(Effect.scoped),
  )

  it.effect("an update longer than the model is cut off at the limit, aborted, and its spill deleted", () =>
    Effect.gen(function* () {
      const { spy, directory, read } = yield* intake
      const long = new Uint8Array(4004)
      long.set(encoded)
      const { content, aborts } = read(Stream.fromIterable(cut(long, [1001])))
      const error = yield* Effect.flip(content)
      assert.strictEqual(error._tag, "TransferTooLarge")
      assert.strictEqual(aborts.length, 1)
      assert.deepStrictEqual(
        spy.created.map((c) => [c.appended, c.discarded]),
        [[3003, true]],
      )
      assert.deepStrictEqual(fs.readdirSync(directory), [])
    }).pipe(Effect.scoped),
  )

  it.effect("an upload that stops moving fails as idle at the idle timeout, not before, and its spill is deleted", () =>
    Effect.gen(function* () {
      const { directory, read } = yield* intake
      const input = yield* feed
      const { content, aborts } = read(input.stream)
      const fiber = yield* Effect.forkChild(content)
      yield* input.send(encoded.subarray(0, 2000))
      yield* TestClock.adjust("59999 millis")
      assert.isUndefined(fiber.pollUnsafe())
      assert.strictEqual(fs.readdirSync(directory).length, 1)
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert.isTrue(Exit.isFailure(exit))
      assert.strictEqual(Exit.isFailure(exit) && String(exit.cause).includes("TransferIdle"), true)
      assert.strictEqual(aborts.length, 1)
      assert.deepStrictEqual(fs.readdirSync(directory), [])
    }).pipe(Effect.scoped),
  )

  it.effect("a connection that breaks mid-upload fails with the transport's error and leaves no spill", () =>
    Effect.gen(function* () {
      const { directory, read } = yield* intake
      const input = yield* feed
      const fiber = yield* Effect.forkChild(read(input.stream).content)
      yield* input.send(encoded.subarray(0, 2000))
      yield* input.fail(new TransportError.ConnectionClosed({ peer: "c1", reason: "reset" }))
      const error = yield* Effect.flip(Fiber.join(fiber))
      assert.strictEqual(error._tag, "ConnectionClosed")
      assert.deepStrictEqual(fs.readdirSync(directory), [])
    }).pipe(Effect.scoped),
  )

  it.effect("an upload interrupted mid-stream leaves no spill", () =>
    Effect.gen(function* () {
      const { directory, read } = yield* intake
      const input = yield* feed
      const fiber = yield* Effect.forkChild(read(input.stream).content)
      yield* input.send(encoded.subarray(0, 2000))
      assert.strictEqual(fs.readdirSync(directory).length, 1)
      yield* Fiber.interrupt(fiber)
      assert.deepStrictEqual(fs.readdirSync(directory), [])
    }).pipe(Effect.scoped),
  )

  it.effect(
    "a spill that cannot be written fails with UpdateSpillError, tells the sender only that the server could not store it, and leaves nothing",
    () =>
      Effect.gen(function* () {
        const { spy, directory } = yield* intake
        const full: UpdateSpill.UpdateSpillService = {
          ...spy.service,
          create: (dir) =>
            Effect.map(spy.service.create(dir), (writer) => ({
              ...writer,
              append: () =>
                Effect.fail(
                  new UpdateSpill.UpdateSpillError({ operation: "write", path: writer.spill.path, reason: "ENOSPC" }),
                ),
            })),
        }
        const { transfer, aborts } = incomingTransfer(Stream.fromIterable(cut(encoded, [1000])))
        const error = yield* Effect.flip(
          UpdateIntake.read(transfer, {
            id: "c1",
            paramCount,
            destination: { _tag: "Spill", directory },
            idleTimeout: "60 seconds",
          }).pipe(Effect.provideService(UpdateSpill.UpdateSpill, full)),
        )
        assert.strictEqual(error._tag, "UpdateSpillError")
        assert.deepStrictEqual(aborts, ["the server could not store the update"])
        assert.deepStrictEqual(fs.readdirSync(directory), [])
      }).pipe(Effect.scoped),
  )
})
