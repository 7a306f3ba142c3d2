import { MessageChannel } from "node:worker_threads"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Stream } from "effect"
import * as TaskExchanger from "../src/TaskExchanger.ts"
import * as TaskPipe from "../src/TaskPipe.ts"
import { bytes, failureOf, ofTag, record } from "./task-support.ts"

// Real threads and processes run on the real clock: short timeouts, and every wait bounded.
// A worker's start-up (a fresh isolate loading effect) gets 10 s; after its first message, 800 ms.
const fast = {
  heartbeatInterval: "100 millis",
  peerTimeout: "800 millis",
  startTimeout: "10 seconds",
  resendInterval: "300 millis",
} as const
const bound = Effect.timeout("15 seconds")
const workerFile = new URL("./task-worker.ts", import.meta.url)
const childFile = new URL("./task-child.ts", import.meta.url)

describe("TaskPipe.fromMessagePort", () => {
  it.live("carries values both ways over a MessageChannel and closes with the port", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const channel = new MessageChannel()
        const a = yield* TaskPipe.fromMessagePort(channel.port1)
        const b = yield* TaskPipe.fromMessagePort(channel.port2)
        const buffer = new Uint8Array([1, 2, 3])
        yield* a.send({ data: buffer }, [buffer.buffer])
        assert.strictEqual(buffer.byteLength, 0, "transferred")
        const [received] = yield* Stream.runCollect(Stream.take(b.messages, 1))
        assert.deepStrictEqual([...(received as { data: Uint8Array }).data], [1, 2, 3])
        channel.port1.close()
        const closed = yield* b.closed
        assert.strictEqual(closed._tag, "PipeClosed")
        assert.strictEqual(failureOf(yield* Effect.exit(b.send("late")))._tag, "PipeClosed")
      }).pipe(bound),
    ),
  )

  it.effect("the worker's end fails PipeClosed outside a worker thread", () =>
    Effect.gen(function* () {
      const exit = yield* Effect.exit(Effect.scoped(Layer.build(TaskPipe.layerParentPort)))
      assert.strictEqual(failureOf(exit)._tag, "PipeClosed")
    }),
  )
})

