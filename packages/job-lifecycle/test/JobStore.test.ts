import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { DatabaseSync } from "node:sqlite"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit, Option } from "effect"
import { migrations } from "../src/internal/sqliteSchema.ts"
import * as JobStore from "../src/JobStore.ts"
import { count, fileBytes, model, sha256Hex, tempDir, withRaw } from "./JobStoreSupport.ts"

const FEDGUARD_APPLICATION_ID = 0x46454447
const spec = { name: "mnist-fedavg", rounds: 10 }

const memory = JobStore.makeSqlite({ path: ":memory:" })

const failureOf = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(Exit.isFailure(exit), "expected a failure")
  const error = Exit.findErrorOption(exit as Exit.Exit<never, E>)
  assert.isTrue(Option.isSome(error), "expected a typed failure, not a defect")
  return (error as Option.Some<E>).value
}

describe("JobStore jobs", () => {
  it.effect("stores a job with its spec, initial state and first history entry", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      const job = yield* store.job(jobId)
      assert.strictEqual(job.name, "mnist-fedavg")
      assert.deepStrictEqual(job.spec, spec)
      assert.strictEqual(job.state, "submitted")
      assert.strictEqual(job.roundsDone, 0)
      assert.strictEqual(job.latestRound, undefined)
      assert.deepStrictEqual(yield* store.history(jobId), [
        { from: undefined, to: "submitted", reason: "created", at: 0 },
      ])
      const duplicate = yield* Effect.exit(store.createJob(spec, { jobId: "job-1" }))
      assert.strictEqual(failureOf(duplicate)._tag, "JobAlreadyExists")
    }),
  )

  it.effect("gives a job without an id a random job- id, distinct per job", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const a = yield* store.createJob(spec)
      const b = yield* store.createJob(spec)
      assert.match(a, /^job-[0-9a-f]{16}$/)
      assert.notStrictEqual(a, b)
      assert.strictEqual((yield* store.jobs).length, 2)
    }),
  )

  it.effect("records a transition from the current state, and refuses one from another state", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.recordTransition(jobId, "submitted", "deploying", "quorum of 3 reached")
      const conflict = failureOf(yield* Effect.exit(store.recordTransition(jobId, "submitted", "failed", "late")))
      assert.strictEqual(conflict._tag, "TransitionConflict")
      assert.include(conflict.message, "is deploying, not submitted")
      assert.strictEqual((yield* store.job(jobId)).state, "deploying")
      assert.deepStrictEqual(
        (yield* store.history(jobId)).map((t) => [t.from, t.to, t.reason]),
        [
          [undefined, "submitted", "created"],
          ["submitted", "deploying", "quorum of 3 reached"],
        ],
      )
    }),
  )

  it.effect("fails with JobNotFound for an unknown job, on every per-job operation", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const operations = [
        store.job("nope"),
        store.history("nope"),
        store.recordTransition("nope", "a", "b", "r"),
        store.commitRound("nope", { round: 1, record: {}, model: model(4, 1) }),
        store.latest("nope"),
        store.checkpoint("nope", 1),
        store.rounds("nope"),
        store.upsertClient("nope", "c1", {}),
        store.clients("nope"),
      ] as const
      for (const operation of operations) {
        const error = failureOf(yield* Effect.exit(operation as Effect.Effect<unknown, { readonly _tag: string }>))
        assert.strictEqual(error._tag, "JobNotFound")
      }
    }),
  )

  it.effect("keeps one record per client, the last upserted", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.upsertClient(jobId, "site-b", { rounds: 1 })
      yield* store.upsertClient(jobId, "site-a", { rounds: 1 })
      yield* store.upsertClient(jobId, "site-b", { rounds: 2, excluded: false })
      assert.deepStrictEqual(
        (yield* store.clients(jobId)).map((c) => [c.clientId, c.record]),
        [
          ["site-a", { rounds: 1 }],
          ["site-b", { rounds: 2, excluded: false }],
        ],
      )
    }),
  )
})

