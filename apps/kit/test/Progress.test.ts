import { Writable } from "node:stream"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import * as Progress from "../src/Progress.ts"

// A renderer that records what it was asked to draw.
const recording = () => {
  const log: Array<string> = []
  const renderer: Progress.Renderer = {
    open: (label, total) =>
      Effect.sync(() => {
        log.push(`open ${label} ${total}`)
        return {
          advance: (bytes) => Effect.sync(() => void log.push(`advance ${bytes}`)),
          end: Effect.sync(() => void log.push("end")),
        }
      }),
  }
  return { log, renderer }
}

const MiB = 1024 * 1024

describe("Progress.tracked", () => {
  it.effect("draws a bar for a transfer over 1 MiB, fed by the transfer's progress, and removes it at the end", () =>
    Effect.gen(function* () {
      const { log, renderer } = recording()
      const result = yield* Progress.tracked("model → c1", 2 * MiB, (advance) =>
        Effect.andThen(Effect.andThen(advance(MiB), advance(2 * MiB)), Effect.succeed("sent")),
      ).pipe(Effect.provideService(Progress.TransferProgress, renderer))
      assert.strictEqual(result, "sent")
      assert.deepStrictEqual(log, [`open model → c1 ${2 * MiB}`, `advance ${MiB}`, `advance ${2 * MiB}`, "end"])
    }),
  )

  it.effect("draws nothing for a transfer of 1 MiB or less", () =>
    Effect.gen(function* () {
      const { log, renderer } = recording()
      yield* Progress.tracked("small", MiB, (advance) => advance(MiB)).pipe(
        Effect.provideService(Progress.TransferProgress, renderer),
      )
      assert.deepStrictEqual(log, [])
    }),
  )

  it.effect("removes the bar when the transfer fails", () =>
    Effect.gen(function* () {
      const { log, renderer } = recording()
      const error = yield* Effect.flip(
        Progress.tracked("model → c2", 4 * MiB, () => Effect.fail("stalled" as const)).pipe(
          Effect.provideService(Progress.TransferProgress, renderer),
        ),
      )
      assert.strictEqual(error, "stalled")
      assert.deepStrictEqual(log, [`open model → c2 ${4 * MiB}`, "end"])
    }),
  )

  it.effect("without a renderer provided, draws nothing and runs the transfer", () =>
    Effect.gen(function* () {
      const seen: Array<number> = []
      yield* Progress.tracked("model", 8 * MiB, (advance) =>
        Effect.andThen(
          advance(8 * MiB),
          Effect.sync(() => void seen.push(1)),
        ),
      )
      assert.deepStrictEqual(seen, [1])
    }),
  )
})

// A terminal of 100 columns that keeps what was written to it.
const fakeTty = () => {
  let text = ""
  const stream = new Writable({
    write(chunk, _encoding, done) {
      text += String(chunk)
      done()
    },
  }) as unknown as NodeJS.WriteStream
  Object.assign(stream, {
    isTTY: true,
    columns: 100,
    rows: 40,
    cursorTo: () => true,
    moveCursor: () => true,
    clearLine: () => true,
    clearScreenDown: () => true,
  })
  return { stream, text: () => text }
}

describe("Progress.terminal", () => {
  it.effect("draws the bar with its label and MiB figures, and prints lines at once when no bar is drawn", () =>
    Effect.gen(function* () {
      const tty = fakeTty()
      const { renderer, print } = yield* Progress.terminal(tty.stream)
      print('{"event":"listening"}')
      assert.include(tty.text(), '{"event":"listening"}\n')
      const bar = yield* renderer.open("round 1 model → c1", 4 * MiB)
      yield* bar.advance(2 * MiB)
      yield* bar.end
      assert.include(tty.text(), "round 1 model → c1")
      assert.match(tty.text(), /of 4\.0 MiB/)
    }).pipe(Effect.scoped),
  )
})
