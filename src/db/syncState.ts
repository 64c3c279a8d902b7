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

const table = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.sync_state`;

export async function ensureStateTable(c: pg.ClientBase, schema: string): Promise<void> {
  for (const sql of [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema, 'stateSchema')}`,
    `CREATE TABLE IF NOT EXISTS ${table(schema)} (
       pipeline text PRIMARY KEY,
       cursor text[],
       phase text NOT NULL DEFAULT 'idle' CHECK (phase IN ('idle', 'running', 'loading')),
       rows_written bigint NOT NULL DEFAULT 0,
       chunks bigint NOT NULL DEFAULT 0,
       run_id text,
       updated_at timestamptz NOT NULL DEFAULT now())`,
  ]) {
    try {
      await c.query(sql);
    } catch (err) {
      // Two syncs creating it at the same moment: the loser sees a duplicate; the table is there.
      const code = (err as { code?: string }).code;
      if (code === '42501') throw withStateSchemaHint(err, c, schema);
      if (code !== '23505' && code !== '42P06' && code !== '42P07') throw err;
    }
  }
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

export async function readState(c: pg.ClientBase, schema: string, pipeline: string, forUpdate = false): Promise<SyncState> {
  await c.query(`INSERT INTO ${table(schema)} (pipeline) VALUES ($1) ON CONFLICT (pipeline) DO NOTHING`, [pipeline]);
  const { rows } = await c.query<Row>(
    `SELECT pipeline, cursor, phase, rows_written, chunks, run_id FROM ${table(schema)} WHERE pipeline = $1${forUpdate ? ' FOR UPDATE' : ''}`,
    [pipeline],
  );
  const r = rows[0]!;
  return { pipeline: r.pipeline, cursor: r.cursor, phase: r.phase, rowsWritten: Number(r.rows_written), chunks: Number(r.chunks), runId: r.run_id };
}

export async function writeState(c: pg.ClientBase, schema: string, s: SyncState): Promise<void> {
  await c.query(
    `UPDATE ${table(schema)} SET cursor = $2, phase = $3, rows_written = $4, chunks = $5, run_id = $6, updated_at = now() WHERE pipeline = $1`,
    [s.pipeline, s.cursor, s.phase, s.rowsWritten, s.chunks, s.runId],
  );
}

export function sameCursor(a: CursorValue[] | null, b: CursorValue[] | null): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
