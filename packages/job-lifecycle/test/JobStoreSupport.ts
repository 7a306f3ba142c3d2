import { createHash } from "node:crypto"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { Effect } from "effect"

/** A temporary directory, removed when the test's Scope closes. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "fedguard-jobstore-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true })),
)

/** A model of `floats` float32 values, each byte derived from `seed`. */
export const model = (floats: number, seed: number): Uint8Array =>
  new Uint8Array(floats * 4).map((_, i) => (i * 31 + seed * 7) & 0xff)

export const sha256Hex = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex")

export const fileBytes = (path: string): Uint8Array => new Uint8Array(readFileSync(path))

/** Runs `body` on a second, raw connection to the file (what another process would see). */
export const withRaw = <A>(path: string, body: (db: DatabaseSync) => A): A => {
  const db = new DatabaseSync(path)
  try {
    return body(db)
  } finally {
    db.close()
  }
}

export const count = (db: DatabaseSync, sql: string, ...params: Array<string | number>): number =>
  (db.prepare(sql).get(...params) as { n: number }).n
