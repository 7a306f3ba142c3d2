/**
 * The supervisor state file's schema, as an ordered list of migrations
 * (version n = the first n applied; the version is SQLite's `user_version`,
 * written in the migrating transaction). Append only.
 */

/**
 * `application_id` of a supervisor state file: "FGSV" in ASCII. Another
 * application's SQLite file (including a job store, "FEDG") is refused.
 */
export const APPLICATION_ID = 0x46475356

export interface Migration {
  readonly version: number
  readonly sql: string
}

export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    // A task has ONE worker column: whatever happens, a task is assigned to at
    // most one worker. `completed_by` is set once and never cleared.
    sql: `
      CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        spec TEXT NOT NULL,
        pid INTEGER,
        start_ticks INTEGER,
        started_at INTEGER,
        restarts INTEGER NOT NULL DEFAULT 0,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE tasks (
        id TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        worker_id TEXT,
        completed_by TEXT,
        added_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        CHECK (completed_by IS NULL OR worker_id IS NULL)
      ) STRICT;
      CREATE INDEX tasks_by_worker ON tasks (worker_id) WHERE worker_id IS NOT NULL;
    `,
  },
]

export const latestVersion = migrations.length
