/**
 * The state file's schema, as an ordered list of migrations. Version `n` of
 * the file is the state after the first `n` migrations; the version lives in
 * SQLite's `user_version` header field, written in the same transaction as
 * the migrations, so a file is never half-migrated.
 *
 * Append only: a released migration is never edited or reordered, because
 * files in the field already carry its effects.
 */

/**
 * The `application_id` header field of every fedguard state file: "FEDG" in
 * ASCII. A SQLite file with another non-zero id (or with tables but no id) is
 * another application's database and is refused, never migrated.
 */
export const APPLICATION_ID = 0x46454447

export interface Migration {
  readonly version: number
  readonly name: string
  readonly sql: string
}

export const migrations: ReadonlyArray<Migration> = [
  {
    version: 1,
    name: "jobs, transitions, rounds, checkpoints, clients",
    // Times are epoch milliseconds of the store's Clock; records and specs
    // are JSON text. The checkpoint's foreign key to its round makes a model
    // without its round record impossible, whatever a caller does.
    sql: `
      CREATE TABLE jobs (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        spec TEXT NOT NULL,
        state TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;
      CREATE TABLE job_transitions (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (job_id, seq)
      ) STRICT;
      CREATE TABLE rounds (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        round INTEGER NOT NULL,
        record TEXT NOT NULL,
        committed_at INTEGER NOT NULL,
        PRIMARY KEY (job_id, round)
      ) STRICT;
      CREATE TABLE checkpoints (
        job_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        model BLOB NOT NULL,
        sha256 TEXT NOT NULL,
        PRIMARY KEY (job_id, round),
        FOREIGN KEY (job_id, round) REFERENCES rounds (job_id, round) ON DELETE CASCADE
      ) STRICT;
      CREATE TABLE clients (
        job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
        client_id TEXT NOT NULL,
        record TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (job_id, client_id)
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: "checkpoints larger than one blob",
    // SQLite refuses a blob of 1,000,000,000 bytes or more ("string or blob
    // too big"), so a model of a quarter of a billion float32 parameters
    // could not be checkpointed. A checkpoint's first part stays in
    // `checkpoints.model` (so files of version 1 read unchanged); the rest
    // are numbered parts here, deleted with their checkpoint.
    sql: `
      CREATE TABLE checkpoint_parts (
        job_id TEXT NOT NULL,
        round INTEGER NOT NULL,
        part INTEGER NOT NULL,
        bytes BLOB NOT NULL,
        PRIMARY KEY (job_id, round, part),
        FOREIGN KEY (job_id, round) REFERENCES checkpoints (job_id, round) ON DELETE CASCADE
      ) STRICT;
    `,
  },
]

/** The newest schema version this build knows. */
export const latestVersion = migrations.length
