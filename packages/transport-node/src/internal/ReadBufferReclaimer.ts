/**
 * Frees the sockets' read buffers while they are still young.
 *
 * Node hands every socket read to JavaScript as a fresh 64 KiB `Buffer` whose
 * bytes live outside V8's heap. Its JavaScript object is a few dozen bytes, so
 * a receiver that allocates little else almost never fills the young
 * generation, no scavenge runs, and the dead buffers are freed only when V8's
 * external-memory limit (about 64 MiB of growth) forces a full mark-compact:
 * at 1 GiB/s that is a full collection every few tens of milliseconds, each
 * marking the whole heap. Measured on `bench:transport` (two processes, 256
 * MiB × 5): the receiver spent 52 % of its busy time in the collector and
 * 985 ms of CPU per GiB against the raw pipe's 694; a scavenge forced every 16
 * MiB received freed the same buffers for a fraction of the cost (receiver 418
 * ms/GiB; ratio 0.75 → 1.03), and so did a 1 MiB semi-space
 * (`--max-semi-space-size=1`), which a library cannot set for its process.
 *
 * The scavenge is V8's minor collection through the `gc` function: the
 * process's own when it runs with `--expose-gc`, otherwise one taken from a new
 * `vm` context after enabling the flag for a moment through
 * `v8.setFlagsFromString` (the approach `@fedguard/memory-cleanup` documents);
 * where neither works, nothing is forced and V8 collects as before. The byte
 * count is per process, because the heap is: eight connections receiving at
 * once scavenge once per 16 MiB between them, not eight times.
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"
import { Result } from "effect"

type Collect = (options: { readonly type: "minor"; readonly execution: "sync" }) => void

// undefined: not looked up yet; null: not available in this process.
let collect: Collect | null | undefined
let sinceLast = 0

const lookUp = (): Collect | null => {
  const own = (globalThis as { readonly gc?: unknown }).gc
  if (typeof own === "function") return own as Collect
  const taken = Result.try(() => {
    V8.setFlagsFromString("--expose-gc")
    return Vm.runInNewContext("gc") as unknown
  })
  V8.setFlagsFromString("--no-expose-gc")
  return Result.isSuccess(taken) && typeof taken.success === "function" ? (taken.success as Collect) : null
}

/**
 * Counts `bytes` just read from a socket and runs a scavenge once `everyBytes`
 * have been read since the last one (`everyBytes` of 0, negative or NaN turns it off).
 */
export const received = (bytes: number, everyBytes: number): void => {
  if (!(everyBytes > 0)) return
  sinceLast += bytes
  if (sinceLast < everyBytes) return
  sinceLast = 0
  if (collect === undefined) collect = lookUp()
  collect?.({ type: "minor", execution: "sync" })
}

/** Whether a scavenge can be forced in this process (looks the `gc` function up once). */
export const available = (): boolean => {
  if (collect === undefined) collect = lookUp()
  return collect !== null
}