describe("JobStore rounds", () => {
  it.effect("commits a round with its model and returns it as the latest, with its sha256", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      assert.isTrue(Option.isNone(yield* store.latest(jobId)))
      const bytes = model(1000, 1)
      yield* store.commitRound(jobId, { round: 1, record: { loss: 0.5, clients: 3 }, model: bytes })
      const latest = Option.getOrThrow(yield* store.latest(jobId))
      assert.strictEqual(latest.round, 1)
      assert.deepStrictEqual(latest.record, { loss: 0.5, clients: 3 })
      assert.deepStrictEqual(latest.model, bytes)
      assert.strictEqual(latest.sha256, sha256Hex(bytes))
      const job = yield* store.job(jobId)
      assert.strictEqual(job.roundsDone, 1)
      assert.strictEqual(job.latestRound, 1)
    }),
  )

  it.effect("refuses to commit the same round twice and changes nothing", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.commitRound(jobId, { round: 1, record: { n: 1 }, model: model(8, 1) })
      yield* store.commitRound(jobId, { round: 2, record: { n: 2 }, model: model(8, 2) })
      for (const round of [2, 1]) {
        const error = failureOf(
          yield* Effect.exit(store.commitRound(jobId, { round, record: { n: 99 }, model: model(8, 99) })),
        ) as JobStore.RoundAlreadyCommitted
        assert.strictEqual(error._tag, "RoundAlreadyCommitted")
        assert.deepStrictEqual([error.round, error.latestRound], [round, 2])
      }
      const latest = Option.getOrThrow(yield* store.latest(jobId))
      assert.deepStrictEqual([latest.round, latest.record, latest.model], [2, { n: 2 }, model(8, 2)])
      assert.deepStrictEqual(
        (yield* store.rounds(jobId)).map((r) => r.record),
        [{ n: 1 }, { n: 2 }],
      )
    }),
  )

  it.effect("refuses a round for a job that has finished (an operator aborted it mid-round) and changes nothing", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1", state: "running" })
      yield* store.commitRound(jobId, { round: 1, record: { n: 1 }, model: model(8, 1) })
      yield* store.recordTransition(jobId, "running", "aborted", "operator")
      const error = failureOf(
        yield* Effect.exit(store.commitRound(jobId, { round: 2, record: { n: 2 }, model: model(8, 2) })),
      ) as JobStore.JobFinished
      assert.deepStrictEqual([error._tag, error.state], ["JobFinished", "aborted"])
      assert.strictEqual(Option.getOrThrow(yield* store.latest(jobId)).round, 1)
      assert.strictEqual((yield* store.job(jobId)).roundsDone, 1)
    }),
  )

  it.effect("keeps the models of the last 2 rounds by default and every round record", () =>
    Effect.gen(function* () {
      const store = yield* memory
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      for (let round = 1; round <= 5; round++) {
        yield* store.commitRound(jobId, { round, record: { round }, model: model(16, round) })
      }
      for (const round of [1, 2, 3]) assert.isTrue(Option.isNone(yield* store.checkpoint(jobId, round)))
      for (const round of [4, 5]) {
        assert.deepStrictEqual(Option.getOrThrow(yield* store.checkpoint(jobId, round)).model, model(16, round))
      }
      assert.deepStrictEqual(
        (yield* store.rounds(jobId)).map((r) => r.round),
        [1, 2, 3, 4, 5],
      )
    }),
  )

  it.effect("keeps K checkpoints per job when configured, not pruning other jobs", () =>
    Effect.gen(function* () {
      const store = yield* JobStore.makeSqlite({ path: ":memory:", keepCheckpoints: 3 })
      const a = yield* store.createJob(spec, { jobId: "a" })
      const b = yield* store.createJob(spec, { jobId: "b" })
      yield* store.commitRound(b, { round: 1, record: {}, model: model(4, 1) })
      for (let round = 1; round <= 6; round++)
        yield* store.commitRound(a, { round, record: {}, model: model(4, round) })
      const kept = []
      for (let round = 1; round <= 6; round++) {
        if (Option.isSome(yield* store.checkpoint(a, round))) kept.push(round)
      }
      assert.deepStrictEqual(kept, [4, 5, 6])
      assert.isTrue(Option.isSome(yield* store.checkpoint(b, 1)))
    }),
  )

  it.effect("stores a model larger than one part in parts, reads it back whole and prunes its parts", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "parts.db")
      const store = yield* JobStore.makeSqlite({ path, keepCheckpoints: 1, checkpointPartBytes: 16 })
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      // 100 bytes in parts of 16: the first in the checkpoint row, six more (the last of 4 bytes).
      yield* store.commitRound(jobId, { round: 1, record: {}, model: model(25, 1) })
      const partsOf = (round: number) =>
        withRaw(path, (db) =>
          count(db, "SELECT count(*) AS n FROM checkpoint_parts WHERE job_id = ? AND round = ?", jobId, round),
        )
      assert.strictEqual(partsOf(1), 6)
      const first = Option.getOrThrow(yield* store.latest(jobId))
      assert.deepStrictEqual(first.model, model(25, 1))
      assert.strictEqual(first.sha256, sha256Hex(model(25, 1)))
      // A model that fits in one part has none; the pruned round's parts are gone with it.
      yield* store.commitRound(jobId, { round: 2, record: {}, model: model(4, 2) })
      assert.strictEqual(partsOf(1), 0)
      assert.strictEqual(partsOf(2), 0)
      assert.deepStrictEqual(Option.getOrThrow(yield* store.latest(jobId)).model, model(4, 2))
    }),
  )

  it.effect("refuses a checkpoint whose later part was damaged, naming the round", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "parts.db")
      const store = yield* JobStore.makeSqlite({ path, checkpointPartBytes: 16 })
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.commitRound(jobId, { round: 1, record: {}, model: model(25, 1) })
      withRaw(path, (db) =>
        db.prepare("UPDATE checkpoint_parts SET bytes = ? WHERE part = 6").run(new Uint8Array([1, 2, 3, 4])),
      )
      const error = failureOf(yield* Effect.exit(store.latest(jobId)))
      assert.strictEqual(error._tag, "CheckpointCorrupt")
      assert.include(error.message, "round 1")
    }),
  )

  it.effect("reads a checkpoint written by a version-1 file (one blob) after migrating it", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "v1.db")
      withRaw(path, (db) => {
        db.exec(migrations[0]!.sql)
        db.exec(`PRAGMA user_version = 1; PRAGMA application_id = ${FEDGUARD_APPLICATION_ID}`)
        db.prepare("INSERT INTO jobs VALUES ('job-1', 'old', '{}', 'running', 0, 0)").run()
        db.prepare("INSERT INTO rounds VALUES ('job-1', 1, '{}', 0)").run()
        db.prepare("INSERT INTO checkpoints VALUES ('job-1', 1, ?, ?)").run(model(25, 1), sha256Hex(model(25, 1)))
      })
      const store = yield* JobStore.makeSqlite({ path, checkpointPartBytes: 16 })
      assert.deepStrictEqual(Option.getOrThrow(yield* store.latest("job-1")).model, model(25, 1))
      withRaw(path, (db) => assert.strictEqual(Object.values(db.prepare("PRAGMA user_version").get()!)[0], 2))
    }),
  )

  it.effect("stores the sha256 of the exact model bytes, and refuses a damaged model on read", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "state.db")
      const bytes = model(31 * 256, 3)
      const store = yield* JobStore.makeSqlite({ path })
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.commitRound(jobId, { round: 1, record: {}, model: bytes })
      const stored = withRaw(
        path,
        (db) => db.prepare("SELECT model, sha256 FROM checkpoints").get() as { model: Uint8Array; sha256: string },
      )
      assert.strictEqual(stored.sha256, sha256Hex(bytes))
      assert.strictEqual(sha256Hex(stored.model), stored.sha256)

      withRaw(path, (db) => db.prepare("UPDATE checkpoints SET model = ? WHERE round = 1").run(model(31 * 256, 4)))
      const error = failureOf(yield* Effect.exit(store.latest(jobId)))
      assert.strictEqual(error._tag, "CheckpointCorrupt")
    }),
  )
})

