import { assert, describe, it } from "@effect/vitest"
import { Effect, Fiber, Result } from "effect"
import { TestClock } from "effect/testing"
import * as TaskAgent from "../src/TaskAgent.ts"
import * as TaskExchanger from "../src/TaskExchanger.ts"
import * as TaskPipe from "../src/TaskPipe.ts"
import * as TaskProtocol from "../src/TaskProtocol.ts"
import { bytes, collectInbound, failureOf, ofTag, record, settle } from "./task-support.ts"

const offer = { _tag: "TaskOffer", id: 1, taskId: "t-1", name: "train", data: bytes(1, 2) }

const decodeFailure = (input: unknown) => {
  const result = TaskProtocol.decode(input)
  if (Result.isSuccess(result)) throw new Error("expected a decode failure")
  return result.failure
}

describe("TaskProtocol.decode", () => {
  it("decodes every kind of message", () => {
    const messages: ReadonlyArray<TaskProtocol.Message> = [
      { ...offer, _tag: "TaskOffer", meta: { round: 3 } },
      { _tag: "TaskResult", id: 2, taskId: "t-1", outcome: "ok", totalBytes: 2, data: bytes(3, 4) },
      { _tag: "ResultChunk", id: 3, taskId: "t-1", offset: 2, data: bytes(5) },
      { _tag: "Ack", id: 4, of: 1 },
      { _tag: "Heartbeat", id: 5 },
      { _tag: "Close", id: 6, reason: "done" },
      { _tag: "ProtocolError", id: 7, tag: "TaskOffer", path: "taskId", reason: "bad" },
    ]
    for (const message of messages) {
      const decoded = TaskProtocol.decode(message)
      assert.isTrue(Result.isSuccess(decoded), message._tag)
      if (Result.isSuccess(decoded)) assert.deepStrictEqual(decoded.success, message)
    }
  })

  it("names the offending field of a known message kind", () => {
    const cases: ReadonlyArray<readonly [unknown, string, string]> = [
      [{ ...offer, taskId: 42 }, "TaskOffer", "taskId"],
      [{ ...offer, taskId: "" }, "TaskOffer", "taskId"],
      [{ ...offer, data: [1, 2] }, "TaskOffer", "data"],
      [{ ...offer, id: -1 }, "TaskOffer", "id"],
      [{ ...offer, id: 1.5 }, "TaskOffer", "id"],
      [{ ...offer, name: "x".repeat(257) }, "TaskOffer", "name"],
      [{ _tag: "Ack", id: 2 }, "Ack", "of"],
      [
        { _tag: "TaskResult", id: 2, taskId: "t", outcome: "maybe", totalBytes: 0, data: bytes() },
        "TaskResult",
        "outcome",
      ],
      [{ _tag: "ResultChunk", id: 2, taskId: "t", offset: -4, data: bytes() }, "ResultChunk", "offset"],
    ]
    for (const [input, tag, path] of cases) {
      const error = decodeFailure(input)
      assert.strictEqual(error._tag, "MalformedMessage", path)
      if (error._tag === "MalformedMessage") assert.deepStrictEqual([error.tag, error.path], [tag, path])
    }
  })

  it("reports values that are not messages of the protocol as UnknownMessage, without throwing", () => {
    const cases: ReadonlyArray<readonly [unknown, string]> = [
      [42, "<not an object>"],
      [null, "<not an object>"],
      ["TaskOffer", "<not an object>"],
      [{ id: 1 }, "<missing>"],
      [{ _tag: 7 }, "<missing>"],
      [{ _tag: "Bogus", id: 1 }, "Bogus"],
      [{ _tag: "x".repeat(1000) }, "x".repeat(64)],
    ]
    for (const [input, tag] of cases) {
      const error = decodeFailure(input)
      assert.deepStrictEqual([error._tag, error.tag], ["UnknownMessage", tag])
    }
  })
})

