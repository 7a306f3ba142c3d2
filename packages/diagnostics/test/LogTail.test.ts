import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { NodeFileSystem } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { Effect, FileSystem, Option, PlatformError } from "effect"
import { TestClock } from "effect/testing"
import * as Diagnostics from "../src/Diagnostics.ts"
import * as LogTail from "../src/LogTail.ts"
import { freshMetrics, recordingSink, settle } from "./support.ts"

// Real files in a fresh directory: reading them is not time-based, so no clock is involved.
const tempFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "fedguard-logtail-")), "client.log")

const collect = (tail: Effect.Effect<Option.Option<unknown>, unknown>) =>
  Effect.map(tail, (result) => Option.getOrUndefined(result) as LogTail.LogTailData | undefined)

describe("LogTail", () => {
  it.effect("reports only the lines appended since the last run, and nothing when none were", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "old line 1\nold line 2\n")
      const tail = yield* LogTail.make({ path: file })
      assert.strictEqual(yield* collect(tail.collect), undefined, "existing content is not new")
      fs.appendFileSync(file, "round 1 done\nround 2 done\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["round 1 done", "round 2 done"] })
      assert.strictEqual(yield* collect(tail.collect), undefined, "nothing appended: nothing reported")
      fs.appendFileSync(file, "round 3 done\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["round 3 done"] })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("leaves a line still being written (no line feed yet) for the next run", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "")
      const tail = yield* LogTail.make({ path: file })
      yield* tail.collect
      fs.appendFileSync(file, "complete\nhalf a li")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["complete"] })
      assert.strictEqual(yield* collect(tail.collect), undefined)
      fs.appendFileSync(file, "ne\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["half a line"] })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("reads at most maxBytes and reports at most maxLines per run, the newest, counting what it skipped", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "")
      const tail = yield* LogTail.make({ path: file, maxBytes: 35, maxLines: 2 })
      yield* tail.collect
      // Ten lines of 8 bytes each ("line-00\n"): 80 bytes appended.
      fs.appendFileSync(file, Array.from({ length: 10 }, (_, i) => `line-0${i}\n`).join(""))
      // The newest 35 bytes start 5 bytes into line-05: the cut line is skipped, lines 6..9 are read,
      // and only the newest 2 are reported.
      assert.deepStrictEqual(yield* collect(tail.collect), {
        path: file,
        lines: ["line-08", "line-09"],
        skippedBytes: 48,
        skippedLines: 2,
      })
      assert.strictEqual(yield* collect(tail.collect), undefined, "the skipped bytes are not read later")
      fs.appendFileSync(file, "line-10\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["line-10"] })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("survives truncation: a file shorter than what was read is read again from its start", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "")
      const tail = yield* LogTail.make({ path: file })
      yield* tail.collect
      fs.appendFileSync(file, "a long line before truncation\n")
      yield* tail.collect
      fs.truncateSync(file, 0)
      fs.appendFileSync(file, "after\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["after"], truncated: true })
      fs.appendFileSync(file, "next\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["next"] })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("follows rotation: a new file at the path is read from its start, the old one is left", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "")
      const tail = yield* LogTail.make({ path: file })
      yield* tail.collect
      fs.appendFileSync(file, "before rotation\n")
      yield* tail.collect
      fs.renameSync(file, `${file}.1`)
      assert.strictEqual(yield* collect(tail.collect), undefined, "rotated away, not yet recreated")
      fs.writeFileSync(file, "fresh file line that is longer than the old file\n")
      fs.appendFileSync(`${file}.1`, "late write to the old file\n")
      assert.deepStrictEqual(yield* collect(tail.collect), {
        path: file,
        lines: ["fresh file line that is longer than the old file"],
      })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("detects a rotation by inode even when the new file is already longer than the old offset", () =>
    Effect.gen(function* () {
      const file = tempFile()
      fs.writeFileSync(file, "")
      const tail = yield* LogTail.make({ path: file })
      yield* tail.collect
      fs.appendFileSync(file, "x\n")
      yield* tail.collect
      fs.renameSync(file, `${file}.1`)
      fs.writeFileSync(file, "new 1\nnew 2\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["new 1", "new 2"], rotated: true })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("reports nothing while the file does not exist, then its whole content once created", () =>
    Effect.gen(function* () {
      const file = tempFile()
      const tail = yield* LogTail.make({ path: file })
      assert.strictEqual(yield* collect(tail.collect), undefined)
      fs.writeFileSync(file, "first\n")
      assert.deepStrictEqual(yield* collect(tail.collect), { path: file, lines: ["first"] })
    }).pipe(Effect.provide(NodeFileSystem.layer)),
  )

  it.effect("runs at its interval (10 s by default), not before and not between", () =>
    Effect.gen(function* () {
      let stats = 0
      // A scripted file system: the file does not exist; only the stat calls are counted.
      const scripted = FileSystem.makeNoop({
        stat: (p) =>
          Effect.suspend(() => {
            stats++
            return Effect.fail(
              PlatformError.systemError({
                _tag: "NotFound",
                module: "FileSystem",
                method: "stat",
                pathOrDescriptor: p,
              }),
            )
          }),
      })
      const tail = yield* LogTail.make({ path: "/nowhere/client.log" }).pipe(
        Effect.provideService(FileSystem.FileSystem, scripted),
      )
      const sink = recordingSink()
      const diagnostics = yield* Diagnostics.make({}, [tail]).pipe(Effect.provide(sink.layer))
      assert.isDefined(diagnostics)
      yield* settle
      assert.strictEqual(stats, 0)
      yield* TestClock.adjust(10_000 - 1)
      assert.strictEqual(stats, 0)
      yield* TestClock.adjust(1)
      assert.strictEqual(stats, 1)
      yield* TestClock.adjust(10_000 - 1)
      assert.strictEqual(stats, 1)
      yield* TestClock.adjust(1)
      assert.strictEqual(stats, 2)
      assert.deepStrictEqual(sink.batches, [], "a missing file is no data")
    }).pipe(freshMetrics),
  )
})
