import type pg from 'pg';
import type { CursorValue } from './syncSql';
import { quoteIdent } from './identifiers';

/**
 * Per-pipeline sync state, kept in the target database so a chunk's rows and its cursor commit in
 * one transaction: a retried or re-run chunk finds the cursor already past it.
 */
export interface SyncState {
  pipeline: string;
  /** Order values (text) of the last committed row; null before the first chunk. */
  cursor: CursorValue[] | null;
  /** idle: no run in progress; running: an incremental run is mid-way; loading: a full refresh is loading its staging table. */
  phase: 'idle' | 'running' | 'loading';
  rowsWritten: number;
  chunks: number;
  /** Workflow id of the run that owns the state while it is not idle. */
  runId: string | null;
}

/**
 * One slice of a partitioned run: rows whose first order column lies in [lower, upper), after
 * `cursor` in order. Each partition advances its own cursor, exactly once, like a whole table did.
 */
export interface PartitionState {
  partition: number;
  /** Inclusive lower bound on the first order column; null: none (the run's start cursor applies). */
  lower: string | null;
  /** Exclusive upper bound on the first order column; null: none. */
  upper: string | null;
  cursor: CursorValue[] | null;
  done: boolean;
  rowsCopied: number;
  rowsWritten: number;
  chunks: number;
}

const stateTable = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.sync_state`;
const partitionTable = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.sync_partition`;
const bucketTable = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.sync_bucket`;

export async function ensureStateTable(c: pg.ClientBase, schema: string): Promise<void> {
  for (const sql of [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema, 'stateSchema')}`,
    `CREATE TABLE IF NOT EXISTS ${stateTable(schema)} (
       pipeline text PRIMARY KEY,
       cursor text[],
       phase text NOT NULL DEFAULT 'idle' CHECK (phase IN ('idle', 'running', 'loading')),
       rows_written bigint NOT NULL DEFAULT 0,
       chunks bigint NOT NULL DEFAULT 0,
       run_id text,
       updated_at timestamptz NOT NULL DEFAULT now())`,
    `CREATE TABLE IF NOT EXISTS ${partitionTable(schema)} (
       pipeline text NOT NULL,
       partition int NOT NULL,
       lower_bound text,
       upper_bound text,
       cursor text[],
       done boolean NOT NULL DEFAULT false,
       rows_copied bigint NOT NULL DEFAULT 0,
       rows_written bigint NOT NULL DEFAULT 0,
       chunks bigint NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (pipeline, partition))`,
    `CREATE TABLE IF NOT EXISTS ${bucketTable(schema)} (
       pipeline text NOT NULL,
       bucket int NOT NULL,
       run_id text NOT NULL,
       lower_bound text,
       upper_bound text,
       done boolean NOT NULL DEFAULT false,
       rows_deleted bigint NOT NULL DEFAULT 0,
       rows_written bigint NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT now(),
       PRIMARY KEY (pipeline, bucket))`,
  ]) {
    try {
      await c.query(sql);
    } catch (err) {
      if ((err as { code?: string }).code === '42501') throw withStateSchemaHint(err, c, schema);
      if (!lostCreateRace(err)) throw err;
    }
  }
  // Tables made before compare-then-copy re-syncs lack rows_written. Looked up first: ALTER TABLE
  // would wait for every open bucket transaction of every pipeline, even with IF NOT EXISTS.
  const { rows } = await c.query(`SELECT 1 FROM pg_attribute WHERE attrelid = $1::regclass AND attname = 'rows_written' AND NOT attisdropped`, [bucketTable(schema)]);
  if (rows.length === 0) await c.query(`ALTER TABLE ${bucketTable(schema)} ADD COLUMN IF NOT EXISTS rows_written bigint NOT NULL DEFAULT 0`);
}

/** Whether the state schema has sync_bucket (runs planned by workers older than delete detection do not). */
export async function hasBucketTable(c: pg.ClientBase, schema: string): Promise<boolean> {
  return (await c.query<{ r: string | null }>(`SELECT to_regclass($1) AS r`, [bucketTable(schema)])).rows[0]!.r !== null;
}

/**
 * Two syncs running `CREATE … IF NOT EXISTS` at the same moment: the loser sees a duplicate (of the
 * schema, the table, or the table's row type: 42710 on PostgreSQL 17); the object is there.
 */
export function lostCreateRace(err: unknown): boolean {
  return ['23505', '42P06', '42P07', '42710'].includes((err as { code?: string }).code ?? '');
}

