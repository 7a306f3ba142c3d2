/**
 * fed-server's `UpdateSpill` in memory: the same contract (a directory per
 * round removed with its Scope, append-only spills, readers that fail when a
 * spill ends early), without touching the disk, so the simulation does no
 * real I/O and its timing is a matter of fibers and the TestClock only.
 *
 * @since 0.1.0
 */
import { UpdateSpillError, type UpdateSpillService } from "@fedguard/fed-server/UpdateSpill"
import { Effect } from "effect"

interface Held {
  readonly directory: string
  readonly chunks: Array<Uint8Array>
  length: number
  joined: Uint8Array | undefined
}

const joinedOf = (held: Held): Uint8Array => {
  if (held.joined !== undefined) return held.joined
  const all = new Uint8Array(held.length)
  let offset = 0
  for (const chunk of held.chunks) {
    all.set(chunk, offset)
    offset += chunk.byteLength
  }
  held.joined = all
  return all
}

/**
 * A new in-memory spill store. `held()` says how many spills it holds now
 * (zero once every round has ended).
 *
 * @since 0.1.0
 * @category constructors
 */
export const make = (): UpdateSpillService & { readonly held: () => number } => {
  const spills = new Map<string, Held>()
  let directories = 0
  let files = 0
  return {
    held: () => spills.size,
    directory: (round) =>
      Effect.acquireRelease(
        Effect.sync(() => `mem:round-${round}-${++directories}`),
        (directory) =>
          Effect.sync(() => {
            for (const [path, held] of spills) if (held.directory === directory) spills.delete(path)
          }),
      ),
    create: (directory) =>
      Effect.sync(() => {
        const path = `${directory}/${++files}`
        const held: Held = { directory, chunks: [], length: 0, joined: undefined }
        spills.set(path, held)
        return {
          spill: { path },
          append: (bytes: Uint8Array) =>
            Effect.suspend(() => {
              if (!spills.has(path)) {
                return Effect.fail(new UpdateSpillError({ operation: "write", path, reason: "discarded" }))
              }
              held.chunks.push(bytes.slice())
              held.length += bytes.byteLength
              held.joined = undefined
              return Effect.void
            }),
          discard: Effect.sync(() => {
            spills.delete(path)
          }),
        }
      }),
    open: (spill) =>
      Effect.suspend(() => {
        const held = spills.get(spill.path)
        if (held === undefined) {
          return Effect.fail(new UpdateSpillError({ operation: "open", path: spill.path, reason: "no such spill" }))
        }
        return Effect.succeed({
          read: (position: number, into: Uint8Array) =>
            Effect.suspend(() => {
              const all = joinedOf(held)
              if (position + into.byteLength > all.byteLength) {
                return Effect.fail(
                  new UpdateSpillError({ operation: "read", path: spill.path, reason: "the spill ends early" }),
                )
              }
              into.set(all.subarray(position, position + into.byteLength))
              return Effect.void
            }),
        })
      }),
    remove: (spill) =>
      Effect.sync(() => {
        spills.delete(spill.path)
      }),
  }
}