describe("JobStore commit atomicity", () => {
  // A trigger added by a second connection makes one statement of the commit
  // transaction fail after the earlier ones have run in it.
  const commitFailingAt = (trigger: string) =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "state.db")
      const store = yield* JobStore.makeSqlite({ path })
      const jobId = yield* store.createJob(spec, { jobId: "job-1" })
      yield* store.commitRound(jobId, { round: 1, record: { n: 1 }, model: model(64, 1) })
      yield* store.commitRound(jobId, { round: 2, record: { n: 2 }, model: model(64, 2) })
      withRaw(path, (db) => db.exec(trigger))
      const error = failureOf(
        yield* Effect.exit(store.commitRound(jobId, { round: 3, record: { n: 3 }, model: model(64, 3) })),
      )
      assert.strictEqual(error._tag, "StoreFailure")
      assert.strictEqual(Option.getOrThrow(yield* store.latest(jobId)).round, 2)
      assert.deepStrictEqual(
        (yield* store.rounds(jobId)).map((r) => r.round),
        [1, 2],
      )
      withRaw(path, (db) => {
        assert.strictEqual(count(db, "SELECT count(*) AS n FROM rounds WHERE round = 3"), 0)
        assert.strictEqual(count(db, "SELECT count(*) AS n FROM checkpoints WHERE round = 3"), 0)
        // the pruning did not happen either: both earlier models are still there
        assert.strictEqual(count(db, "SELECT count(*) AS n FROM checkpoints"), 2)
      })
      // the store stays usable: once the fault is gone, round 3 commits
      withRaw(path, (db) => db.exec("DROP TRIGGER fault"))
      yield* store.commitRound(jobId, { round: 3, record: { n: 3 }, model: model(64, 3) })
      assert.strictEqual(Option.getOrThrow(yield* store.latest(jobId)).round, 3)
    })

  it.effect("leaves neither the record nor the model when writing the model fails after the record", () =>
    commitFailingAt(
      "CREATE TRIGGER fault BEFORE INSERT ON checkpoints WHEN NEW.round = 3 BEGIN SELECT RAISE(ABORT, 'injected'); END",
    ),
  )

  it.effect("leaves neither the record nor the model when pruning old checkpoints fails", () =>
    commitFailingAt("CREATE TRIGGER fault BEFORE DELETE ON checkpoints BEGIN SELECT RAISE(ABORT, 'injected'); END"),
  )
})