/**
 * "permission denied for database" from planSync says nothing about why a sync creates anything:
 * the hint (shown with the SQLSTATE by describeSqlError) names stateSchema and the GRANT.
 */
function withStateSchemaHint(err: unknown, c: pg.ClientBase, schema: string): unknown {
  const { user = '<user>', database = '<database>' } = c as { user?: string; database?: string };
  const e = err as { hint?: string };
  e.hint =
    `the worker keeps its sync state in schema "${schema}" of the target database (pipeline setting stateSchema); ` +
    `GRANT CREATE ON DATABASE "${database}" TO "${user}", or create the schema and GRANT USAGE, CREATE ON SCHEMA "${schema}" TO "${user}", ` +
    'or set stateSchema to a schema this user may create tables in';
  return err;
}

interface Row {
  pipeline: string;
  cursor: CursorValue[] | null;
  phase: SyncState['phase'];
  rows_written: string;
  chunks: string;
  run_id: string | null;
}

/**
 * The pipeline's state row, created when missing. `lock`: 'update' for whoever changes the run
 * (plan, finish, a whole-table chunk); 'share' for partition chunks, which run side by side and
 * only need the owner to stay put until they commit.
 */
export async function readState(c: pg.ClientBase, schema: string, pipeline: string, lock: 'update' | 'share' | 'none' = 'none'): Promise<SyncState> {
  await c.query(`INSERT INTO ${stateTable(schema)} (pipeline) VALUES ($1) ON CONFLICT (pipeline) DO NOTHING`, [pipeline]);
  const suffix = lock === 'update' ? ' FOR UPDATE' : lock === 'share' ? ' FOR SHARE' : '';
  const { rows } = await c.query<Row>(
    `SELECT pipeline, cursor, phase, rows_written, chunks, run_id FROM ${stateTable(schema)} WHERE pipeline = $1${suffix}`,
    [pipeline],
  );
  const r = rows[0]!;
  return { pipeline: r.pipeline, cursor: r.cursor, phase: r.phase, rowsWritten: Number(r.rows_written), chunks: Number(r.chunks), runId: r.run_id };
}

/** The pipeline's state without creating or locking anything (a dry run); null before its first run. */
export async function peekState(c: pg.ClientBase, schema: string, pipeline: string): Promise<SyncState | null> {
  const { rows: present } = await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [stateTable(schema)]);
  if (!present[0]!.ok) return null;
  const { rows } = await c.query<Row>(`SELECT pipeline, cursor, phase, rows_written, chunks, run_id FROM ${stateTable(schema)} WHERE pipeline = $1`, [pipeline]);
  const r = rows[0];
  return r ? { pipeline: r.pipeline, cursor: r.cursor, phase: r.phase, rowsWritten: Number(r.rows_written), chunks: Number(r.chunks), runId: r.run_id } : null;
}

export async function writeState(c: pg.ClientBase, schema: string, s: SyncState): Promise<void> {
  await c.query(
    `UPDATE ${stateTable(schema)} SET cursor = $2, phase = $3, rows_written = $4, chunks = $5, run_id = $6, updated_at = now() WHERE pipeline = $1`,
    [s.pipeline, s.cursor, s.phase, s.rowsWritten, s.chunks, s.runId],
  );
}

interface PartitionRow {
  partition: number;
  lower_bound: string | null;
  upper_bound: string | null;
  cursor: CursorValue[] | null;
  done: boolean;
  rows_copied: string;
  rows_written: string;
  chunks: string;
}

const toPartition = (r: PartitionRow): PartitionState => ({
  partition: r.partition,
  lower: r.lower_bound,
  upper: r.upper_bound,
  cursor: r.cursor,
  done: r.done,
  rowsCopied: Number(r.rows_copied),
  rowsWritten: Number(r.rows_written),
  chunks: Number(r.chunks),
});

const PARTITION_COLUMNS = 'partition, lower_bound, upper_bound, cursor, done, rows_copied, rows_written, chunks';

export async function readPartitions(c: pg.ClientBase, schema: string, pipeline: string): Promise<PartitionState[]> {
  const { rows } = await c.query<PartitionRow>(`SELECT ${PARTITION_COLUMNS} FROM ${partitionTable(schema)} WHERE pipeline = $1 ORDER BY partition`, [pipeline]);
  return rows.map(toPartition);
}

/** One partition, locked until the transaction ends (a chunk of it commits its rows and cursor together). */
export async function lockPartition(c: pg.ClientBase, schema: string, pipeline: string, partition: number): Promise<PartitionState | undefined> {
  const { rows } = await c.query<PartitionRow>(
    `SELECT ${PARTITION_COLUMNS} FROM ${partitionTable(schema)} WHERE pipeline = $1 AND partition = $2 FOR UPDATE`,
    [pipeline, partition],
  );
  return rows[0] && toPartition(rows[0]);
}