describe("a real worker thread", () => {
  it.live("round-trips tasks: a small result, a chunked one, a worker's failure", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pipe = yield* TaskPipe.spawnWorker(workerFile, { workerData: { ...fast, chunkBytes: 64 * 1024 } })
        const exchanger = yield* TaskExchanger.make(pipe, { ...fast, chunkBytes: 64 * 1024 })
        const events = yield* record(exchanger.subscribe)
        const doubled = yield* exchanger.run({ name: "double", data: bytes(1, 2, 3) }, { transfer: true })
        assert.deepStrictEqual([...doubled], [2, 4, 6])
        const size = 1024 * 1024 + 5
        const grown = yield* exchanger.run({ name: "grow", data: bytes(), meta: { bytes: size } })
        assert.strictEqual(grown.byteLength, size)
        assert.isTrue(
          grown.every((b, i) => b === i % 251),
          "every byte in place",
        )
        const chunks = ofTag(events, "MessageReceived").filter((e) => e.kind === "ResultChunk").length
        assert.strictEqual(chunks, Math.ceil(size / (64 * 1024)) - 1)
        const failed = failureOf(yield* Effect.exit(exchanger.run({ name: "nonsense", data: bytes() })))
        assert.strictEqual(failed._tag, "TaskFailed")
      }).pipe(bound),
    ),
  )

  it.live("a task longer than the peer timeout that leaves the event loop free: heartbeats flow, no PeerGone", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pipe = yield* TaskPipe.spawnWorker(workerFile, { workerData: fast })
        const exchanger = yield* TaskExchanger.make(pipe, fast)
        const result = yield* exchanger.run({ name: "wait", data: bytes(9), meta: { ms: 1_500 } })
        assert.deepStrictEqual([...result], [9])
      }).pipe(bound),
    ),
  )

  it.live(
    "a worker that blocks its event loop past the peer timeout is PeerGone, while the site's fibers keep running",
    () =>
      Effect.scoped(
        Effect.gen(function* () {
          const pipe = yield* TaskPipe.spawnWorker(workerFile, { workerData: fast })
          const exchanger = yield* TaskExchanger.make(pipe, fast)
          yield* exchanger.run({ name: "double", data: bytes(1) })
          let ticks = 0
          const ticker = yield* Effect.forkChild(
            Effect.forever(
              Effect.andThen(
                Effect.sleep("50 millis"),
                Effect.sync(() => ticks++),
              ),
            ),
          )
          const error = failureOf(
            yield* Effect.exit(exchanger.run({ name: "block", data: bytes(), meta: { ms: 10_000 } })),
          )
          yield* Fiber.interrupt(ticker)
          assert.strictEqual(error._tag, "PeerGone")
          if (error._tag === "PeerGone") {
            assert.strictEqual(error.reason, "silent")
            assert.isAtLeast(error.silentMs, 800)
            // Detected near the 800 ms timeout, long before the 10 s block would have ended.
            assert.isBelow(error.silentMs, 5_000)
          }
          // 800 ms of silence at 50 ms per tick is 16 ticks; a site stuck with its worker would have none.
          assert.isAtLeast(ticks, 5)
        }).pipe(bound),
      ),
  )

  it.live("a worker that exits is PeerGone at once, with the exit in the reason", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pipe = yield* TaskPipe.spawnWorker(new URL("data:text/javascript,process.exit(3)"))
        const exchanger = yield* TaskExchanger.make(pipe, { ...fast, peerTimeout: "1 minute" })
        const error = failureOf(yield* Effect.exit(exchanger.ended))
        assert.strictEqual(error._tag, "PeerGone")
        if (error._tag === "PeerGone") {
          assert.deepStrictEqual([error.reason, error.detail], ["pipe-closed", "the worker exited with code 3"])
        }
      }).pipe(bound),
    ),
  )
})

describe("a real child process over IPC", () => {
  it.live("round-trips tasks and ends when the site closes", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pipe = yield* TaskPipe.forkChild(childFile, [JSON.stringify({ ...fast, chunkBytes: 4096 })], {
          execArgv: [],
        })
        const exchanger = yield* TaskExchanger.make(pipe, { ...fast, chunkBytes: 4096 })
        assert.deepStrictEqual([...(yield* exchanger.run({ name: "double", data: bytes(5, 6) }))], [10, 12])
        const grown = yield* exchanger.run({ name: "grow", data: bytes(), meta: { bytes: 10_000 } })
        assert.isTrue(grown.byteLength === 10_000 && grown.every((b, i) => b === i % 251))
        yield* exchanger.close("done")
        assert.deepStrictEqual(yield* pipe.exit, { code: 0, signal: null }, "the child ends on the site's Close")
      }).pipe(bound),
    ),
  )

  it.live("a child killed with SIGKILL is PeerGone at once", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const pipe = yield* TaskPipe.forkChild(childFile, [JSON.stringify({ ...fast, peerTimeout: "1 minute" })], {
          execArgv: [],
        })
        const exchanger = yield* TaskExchanger.make(pipe, { ...fast, peerTimeout: "1 minute" })
        yield* exchanger.run({ name: "double", data: bytes(1) })
        const run = yield* Effect.forkChild(exchanger.run({ name: "block", data: bytes(), meta: { ms: 30_000 } }))
        yield* Effect.sleep("100 millis")
        assert.isDefined(pipe.pid)
        process.kill(pipe.pid!, "SIGKILL")
        const error = failureOf(yield* Fiber.await(run))
        assert.strictEqual(error._tag, "PeerGone")
        // Node reports the IPC channel's disconnect before the exit: either closes the pipe.
        if (error._tag === "PeerGone") assert.strictEqual(error.reason, "pipe-closed")
        assert.deepStrictEqual(yield* pipe.exit, { code: null, signal: "SIGKILL" })
      }).pipe(bound),
    ),
  )
})