describe("JobStore state file", () => {
  it.effect("creates and migrates a new file, and an empty one, in WAL mode with the fedguard id", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      for (const path of [join(dir, "new.db"), join(dir, "empty.db")]) {
        if (path.endsWith("empty.db")) writeFileSync(path, "")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const store = yield* JobStore.makeSqlite({ path })
            yield* store.createJob(spec, { jobId: "job-1" })
          }),
        )
        withRaw(path, (db) => {
          const pragma = (name: string) => Object.values(db.prepare(`PRAGMA ${name}`).get()!)[0]
          assert.strictEqual(pragma("user_version"), 2)
          assert.strictEqual(pragma("application_id"), FEDGUARD_APPLICATION_ID)
          assert.strictEqual(pragma("journal_mode"), "wal")
          assert.strictEqual(count(db, "SELECT count(*) AS n FROM jobs"), 1)
        })
      }
    }),
  )

  it.effect("reopens a file with its jobs and rounds, without migrating again", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "state.db")
      yield* Effect.scoped(
        Effect.gen(function* () {
          const store = yield* JobStore.makeSqlite({ path })
          yield* store.createJob(spec, { jobId: "job-1" })
          yield* store.commitRound("job-1", { round: 1, record: { n: 1 }, model: model(8, 1) })
        }),
      )
      const store = yield* JobStore.makeSqlite({ path })
      const jobs = yield* store.jobs
      assert.deepStrictEqual(
        jobs.map((j) => [j.id, j.roundsDone]),
        [["job-1", 1]],
      )
      assert.deepStrictEqual(Option.getOrThrow(yield* store.latest("job-1")).model, model(8, 1))
    }),
  )

  it.effect("refuses a file of a newer schema version and leaves it untouched", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const path = join(dir, "state.db")
      yield* Effect.scoped(Effect.asVoid(JobStore.makeSqlite({ path })))
      withRaw(path, (db) => db.exec("PRAGMA user_version = 99; PRAGMA wal_checkpoint(TRUNCATE)"))
      const before = fileBytes(path)
      const error = failureOf(yield* Effect.exit(JobStore.makeSqlite({ path })))
      assert.strictEqual(error._tag, "StateFileTooNew")
      assert.include(error.message, path)
      assert.deepStrictEqual(fileBytes(path), before)
    }),
  )

  const foreignFiles: ReadonlyArray<readonly [string, (path: string) => void, string]> = [
    ["a text file", (path) => writeFileSync(path, "round,loss\n1,0.5\n".repeat(20)), "no SQLite header"],
    ["random bytes", (path) => writeFileSync(path, model(2048, 9)), "no SQLite header"],
    ["a short file", (path) => writeFileSync(path, "fedguard"), "shorter than a SQLite header"],
    [
      "another application's SQLite database",
      (path) => {
        const db = new DatabaseSync(path)
        db.exec("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users (name) VALUES ('ada')")
        db.close()
      },
      "another application",
    ],
    [
      "a SQLite database with another application id",
      (path) => {
        const db = new DatabaseSync(path)
        db.exec("PRAGMA application_id = 1234; PRAGMA user_version = 1")
        db.close()
      },
      "application_id 0x4d2",
    ],
  ]

  for (const [what, write, reason] of foreignFiles) {
    it.effect(`refuses ${what} with NotAStateFile naming the path, and leaves it byte-identical`, () =>
      Effect.gen(function* () {
        const dir = yield* tempDir
        const path = join(dir, "state.db")
        write(path)
        const before = fileBytes(path)
        const error = failureOf(yield* Effect.exit(JobStore.makeSqlite({ path })))
        assert.strictEqual(error._tag, "NotAStateFile")
        assert.strictEqual((error as JobStore.NotAStateFile).path, path)
        assert.include(error.message, path)
        assert.include(error.message, reason)
        assert.deepStrictEqual(fileBytes(path), before)
      }),
    )
  }
})
