/**
 * The store's SQL: the row shapes it reads and every statement, prepared once
 * per connection.
 */
import type { DatabaseSync } from "node:sqlite"

export interface JobRow {
  readonly id: string
  readonly name: string
  readonly spec: string
  readonly state: string
  readonly created_at: number
  readonly updated_at: number
  readonly rounds_done: number
  readonly latest_round: number | null
}

export interface CheckpointRow {
  readonly round: number
  readonly record: string
  readonly committed_at: number
  readonly model: Uint8Array
  readonly sha256: string
}

const JOB_COLUMNS = `j.id, j.name, j.spec, j.state, j.created_at, j.updated_at,
  (SELECT count(*) FROM rounds r WHERE r.job_id = j.id) AS rounds_done,
  (SELECT max(round) FROM rounds r WHERE r.job_id = j.id) AS latest_round`

export const prepareStatements = (db: DatabaseSync) => ({
  jobExists: db.prepare("SELECT 1 AS found FROM jobs WHERE id = ?"),
  jobState: db.prepare("SELECT state FROM jobs WHERE id = ?"),
  job: db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs j WHERE j.id = ?`),
  jobs: db.prepare(`SELECT ${JOB_COLUMNS} FROM jobs j ORDER BY j.created_at, j.id`),
  insertJob: db.prepare("INSERT INTO jobs (id, name, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
  setState: db.prepare("UPDATE jobs SET state = ?, updated_at = ? WHERE id = ?"),
  touchJob: db.prepare("UPDATE jobs SET updated_at = ? WHERE id = ?"),
  insertTransition: db.prepare(
    `INSERT INTO job_transitions (job_id, seq, from_state, to_state, reason, at)
     VALUES (?1, (SELECT coalesce(max(seq), 0) + 1 FROM job_transitions WHERE job_id = ?1), ?2, ?3, ?4, ?5)`,
  ),
  history: db.prepare("SELECT from_state, to_state, reason, at FROM job_transitions WHERE job_id = ? ORDER BY seq"),
  latestRound: db.prepare("SELECT max(round) AS round FROM rounds WHERE job_id = ?"),
  insertRound: db.prepare("INSERT INTO rounds (job_id, round, record, committed_at) VALUES (?, ?, ?, ?)"),
  insertCheckpoint: db.prepare("INSERT INTO checkpoints (job_id, round, model, sha256) VALUES (?, ?, ?, ?)"),
  insertCheckpointPart: db.prepare("INSERT INTO checkpoint_parts (job_id, round, part, bytes) VALUES (?, ?, ?, ?)"),
  checkpointParts: db.prepare("SELECT bytes FROM checkpoint_parts WHERE job_id = ? AND round = ? ORDER BY part"),
  pruneCheckpoints: db.prepare(
    `DELETE FROM checkpoints WHERE job_id = ?1 AND round NOT IN
       (SELECT round FROM checkpoints WHERE job_id = ?1 ORDER BY round DESC LIMIT ?2)`,
  ),
  latestCheckpoint: db.prepare(
    `SELECT r.round, r.record, r.committed_at, c.model, c.sha256
     FROM rounds r JOIN checkpoints c ON c.job_id = r.job_id AND c.round = r.round
     WHERE r.job_id = ? ORDER BY r.round DESC LIMIT 1`,
  ),
  checkpoint: db.prepare(
    `SELECT r.round, r.record, r.committed_at, c.model, c.sha256
     FROM rounds r JOIN checkpoints c ON c.job_id = r.job_id AND c.round = r.round
     WHERE r.job_id = ? AND r.round = ?`,
  ),
  rounds: db.prepare("SELECT round, record, committed_at FROM rounds WHERE job_id = ? ORDER BY round"),
  upsertClient: db.prepare(
    `INSERT INTO clients (job_id, client_id, record, updated_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (job_id, client_id) DO UPDATE SET record = excluded.record, updated_at = excluded.updated_at`,
  ),
  clients: db.prepare("SELECT client_id, record, updated_at FROM clients WHERE job_id = ? ORDER BY client_id"),
})
