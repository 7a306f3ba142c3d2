import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Metric } from "effect"
import { TestClock } from "effect/testing"
import { PipeClosed } from "../src/AgentError.ts"
import * as TaskAgent from "../src/TaskAgent.ts"
import * as TaskAgentMetrics from "../src/TaskAgentMetrics.ts"
import * as TaskExchanger from "../src/TaskExchanger.ts"
import * as TaskPipe from "../src/TaskPipe.ts"
import { bytes, failureOf, ofTag, record, recordSends, settle } from "./task-support.ts"

/** A site and a worker over an in-memory pair; the worker doubles each byte of a task. */
const connected = (options: Parameters<typeof TaskAgent.make>[1] = {}) =>
  Effect.gen(function* () {
    const pair = yield* TaskPipe.makeMemoryPair
    const exchanger = yield* TaskExchanger.make(pair.site, options)
    const agent = yield* TaskAgent.make(pair.worker, options)
    return { pair, exchanger, agent }
  })

const doubleOnce = (agent: TaskAgent.TaskAgent["Service"]) =>
  Effect.gen(function* () {
    const task = yield* agent.getTask()
    yield* agent.submitResult(
      task.taskId,
      task.data.map((b) => b * 2),
    )
    return task
  })

describe("TaskExchanger resends (FlareAgent: every 2 s, at most 3)", () => {
  it.effect("resends an unacknowledged task every 2 s exactly 3 times, then fails DeliveryFailed at 8 s", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const site = recordSends(pair.site)
      const exchanger = yield* TaskExchanger.make(site.pipe)
      const events = yield* record(exchanger.subscribe)
      yield* pair.worker.send({ _tag: "Heartbeat", id: 1 }) // a worker that is up, then never acks
      const attributes = { side: "exchanger", kind: "TaskOffer" }
      const resent = Metric.value(Metric.withAttributes(TaskAgentMetrics.messagesResent, attributes))
      const gaveUp = Metric.value(Metric.withAttributes(TaskAgentMetrics.deliveriesFailed, attributes))
      const resentBefore = (yield* resent).count
      const gaveUpBefore = (yield* gaveUp).count
      const offers = () => site.sent.filter((m) => m._tag === "TaskOffer")
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1, 2, 3) }))
      yield* settle
      assert.strictEqual(offers().length, 1)
      for (const expected of [2, 3, 4]) {
        yield* TestClock.adjust(1_999)
        assert.strictEqual(offers().length, expected - 1, "no resend before the interval")
        yield* TestClock.adjust(1)
        assert.strictEqual(offers().length, expected, "a resend at the interval")
      }
      assert.deepStrictEqual(
        offers().map((m) => m.id),
        [offers()[0]!.id, offers()[0]!.id, offers()[0]!.id, offers()[0]!.id],
        "every resend carries the first copy's id",
      )
      yield* TestClock.adjust(1_999)
      assert.isTrue(run.pollUnsafe() === undefined, "still waiting one interval after the last resend")
      yield* TestClock.adjust(1)
      const error = failureOf(yield* Fiber.await(run))
      assert.strictEqual(error._tag, "DeliveryFailed")
      if (error._tag === "DeliveryFailed") assert.deepStrictEqual([error.kind, error.resends], ["TaskOffer", 3])
      yield* TestClock.adjust("1 minute")
      assert.strictEqual(offers().length, 4, "nothing is resent after giving up")
      assert.deepStrictEqual(
        ofTag(events, "MessageResent").map((e) => [e.resend, e.at]),
        [
          [1, 2_000],
          [2, 4_000],
          [3, 6_000],
        ],
      )
      assert.strictEqual(ofTag(events, "DeliveryGaveUp").length, 1)
      assert.deepStrictEqual(
        [(yield* resent).count - resentBefore, (yield* gaveUp).count - gaveUpBefore],
        [3, 1],
        "counted in TaskAgentMetrics",
      )
    }),
  )

  it.effect("sends no resend once the worker acknowledged the task", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const site = recordSends(pair.site)
      const exchanger = yield* TaskExchanger.make(site.pipe)
      yield* TaskAgent.make(pair.worker)
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      yield* settle
      yield* TestClock.adjust("30 seconds")
      assert.strictEqual(site.sent.filter((m) => m._tag === "TaskOffer").length, 1)
      assert.isTrue(run.pollUnsafe() === undefined, "the task is delivered and waits for its result")
    }),
  )

  it.effect("a task waits for the worker's first message before its first send, so start-up time is not a resend", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const site = recordSends(pair.site)
      const exchanger = yield* TaskExchanger.make(site.pipe)
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual(
        site.sent.filter((m) => m._tag === "TaskOffer").length,
        0,
        "nothing offered to a silent worker",
      )
      yield* TaskAgent.make(pair.worker)
      yield* settle
      assert.strictEqual(site.sent.filter((m) => m._tag === "TaskOffer").length, 1, "offered once the worker is up")
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual(site.sent.filter((m) => m._tag === "TaskOffer").length, 1)
      assert.strictEqual(run.pollUnsafe(), undefined)
    }),
  )

  it.effect("after a slow start, the peer timeout counts from the worker's last message", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const exchanger = yield* TaskExchanger.make(pair.site, { peerTimeout: "10 seconds", startTimeout: "45 seconds" })
      const ended = yield* Effect.forkChild(exchanger.ended)
      yield* TestClock.adjust("17 seconds")
      yield* pair.worker.send({ _tag: "Heartbeat", id: 1 }) // up at 17 s, then silent
      yield* settle
      yield* TestClock.adjust(10_000 - 1)
      assert.strictEqual(ended.pollUnsafe(), undefined)
      yield* TestClock.adjust(1)
      const error = failureOf(yield* Fiber.await(ended))
      assert.strictEqual(error._tag, "PeerGone")
      if (error._tag === "PeerGone") assert.deepStrictEqual([error.lastHeardAt, error.silentMs], [17_000, 10_000])
    }),
  )

  it.effect("a task for a worker that never starts fails PeerGone at the start timeout, not at the peer timeout", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const exchanger = yield* TaskExchanger.make(pair.site, { peerTimeout: "10 seconds", startTimeout: "45 seconds" })
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      yield* TestClock.adjust(44_999)
      assert.strictEqual(run.pollUnsafe(), undefined, "a slow start is not a silent peer")
      yield* TestClock.adjust(1)
      const error = failureOf(yield* Fiber.await(run))
      assert.strictEqual(error._tag, "PeerGone")
      if (error._tag === "PeerGone") {
        assert.deepStrictEqual(
          [error.reason, error.silentMs, error.detail],
          ["silent", 45_000, "no message from the peer since the start"],
        )
      }
    }),
  )

  it.effect("with maxResends 0 sends once and fails one resendInterval later", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const site = recordSends(pair.site)
      const exchanger = yield* TaskExchanger.make(site.pipe, { maxResends: 0, resendInterval: "500 millis" })
      yield* pair.worker.send({ _tag: "Heartbeat", id: 1 })
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      yield* TestClock.adjust(499)
      assert.isTrue(run.pollUnsafe() === undefined)
      yield* TestClock.adjust(1)
      assert.strictEqual(failureOf(yield* Fiber.await(run))._tag, "DeliveryFailed")
      assert.strictEqual(site.sent.filter((m) => m._tag === "TaskOffer").length, 1)
    }),
  )
})