export async function replacePartitions(c: pg.ClientBase, schema: string, pipeline: string, partitions: PartitionState[]): Promise<void> {
  await deletePartitions(c, schema, pipeline);
  for (const p of partitions)
    await c.query(
      `INSERT INTO ${partitionTable(schema)} (pipeline, ${PARTITION_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [pipeline, p.partition, p.lower, p.upper, p.cursor, p.done, p.rowsCopied, p.rowsWritten, p.chunks],
    );
}

export async function writePartition(c: pg.ClientBase, schema: string, pipeline: string, p: PartitionState): Promise<void> {
  await c.query(
    `UPDATE ${partitionTable(schema)} SET cursor = $3, done = $4, rows_copied = $5, rows_written = $6, chunks = $7, updated_at = now()
      WHERE pipeline = $1 AND partition = $2`,
    [pipeline, p.partition, p.cursor, p.done, p.rowsCopied, p.rowsWritten, p.chunks],
  );
}

export async function deletePartitions(c: pg.ClientBase, schema: string, pipeline: string): Promise<void> {
  await c.query(`DELETE FROM ${partitionTable(schema)} WHERE pipeline = $1`, [pipeline]);
}

export function sameCursor(a: CursorValue[] | null, b: CursorValue[] | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/**
 * One key range of a run's delete detection or compare-then-copy re-sync: its writes commit with
 * `done`, so a retried or resumed bucket finds its work done and reports what it wrote then.
 */
export interface BucketState {
  bucket: number;
  lower: string | null;
  upper: string | null;
  done: boolean;
  rowsDeleted: number;
  /** Re-sync buckets: rows inserted or updated. */
  rowsWritten: number;
}

interface BucketRow {
  bucket: number;
  lower_bound: string | null;
  upper_bound: string | null;
  done: boolean;
  rows_deleted: string;
  rows_written: string;
}

const toBucket = (r: BucketRow): BucketState => ({
  bucket: r.bucket, lower: r.lower_bound, upper: r.upper_bound, done: r.done, rowsDeleted: Number(r.rows_deleted), rowsWritten: Number(r.rows_written),
});
const BUCKET_COLUMNS = 'bucket, lower_bound, upper_bound, done, rows_deleted, rows_written';

/** The run's buckets (those of another run are not this run's work). */
export async function readBuckets(c: pg.ClientBase, schema: string, pipeline: string, runId: string): Promise<BucketState[]> {
  const { rows } = await c.query<BucketRow>(`SELECT ${BUCKET_COLUMNS} FROM ${bucketTable(schema)} WHERE pipeline = $1 AND run_id = $2 ORDER BY bucket`, [pipeline, runId]);
  return rows.map(toBucket);
}

export async function replaceBuckets(c: pg.ClientBase, schema: string, pipeline: string, runId: string, buckets: BucketState[]): Promise<void> {
  await deleteBuckets(c, schema, pipeline);
  for (const b of buckets)
    await c.query(`INSERT INTO ${bucketTable(schema)} (pipeline, run_id, ${BUCKET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [
      pipeline, runId, b.bucket, b.lower, b.upper, b.done, b.rowsDeleted, b.rowsWritten,
    ]);
}

export async function lockBucket(c: pg.ClientBase, schema: string, pipeline: string, runId: string, bucket: number): Promise<BucketState | undefined> {
  const { rows } = await c.query<BucketRow>(
    `SELECT ${BUCKET_COLUMNS} FROM ${bucketTable(schema)} WHERE pipeline = $1 AND run_id = $2 AND bucket = $3 FOR UPDATE`,
    [pipeline, runId, bucket],
  );
  return rows[0] && toBucket(rows[0]);
}

export async function finishBucket(c: pg.ClientBase, schema: string, pipeline: string, bucket: number, rowsDeleted: number, rowsWritten = 0): Promise<void> {
  await c.query(`UPDATE ${bucketTable(schema)} SET done = true, rows_deleted = $3, rows_written = $4, updated_at = now() WHERE pipeline = $1 AND bucket = $2`, [
    pipeline, bucket, rowsDeleted, rowsWritten,
  ]);
}

export async function deleteBuckets(c: pg.ClientBase, schema: string, pipeline: string): Promise<void> {
  await c.query(`DELETE FROM ${bucketTable(schema)} WHERE pipeline = $1`, [pipeline]);
}
