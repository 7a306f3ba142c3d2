import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Scope } from "effect"
import * as UpdateSpill from "../src/UpdateSpill.ts"
import { filesUnder } from "./support/SpillSpy.ts"

// A store under a fresh directory of the test's own, removed with the test's Scope.
const store = Effect.map(
  Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "fedguard-spill-unit-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
  ),
  (parent) => ({ parent, spills: UpdateSpill.make({ directory: parent }) }),
)

const bytes = (...values: Array<number>) => Uint8Array.from(values)

describe("UpdateSpill", () => {
  it.effect(
    "creates a round's directory under the parent and removes it, spills and all, when the round's Scope closes",
    () =>
      Effect.gen(function* () {
        const { parent, spills } = yield* store
        const scope = yield* Scope.make()
        const dir = yield* spills.directory(4).pipe(Scope.provide(scope))
        assert.match(path.basename(dir), /^fedguard-round-4-/)
        assert.strictEqual(path.dirname(dir), parent)
        const writer = yield* spills.create(dir).pipe(Scope.provide(scope))
        yield* writer.append(bytes(1, 2, 3))
        assert.strictEqual(filesUnder(parent).length, 2)
        yield* Scope.close(scope, Exit.void)
        assert.deepStrictEqual(filesUnder(parent), [])
      }).pipe(Effect.scoped),
  )

  it.effect("removes the round's directory when the round fails or is interrupted, not only when it succeeds", () =>
    Effect.gen(function* () {
      const { parent, spills } = yield* store
      const failing = Effect.gen(function* () {
        const dir = yield* spills.directory(1)
        yield* Effect.scoped(Effect.flatMap(spills.create(dir), (w) => w.append(bytes(1))))
        return yield* Effect.fail("round failed")
      }).pipe(Effect.scoped)
      assert.deepStrictEqual(yield* Effect.exit(failing), Exit.fail("round failed"))
      assert.deepStrictEqual(filesUnder(parent), [])

      const blocked = yield* Effect.forkChild(
        Effect.gen(function* () {
          const dir = yield* spills.directory(2)
          yield* Effect.scoped(Effect.flatMap(spills.create(dir), (w) => w.append(bytes(1))))
          return yield* Effect.never
        }).pipe(Effect.scoped),
      )
      for (let i = 0; i < 100 && filesUnder(parent).length < 2; i++) yield* Effect.yieldNow
      assert.strictEqual(filesUnder(parent).length, 2)
      yield* Fiber.interrupt(blocked)
      assert.deepStrictEqual(filesUnder(parent), [])
    }).pipe(Effect.scoped),
  )

  it.effect("reads back exactly the bytes appended, at any position; a read past the end fails naming the file", () =>
    Effect.gen(function* () {
      const { spills } = yield* store
      const dir = yield* spills.directory(1)
      const writer = yield* spills.create(dir)
      yield* writer.append(bytes(1, 2, 3))
      yield* writer.append(bytes())
      yield* writer.append(bytes(4, 5, 6, 7, 8))
      const reader = yield* spills.open(writer.spill)
      const into = new Uint8Array(3)
      yield* reader.read(2, into)
      assert.deepStrictEqual(Array.from(into), [3, 4, 5])
      yield* reader.read(5, into)
      assert.deepStrictEqual(Array.from(into), [6, 7, 8])
      const error = yield* Effect.flip(reader.read(6, into))
      assert.strictEqual(error._tag, "UpdateSpillError")
      assert.strictEqual(error.operation, "read")
      assert.strictEqual(error.path, writer.spill.path)
    }).pipe(Effect.scoped),
  )

  it.effect("discard deletes the spill at once and only once; nothing can be appended after it", () =>
    Effect.gen(function* () {
      const { parent, spills } = yield* store
      const dir = yield* spills.directory(1)
      const writer = yield* spills.create(dir)
      yield* writer.append(bytes(1, 2))
      yield* writer.discard
      assert.deepStrictEqual(filesUnder(parent), [path.basename(dir)])
      yield* writer.discard
      const error = yield* Effect.flip(writer.append(bytes(3)))
      assert.strictEqual(error.operation, "write")
      assert.isFalse(fs.existsSync(writer.spill.path))
    }).pipe(Effect.scoped),
  )

  it.effect("remove deletes a spill now, and a spill already gone is not an error", () =>
    Effect.gen(function* () {
      const { spills } = yield* store
      const dir = yield* spills.directory(1)
      const writer = yield* Effect.scoped(spills.create(dir))
      assert.isTrue(fs.existsSync(writer.spill.path))
      yield* spills.remove(writer.spill)
      assert.isFalse(fs.existsSync(writer.spill.path))
      yield* spills.remove(writer.spill)
    }).pipe(Effect.scoped),
  )

  it.effect(
    "fails with UpdateSpillError, not a defect, when a spill cannot be created (its round's directory is gone)",
    () =>
      Effect.gen(function* () {
        const { spills } = yield* store
        const dir = yield* Effect.scoped(spills.directory(1))
        const error = yield* Effect.flip(Effect.scoped(spills.create(dir)))
        assert.strictEqual(error.operation, "create")
        assert.match(error.message, /ENOENT/)
      }).pipe(Effect.scoped),
  )
})

describe("UpdateSpill stale directories", () => {
  it.effect(
    "before its first round, removes the round directories of server processes that no longer run, and no other",
    () =>
      Effect.gen(function* () {
        const { parent, spills } = yield* store
        // A pid that surely ran and ended: a child process that has exited.
        const dead = spawnSync(process.execPath, ["-e", "0"]).pid!
        const stale = path.join(parent, `fedguard-round-3-p${dead}-abc123`)
        const live = path.join(parent, `fedguard-round-3-p${process.ppid}-def456`)
        const foreign = path.join(parent, "fedguard-round-3-xyz789")
        for (const dir of [stale, live, foreign]) {
          fs.mkdirSync(dir)
          fs.writeFileSync(path.join(dir, "1.f32le"), new Uint8Array(8))
        }
        const dir = yield* spills.directory(1)
        assert.isFalse(fs.existsSync(stale), "the dead server's directory is removed")
        assert.isTrue(fs.existsSync(live), "a live process's directory is left alone")
        assert.isTrue(fs.existsSync(foreign), "a directory without a pid is left alone")
        assert.match(path.basename(dir), new RegExp(`^fedguard-round-1-p${process.pid}-`))
        // Only once per store: a stale directory appearing later waits for the next server.
        const later = path.join(parent, `fedguard-round-9-p${dead}-ghi012`)
        fs.mkdirSync(later)
        yield* spills.directory(2)
        assert.isTrue(fs.existsSync(later))
      }),
  )
})