describe("PeerGone", () => {
  it.effect(
    "the exchanger declares a silent worker gone at the 30 s peer timeout after its last message, not before",
    () =>
      Effect.gen(function* () {
        const pair = yield* TaskPipe.makeMemoryPair
        const exchanger = yield* TaskExchanger.make(pair.site)
        const ended = yield* Effect.forkChild(exchanger.ended)
        yield* TestClock.adjust("10 seconds")
        yield* pair.worker.send({ _tag: "Heartbeat", id: 1 }) // then silence
        yield* settle
        yield* TestClock.adjust(30_000 - 1)
        assert.isTrue(ended.pollUnsafe() === undefined, "alive 1 ms before the timeout")
        yield* TestClock.adjust(1)
        const error = failureOf(yield* Fiber.await(ended))
        assert.strictEqual(error._tag, "PeerGone")
        if (error._tag === "PeerGone") assert.deepStrictEqual([error.reason, error.silentMs], ["silent", 30_000])
        const run = yield* Effect.exit(exchanger.run({ name: "train", data: bytes(1) }))
        assert.strictEqual(failureOf(run)._tag, "PeerGone", "calls after the peer is gone fail PeerGone")
      }),
  )

  it.effect("the agent declares a silent site gone at its peer timeout, and a waiting getTask fails PeerGone", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const agent = yield* TaskAgent.make(pair.worker, { heartbeatInterval: "1 second", peerTimeout: "5 seconds" })
      const events = yield* record(agent.subscribe)
      const waiting = yield* Effect.forkChild(agent.getTask())
      yield* pair.site.send({ _tag: "Heartbeat", id: 1 }) // then silence
      yield* settle
      yield* TestClock.adjust(4_999)
      assert.isTrue(waiting.pollUnsafe() === undefined)
      yield* TestClock.adjust(1)
      assert.strictEqual(failureOf(yield* Fiber.await(waiting))._tag, "PeerGone")
      assert.deepStrictEqual(
        ofTag(events, "PeerWentAway").map((e) => [e.side, e.reason, e.at]),
        [["agent", "silent", 5_000]],
      )
    }),
  )

  it.effect("no PeerGone on either end while heartbeats flow, for 10 peer timeouts", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected({ heartbeatInterval: "1 second", peerTimeout: "3 seconds" })
      const siteEnded = yield* Effect.forkChild(exchanger.ended)
      const workerEnded = yield* Effect.forkChild(agent.ended)
      yield* TestClock.adjust("30 seconds")
      assert.isTrue(siteEnded.pollUnsafe() === undefined)
      assert.isTrue(workerEnded.pollUnsafe() === undefined)
    }),
  )

  it.effect("heartbeats delayed by less than the timeout keep the peer alive; lost ones do not", () =>
    Effect.gen(function* () {
      const { pair, exchanger } = yield* connected({ heartbeatInterval: "1 second", peerTimeout: "3 seconds" })
      yield* pair.faults.delay("worker", "2500 millis")
      const ended = yield* Effect.forkChild(exchanger.ended)
      yield* TestClock.adjust("20 seconds")
      assert.isTrue(ended.pollUnsafe() === undefined, "late but present heartbeats keep the worker alive")
      yield* pair.faults.dropNext("worker", 1_000)
      yield* TestClock.adjust("20 seconds")
      assert.strictEqual(failureOf(yield* Fiber.await(ended))._tag, "PeerGone")
    }),
  )

  it.effect("a closed pipe (the worker exited) is PeerGone at once, with the reason", () =>
    Effect.gen(function* () {
      const { pair, exchanger } = yield* connected()
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      yield* settle
      yield* pair.faults.close("the worker exited with code 1")
      yield* settle
      const error = failureOf(yield* Fiber.await(run))
      assert.strictEqual(error._tag, "PeerGone")
      if (error._tag === "PeerGone") {
        assert.deepStrictEqual([error.reason, error.detail], ["pipe-closed", "the worker exited with code 1"])
      }
    }),
  )
})

