/**
 * Test support: the real `UpdateSpill` in a temporary directory of the test's
 * own (removed with the test's Scope), wrapped to record what the server
 * writes, discards, reads and removes.
 */
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import { Effect } from "effect"
import * as UpdateSpill from "../../src/UpdateSpill.ts"

/** One spill the server created: its path, the bytes appended to it, whether it was discarded. */
export interface Created {
  readonly path: string
  appended: number
  discarded: boolean
}

/** Every file under `dir`, recursively, relative to it. */
export const filesUnder = (dir: string): Array<string> =>
  fs.existsSync(dir) ? fs.readdirSync(dir, { recursive: true, encoding: "utf8" }).sort() : []

/**
 * A spy over a real spill store in a fresh temporary directory (`parent`):
 * `created` spills, `reads` (path, position, length), `removed` paths, the
 * `directories` made for rounds, and the most readers open at once.
 */
export const spillSpy = Effect.gen(function* () {
  const parent = yield* Effect.acquireRelease(
    Effect.sync(() => fs.mkdtempSync(path.join(os.tmpdir(), "fedguard-spill-test-"))),
    (dir) => Effect.sync(() => fs.rmSync(dir, { recursive: true, force: true })),
  )
  const real = UpdateSpill.make({ directory: parent })
  const created: Array<Created> = []
  const reads: Array<{ readonly path: string; readonly position: number; readonly length: number }> = []
  const removed: Array<string> = []
  const directories: Array<string> = []
  const open = { now: 0, most: 0 }
  const service: UpdateSpill.UpdateSpillService = {
    directory: (round) => Effect.tap(real.directory(round), (dir) => Effect.sync(() => void directories.push(dir))),
    create: (dir) =>
      Effect.map(real.create(dir), (writer) => {
        const record: Created = { path: writer.spill.path, appended: 0, discarded: false }
        created.push(record)
        return {
          spill: writer.spill,
          append: (bytes) =>
            Effect.tap(writer.append(bytes), () =>
              Effect.sync(() => {
                record.appended += bytes.byteLength
              }),
            ),
          discard: Effect.tap(writer.discard, () =>
            Effect.sync(() => {
              record.discarded = true
            }),
          ),
        }
      }),
    open: (spill) =>
      Effect.gen(function* () {
        const reader = yield* real.open(spill)
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            open.now++
            open.most = Math.max(open.most, open.now)
          }),
          () => Effect.sync(() => void open.now--),
        )
        return {
          read: (position: number, into: Uint8Array) =>
            Effect.tap(reader.read(position, into), () =>
              Effect.sync(() => void reads.push({ path: spill.path, position, length: into.byteLength })),
            ),
        }
      }),
    remove: (spill) => Effect.tap(real.remove(spill), () => Effect.sync(() => void removed.push(spill.path))),
  }
  return { parent, service, created, reads, removed, directories, open, files: () => filesUnder(parent) }
})

/** What `spillSpy` gives a test. */
export type SpillSpy = Effect.Success<typeof spillSpy>