describe("untrusted input on a live end", () => {
  it.effect(
    "a malformed or unknown message is a typed rejection, answered with ProtocolError, and the agent keeps serving",
    () =>
      Effect.gen(function* () {
        const pair = yield* TaskPipe.makeMemoryPair
        const fromAgent = yield* collectInbound(pair.site)
        const agent = yield* TaskAgent.make(pair.worker)
        const events = yield* record(agent.subscribe)
        yield* settle
        yield* pair.site.send({ ...offer, taskId: 42 })
        yield* pair.site.send({ _tag: "Bogus", id: 2 })
        yield* pair.site.send("not even an object")
        yield* pair.site.send({ _tag: "ProtocolError", id: 3 })
        yield* settle
        assert.deepStrictEqual(
          ofTag(events, "MessageRejected").map((e) => [e.tag, e.path]),
          [
            ["TaskOffer", "taskId"],
            ["Bogus", undefined],
            ["<not an object>", undefined],
          ],
          "a malformed ProtocolError is dropped, never answered",
        )
        const answers = fromAgent.filter((m) => m._tag === "ProtocolError")
        assert.deepStrictEqual(
          answers.map((m) => [m.tag, m.path, m.of]),
          [
            ["TaskOffer", "taskId", 1],
            ["Bogus", undefined, 2],
            ["<not an object>", undefined, undefined],
          ],
        )
        assert.isFalse(
          fromAgent.some((m) => m._tag === "Ack"),
          "a rejected message is not acknowledged",
        )
        yield* pair.site.send({ ...offer, id: 10, taskId: "t-2" })
        const task = yield* agent.getTask("1 second")
        assert.deepStrictEqual([task.taskId, [...task.data]], ["t-2", [1, 2]])
      }),
  )

  it.effect(
    "a result sent to the worker is rejected as out of protocol; the site's exchanger refuses task offers",
    () =>
      Effect.gen(function* () {
        const pair = yield* TaskPipe.makeMemoryPair
        const agent = yield* TaskAgent.make(pair.worker)
        const exchanger = yield* TaskExchanger.make(pair.site)
        const agentEvents = yield* record(agent.subscribe)
        const siteEvents = yield* record(exchanger.subscribe)
        yield* settle
        yield* pair.site.send({ _tag: "TaskResult", id: 99, taskId: "t", outcome: "ok", totalBytes: 0, data: bytes() })
        yield* pair.worker.send({ ...offer, id: 99 })
        yield* settle
        assert.deepStrictEqual(
          ofTag(agentEvents, "MessageRejected").map((e) => e.tag),
          ["TaskResult"],
        )
        assert.deepStrictEqual(
          ofTag(siteEvents, "MessageRejected").map((e) => [e.tag, e.path]),
          [["TaskOffer", "_tag"]],
        )
        assert.deepStrictEqual(
          ofTag(siteEvents, "PeerRejectedMessage").map((e) => e.tag),
          ["TaskResult"],
          "each end hears about the other's rejection",
        )
      }),
  )

  it.effect("a result chunk at the wrong offset is rejected and the transfer then goes idle", () =>
    Effect.gen(function* () {
      const pair = yield* TaskPipe.makeMemoryPair
      const exchanger = yield* TaskExchanger.make(pair.site, { resultIdleTimeout: "10 seconds" })
      const events = yield* record(exchanger.subscribe)
      // A hand-written worker: acks the offer, announces 6 bytes, sends 2, then a chunk at offset 4.
      const fromSite = yield* collectInbound(pair.worker)
      yield* pair.worker.send({ _tag: "Heartbeat", id: 1 })
      const run = yield* Effect.forkChild(exchanger.run({ name: "train", data: bytes(1), taskId: "t" }))
      yield* settle
      const offerId = fromSite.find((m) => m._tag === "TaskOffer")!.id as number
      yield* pair.worker.send({ _tag: "Ack", id: 2, of: offerId })
      yield* pair.worker.send({
        _tag: "TaskResult",
        id: 3,
        taskId: "t",
        outcome: "ok",
        totalBytes: 6,
        data: bytes(1, 2),
      })
      yield* pair.worker.send({ _tag: "ResultChunk", id: 4, taskId: "t", offset: 4, data: bytes(5, 6) })
      yield* settle
      assert.deepStrictEqual(
        ofTag(events, "MessageRejected").map((e) => [e.tag, e.path]),
        [["ResultChunk", "offset"]],
      )
      yield* TestClock.adjust(9_999)
      assert.strictEqual(run.pollUnsafe(), undefined)
      yield* TestClock.adjust(1)
      const error = failureOf(yield* Fiber.await(run))
      assert.strictEqual(error._tag, "TransferIdle")
      if (error._tag === "TransferIdle") assert.deepStrictEqual([error.bytes, error.idleMs], [2, 10_000])
    }),
  )
})