describe("a pipe that fails a send", () => {
  it.effect("fails the send with PeerGone (pipe-closed, with the pipe's reason), not AgentClosed", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      // The worker's end refuses results as a port closed under it would; heartbeats still go.
      const broken: TaskPipe.TaskPipe["Service"] = {
        ...pair.worker,
        send: (message, transfer) =>
          (message as { _tag: string })._tag === "TaskResult"
            ? Effect.fail(new PipeClosed({ reason: "EPIPE" }))
            : pair.worker.send(message, transfer),
      }
      const exchanger = yield* TaskExchanger.make(pair.site)
      const agent = yield* TaskAgent.make(broken)
      yield* Effect.forkChild(exchanger.run({ name: "double", data: bytes(1) }))
      const task = yield* agent.getTask()
      const error = failureOf(yield* Effect.exit(agent.submitResult(task.taskId, bytes(2))))
      assert.strictEqual(error._tag, "PeerGone")
      if (error._tag === "PeerGone") assert.deepStrictEqual([error.reason, error.detail], ["pipe-closed", "EPIPE"])
      assert.strictEqual(failureOf(yield* Effect.exit(agent.getTask()))._tag, "PeerGone", "and the agent has ended")
    }),
  )
})

describe("TaskAgent calls", () => {
  it.effect("runs a task: the site gets the worker's result", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const worker = yield* Effect.forkChild(doubleOnce(agent))
      const result = yield* exchanger.run({ name: "double", data: bytes(1, 2, 3), meta: { round: 4 } })
      assert.deepStrictEqual([...result], [2, 4, 6])
      const task = yield* Fiber.join(worker)
      assert.deepStrictEqual([task.taskId, task.name, task.meta], ["task-1", "double", { round: 4 }])
    }),
  )

  it.effect("submitResult a second time for the same task fails CallStateError, and sends nothing", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const worker = recordSends(pair.worker)
      const exchanger = yield* TaskExchanger.make(pair.site)
      const agent = yield* TaskAgent.make(worker.pipe)
      yield* Effect.forkChild(exchanger.run({ name: "double", data: bytes(1) }))
      const task = yield* agent.getTask()
      yield* agent.submitResult(task.taskId, bytes(2))
      const second = failureOf(yield* Effect.exit(agent.submitResult(task.taskId, bytes(3))))
      assert.strictEqual(second._tag, "CallStateError")
      if (second._tag === "CallStateError")
        assert.deepStrictEqual([second.call, second.taskId], ["submitResult", task.taskId])
      const failAfter = failureOf(yield* Effect.exit(agent.failTask(task.taskId, "oops")))
      assert.strictEqual(failAfter._tag, "CallStateError")
      assert.strictEqual(worker.sent.filter((m) => m._tag === "TaskResult").length, 1)
    }),
  )

  it.effect(
    "submitResult for a task never received fails CallStateError; the first one for the current task succeeds",
    () =>
      Effect.gen(function* () {
        const { exchanger, agent } = yield* connected()
        const unknown = failureOf(yield* Effect.exit(agent.submitResult("task-9", bytes(1))))
        assert.strictEqual(unknown._tag, "CallStateError")
        const run = yield* Effect.forkChild(exchanger.run({ name: "double", data: bytes(1) }))
        const task = yield* agent.getTask()
        yield* agent.submitResult(task.taskId, bytes(7))
        assert.deepStrictEqual([...(yield* Fiber.join(run))], [7])
      }),
  )

  it.effect("getTask while the current task has no result fails CallStateError", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      yield* Effect.forkChild(exchanger.run({ name: "a", data: bytes(1) }))
      const task = yield* agent.getTask()
      const error = failureOf(yield* Effect.exit(agent.getTask("1 second")))
      assert.strictEqual(error._tag, "CallStateError")
      if (error._tag === "CallStateError") assert.strictEqual(error.taskId, task.taskId)
    }),
  )

  it.effect("getTask fails TaskTimeout at its timeout, not before, and the agent stays open", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const waiting = yield* Effect.forkChild(agent.getTask("10 seconds"))
      yield* TestClock.adjust(9_999)
      assert.isTrue(waiting.pollUnsafe() === undefined)
      yield* TestClock.adjust(1)
      const error = failureOf(yield* Fiber.await(waiting))
      assert.strictEqual(error._tag, "TaskTimeout")
      if (error._tag === "TaskTimeout") assert.strictEqual(error.waitedMs, 10_000)
      const worker = yield* Effect.forkChild(doubleOnce(agent))
      assert.deepStrictEqual([...(yield* exchanger.run({ name: "double", data: bytes(5) }))], [10])
      yield* Fiber.join(worker)
    }),
  )

  it.effect("a worker's failTask fails the site's run with TaskFailed and its reason", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      const task = yield* agent.getTask()
      yield* agent.failTask(task.taskId, "loss is NaN")
      const error = failureOf(yield* Fiber.await(run))
      assert.strictEqual(error._tag, "TaskFailed")
      if (error._tag === "TaskFailed") assert.strictEqual(error.reason, "loss is NaN")
    }),
  )

  it.effect("every agent call after close fails AgentClosed, and the site learns it from the Close message", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1) }))
      const task = yield* agent.getTask()
      yield* agent.close("training script finished")
      const calls = [agent.getTask(), agent.submitResult(task.taskId, bytes(1)), agent.failTask(task.taskId, "x")]
      for (const call of calls) {
        const error = failureOf(
          yield* Effect.exit(call as Effect.Effect<unknown, { readonly _tag: string; readonly by?: string }>),
        )
        assert.deepStrictEqual([error._tag, error.by], ["AgentClosed", "local"])
      }
      yield* settle
      const siteError = failureOf(yield* Fiber.await(run))
      assert.strictEqual(siteError._tag, "AgentClosed")
      if (siteError._tag === "AgentClosed") {
        assert.deepStrictEqual([siteError.by, siteError.reason], ["peer", "training script finished"])
      }
      assert.strictEqual(
        failureOf(yield* Effect.exit(exchanger.run({ name: "x", data: bytes(1) })))._tag,
        "AgentClosed",
      )
    }),
  )

  it.effect("the site's close ends a waiting getTask with AgentClosed by the peer", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const waiting = yield* Effect.forkChild(agent.getTask())
      yield* settle
      yield* exchanger.close("round finished")
      yield* settle
      const error = failureOf(yield* Fiber.await(waiting))
      assert.strictEqual(error._tag, "AgentClosed")
      if (error._tag === "AgentClosed") assert.deepStrictEqual([error.by, error.reason], ["peer", "round finished"])
    }),
  )
})

describe("de-duplication", () => {
  it.effect("a lost ack: the result is resent and delivered to the site exactly once", () =>
    Effect.gen(function* () {
      const { pair, exchanger, agent } = yield* connected()
      const siteEvents = yield* record(exchanger.subscribe)
      const workerEvents = yield* record(agent.subscribe)
      const run = yield* Effect.forkChild(exchanger.run({ name: "double", data: bytes(1, 2) }))
      const task = yield* agent.getTask()
      // The site's next Ack (the one for the result) is lost on its way to the worker.
      yield* pair.faults.dropNext("site", 1, (m) => (m as { _tag: string })._tag === "Ack")
      const submitted = yield* Effect.forkChild(agent.submitResult(task.taskId, bytes(2, 4)))
      yield* settle
      assert.deepStrictEqual([...(yield* Fiber.join(run))], [2, 4], "the site has the result at once")
      assert.isTrue(submitted.pollUnsafe() === undefined, "the worker still waits for an ack")
      yield* TestClock.adjust("2 seconds")
      yield* Fiber.join(submitted)
      assert.strictEqual(yield* pair.faults.dropped("site"), 1)
      const results = ofTag(siteEvents, "MessageReceived").filter((e) => e.kind === "TaskResult")
      assert.strictEqual(results.length, 2, "the result arrived twice")
      assert.strictEqual(results[0]!.messageId, results[1]!.messageId)
      assert.deepStrictEqual(
        ofTag(siteEvents, "DuplicateDropped").map((e) => [e.kind, e.messageId]),
        [["TaskResult", results[0]!.messageId]],
      )
      assert.strictEqual(ofTag(siteEvents, "MessageRejected").length, 0, "no second result reached the task")
      assert.strictEqual(ofTag(workerEvents, "MessageResent").length, 1)
    }),
  )

  it.effect("a lost task offer is resent and the worker gets the task once", () =>
    Effect.gen(function* () {
      const { pair, exchanger, agent } = yield* connected()
      yield* pair.faults.dropNext("site", 1, (m) => (m as { _tag: string })._tag === "TaskOffer")
      const run = yield* Effect.forkChild(exchanger.run({ name: "double", data: bytes(3) }))
      const worker = yield* Effect.forkChild(doubleOnce(agent))
      yield* TestClock.adjust(1_999)
      assert.isTrue(worker.pollUnsafe() === undefined)
      yield* TestClock.adjust(1)
      assert.deepStrictEqual([...(yield* Fiber.join(run))], [6])
      yield* Fiber.join(worker)
      const second = yield* Effect.forkChild(agent.getTask("10 seconds"))
      yield* TestClock.adjust("10 seconds")
      assert.strictEqual(failureOf(yield* Fiber.await(second))._tag, "TaskTimeout", "no second copy of the task")
    }),
  )
})

describe("large results and transfers", () => {
  it.effect("a result larger than chunkBytes travels in acknowledged chunks and arrives whole", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected({ chunkBytes: 4 })
      const workerEvents = yield* record(agent.subscribe)
      const run = yield* Effect.forkChild(exchanger.run({ name: "grow", data: bytes(1) }))
      const task = yield* agent.getTask()
      const result = Uint8Array.from({ length: 10 }, (_, i) => i + 1)
      yield* agent.submitResult(task.taskId, result)
      assert.deepStrictEqual([...(yield* Fiber.join(run))], [1, 2, 3, 4, 5, 6, 7, 8, 9, 10])
      assert.deepStrictEqual(
        ofTag(workerEvents, "MessageSent")
          .filter((e) => e.kind !== "Heartbeat" && e.kind !== "Ack")
          .map((e) => e.kind),
        ["TaskResult", "ResultChunk", "ResultChunk"],
      )
    }),
  )

  it.effect("a lost chunk is resent after resendInterval and the result still arrives whole, once", () =>
    Effect.gen(function* () {
      const { pair, exchanger, agent } = yield* connected({ chunkBytes: 4 })
      const run = yield* Effect.forkChild(exchanger.run({ name: "grow", data: bytes(1) }))
      const task = yield* agent.getTask()
      yield* pair.faults.dropNext("worker", 1, (m) => (m as { _tag: string })._tag === "ResultChunk")
      yield* Effect.forkChild(
        agent.submitResult(
          task.taskId,
          Uint8Array.from({ length: 10 }, (_, i) => i),
        ),
      )
      yield* settle
      assert.strictEqual(run.pollUnsafe(), undefined, "waits on the missing chunk")
      yield* TestClock.adjust("2 seconds")
      assert.deepStrictEqual([...(yield* Fiber.join(run))], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    }),
  )

  it.effect("an announced result above maxResultBytes fails TransferTooLarge; one at the limit arrives", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const exchanger = yield* TaskExchanger.make(pair.site, { maxResultBytes: 8 })
      const agent = yield* TaskAgent.make(pair.worker, { chunkBytes: 4 })
      const atLimit = yield* Effect.forkChild(exchanger.run({ name: "a", data: bytes(1) }))
      const first = yield* agent.getTask()
      yield* agent.submitResult(first.taskId, new Uint8Array(8).fill(7))
      assert.strictEqual((yield* Fiber.join(atLimit)).byteLength, 8)
      const tooLarge = yield* Effect.forkChild(exchanger.run({ name: "b", data: bytes(1) }))
      const second = yield* agent.getTask()
      yield* agent.submitResult(second.taskId, new Uint8Array(9))
      const error = failureOf(yield* Fiber.await(tooLarge))
      assert.strictEqual(error._tag, "TransferTooLarge")
      if (error._tag === "TransferTooLarge") assert.deepStrictEqual([error.bytes, error.maxBytes], [9, 8])
    }),
  )

  it.effect("with transfer, the task's and the result's buffers are moved, not copied", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const model = new Uint8Array(1024).fill(3)
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: model }, { transfer: true }))
      const task = yield* agent.getTask()
      assert.strictEqual(model.byteLength, 0, "the site's buffer was transferred (detached)")
      assert.strictEqual(task.data.byteLength, 1024)
      const update = task.data.map((b) => b + 1)
      yield* agent.submitResult(task.taskId, update, { transfer: true })
      assert.strictEqual(update.byteLength, 0, "the worker's buffer was transferred (detached)")
      const result = yield* Fiber.join(run)
      assert.deepStrictEqual([result.byteLength, result[0]], [1024, 4])
    }),
  )

  it.effect("without transfer, the caller keeps its buffer", () =>
    Effect.gen(function* () {
      const { exchanger, agent } = yield* connected()
      const model = new Uint8Array(16).fill(3)
      yield* Effect.forkChild(exchanger.run({ name: "train", data: model }))
      yield* agent.getTask()
      assert.strictEqual(model.byteLength, 16)
    }),
  )

  it.effect("a transferred task whose first copy was lost is refused, not delivered empty: DeliveryFailed", () =>
    Effect.gen(function* () {
      const { pair, exchanger, agent } = yield* connected()
      const events = yield* record(agent.subscribe)
      yield* pair.faults.dropNext("site", 1, (m) => (m as { _tag: string })._tag === "TaskOffer")
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1, 2) }, { transfer: true }))
      yield* settle
      yield* TestClock.adjust("8 seconds")
      assert.strictEqual(failureOf(yield* Fiber.await(run))._tag, "DeliveryFailed")
      assert.deepStrictEqual(
        ofTag(events, "MessageRejected").map((e) => e.path),
        ["moved", "moved", "moved"],
      )
      const waiting = yield* Effect.forkChild(agent.getTask("1 second"))
      yield* TestClock.adjust("1 second")
      assert.strictEqual(failureOf(yield* Fiber.await(waiting))._tag, "TaskTimeout")
    }),
  )
})
