import type pg from 'pg';
import { quoteIdent, quoteTable } from './identifiers';
import { lostCreateRace } from './syncState';

/**
 * CDC bookkeeping in the target's state schema: per pipeline, the slot it reads, where its
 * snapshot started, and the last source transaction applied. The applied position commits with
 * the rows of each batch, so a retried reader skips exactly what is already in the target.
 */
export interface CdcState {
  pipeline: string;
  slot: string;
  publication: string;
  phase: 'snapshot' | 'streaming';
  /** The slot's position when this pipeline joined (its copy started after it). */
  startLsn: string;
  /** Commit LSN of the last source transaction applied (null: none yet, replay from startLsn). */
  appliedLsn: string | null;
  /** Commit time of that transaction (lag in seconds). */
  appliedCommitTime: Date | null;
  rowsApplied: number;
  batches: number;
  /** Set when a change of this pipeline could not be applied: the reader goes on without it (the failure type and text, and when). */
  parked: { type: string; reason: string; at: Date } | null;
  /** Set by `cdc stop` when the slot stays: nobody applies for it until `cdc start` resumes (or re-copies). */
  stoppedAt: Date | null;
  /** The slot's confirmed position when it stopped: `cdc start` resumes only while the slot is still there. */
  stoppedLsn: string | null;
  /** pg_class oid of the source table when it joined: the stream follows the table by it (renames). */
  sourceOid: number | null;
}

const cdcTable = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.cdc_state`;

export async function ensureCdcStateTable(c: pg.ClientBase, schema: string): Promise<void> {
  for (const sql of [
    `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(schema, 'stateSchema')}`,
    `CREATE TABLE IF NOT EXISTS ${cdcTable(schema)} (
       pipeline text PRIMARY KEY,
       slot text NOT NULL,
       publication text NOT NULL,
       phase text NOT NULL CHECK (phase IN ('snapshot', 'streaming')),
       start_lsn pg_lsn NOT NULL,
       applied_lsn pg_lsn,
       applied_commit_time timestamptz,
       rows_applied bigint NOT NULL DEFAULT 0,
       batches bigint NOT NULL DEFAULT 0,
       updated_at timestamptz NOT NULL DEFAULT now())`,
  ]) {
    try {
      await c.query(sql);
    } catch (err) {
      if (!lostCreateRace(err)) throw err;
    }
  }
  // Columns added since the table's first version; ALTER only when missing (it takes an exclusive lock).
  const { rows } = await c.query<{ n: string }>(
    `SELECT attname AS n FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
    [cdcTable(schema)],
  );
  const have = new Set(rows.map((r) => r.n));
  for (const [name, type] of ADDED_COLUMNS) {
    if (have.has(name)) continue;
    const sql = `ALTER TABLE ${cdcTable(schema)} ADD COLUMN IF NOT EXISTS ${name} ${type}`;
    try {
      await c.query(sql);
    } catch (err) {
      if (!lostCreateRace(err)) throw err;
    }
  }
}

const ADDED_COLUMNS: [string, string][] = [
  ['parked_type', 'text'],
  ['parked_reason', 'text'],
  ['parked_at', 'timestamptz'],
  ['stopped_at', 'timestamptz'],
  ['stopped_lsn', 'pg_lsn'],
  ['source_oid', 'bigint'],
];


const toState = (r: Record<string, unknown>): CdcState => ({
  pipeline: String(r.pipeline),
  slot: String(r.slot),
  publication: String(r.publication),
  phase: r.phase as CdcState['phase'],
  startLsn: String(r.start_lsn),
  appliedLsn: (r.applied_lsn as string | null) ?? null,
  appliedCommitTime: r.applied_commit_time ? new Date(String(r.applied_commit_time)) : null,
  rowsApplied: Number(r.rows_applied),
  batches: Number(r.batches),
  parked: r.parked_at ? { type: String(r.parked_type), reason: String(r.parked_reason), at: new Date(String(r.parked_at)) } : null,
  stoppedAt: r.stopped_at ? new Date(String(r.stopped_at)) : null,
  stoppedLsn: (r.stopped_lsn as string | null) ?? null,
  sourceOid: r.source_oid === null || r.source_oid === undefined ? null : Number(r.source_oid),
});

/**
 * The pipeline's CDC state, or null before it joined a slot (or when the state table is missing).
 * Read as JSON, so a state table from before the columns added later still reads (those are null).
 */
export async function readCdcState(c: pg.ClientBase, schema: string, pipeline: string, lock = false): Promise<CdcState | null> {
  const { rows: present } = await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [cdcTable(schema)]);
  if (!present[0]!.ok) return null;
  const { rows } = await c.query<{ j: Record<string, unknown> }>(`SELECT to_jsonb(s) AS j FROM ${cdcTable(schema)} s WHERE pipeline = $1${lock ? ' FOR UPDATE' : ''}`, [pipeline]);
  return rows[0] ? toState(rows[0].j) : null;
}

/** A change of the pipeline could not be applied: the reader goes on without it until it resumes or is copied anew. */
export async function parkCdcState(c: pg.ClientBase, schema: string, pipeline: string, type: string, reason: string): Promise<void> {
  await ensureCdcStateTable(c, schema);
  await c.query(`UPDATE ${cdcTable(schema)} SET parked_type = $2, parked_reason = $3, parked_at = now(), updated_at = now() WHERE pipeline = $1`, [pipeline, type, reason]);
}

/** Stopped with the slot kept, at the slot's confirmed position: a reader of the slot leaves a stopped pipeline alone. */
export async function markStopped(c: pg.ClientBase, schema: string, pipeline: string, confirmedLsn: string | null): Promise<void> {
  await ensureCdcStateTable(c, schema);
  await c.query(`UPDATE ${cdcTable(schema)} SET stopped_at = now(), stopped_lsn = $2::pg_lsn, updated_at = now() WHERE pipeline = $1`, [pipeline, confirmedLsn]);
}

/** Streams again from its checkpoint (`cdc start` after a stop whose slot position still holds). */
export async function markResumed(c: pg.ClientBase, schema: string, pipeline: string): Promise<void> {
  await c.query(
    `UPDATE ${cdcTable(schema)} SET stopped_at = NULL, stopped_lsn = NULL, parked_type = NULL, parked_reason = NULL, parked_at = NULL, updated_at = now() WHERE pipeline = $1`,
    [pipeline],
  );
}

export async function setSourceOid(c: pg.ClientBase, schema: string, pipeline: string, oid: number): Promise<void> {
  await c.query(`UPDATE ${cdcTable(schema)} SET source_oid = $2 WHERE pipeline = $1`, [pipeline, oid]);
}

export async function insertCdcState(c: pg.ClientBase, schema: string, s: Pick<CdcState, 'pipeline' | 'slot' | 'publication' | 'startLsn'>): Promise<void> {
  await c.query(
    `INSERT INTO ${cdcTable(schema)} (pipeline, slot, publication, phase, start_lsn) VALUES ($1, $2, $3, 'snapshot', $4::pg_lsn)
     ON CONFLICT (pipeline) DO UPDATE SET slot = EXCLUDED.slot, publication = EXCLUDED.publication, phase = 'snapshot',
       start_lsn = EXCLUDED.start_lsn, applied_lsn = NULL, applied_commit_time = NULL, updated_at = now(),
       parked_type = NULL, parked_reason = NULL, parked_at = NULL, stopped_at = NULL, stopped_lsn = NULL`,
    [s.pipeline, s.slot, s.publication, s.startLsn],
  );
}

export async function markStreaming(c: pg.ClientBase, schema: string, pipeline: string): Promise<void> {
  await c.query(`UPDATE ${cdcTable(schema)} SET phase = 'streaming', updated_at = now() WHERE pipeline = $1`, [pipeline]);
}

/**
 * Inside a batch's transaction: the last transaction applied, committed with its rows. Fenced: the
 * applied LSN only moves forward, so a stale reader (a frozen attempt that resumed after another
 * reader took the slot) cannot commit an older batch over newer rows; false when it was refused.
 */
export async function writeApplied(c: pg.ClientBase, schema: string, pipeline: string, lsn: string, commitTime: Date | null, rows: number): Promise<boolean> {
  const r = await c.query(
    `UPDATE ${cdcTable(schema)} SET applied_lsn = $2::pg_lsn, applied_commit_time = coalesce($3, applied_commit_time),
       rows_applied = rows_applied + $4, batches = batches + 1, updated_at = now()
     WHERE pipeline = $1 AND (applied_lsn IS NULL OR applied_lsn < $2::pg_lsn)`,
    [pipeline, lsn, commitTime, rows],
  );
  return (r.rowCount ?? 0) > 0;
}

export async function deleteCdcState(c: pg.ClientBase, schema: string, pipeline: string): Promise<void> {
  const { rows } = await c.query<{ ok: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS ok`, [cdcTable(schema)]);
  if (rows[0]!.ok) await c.query(`DELETE FROM ${cdcTable(schema)} WHERE pipeline = $1`, [pipeline]);
}

// --- source side: publication and slot --------------------------------------------------------

export interface SlotInfo {
  slot: string;
  database: string;
  plugin: string;
  active: boolean;
  confirmedLsn: string | null;
  restartLsn: string | null;
  currentLsn: string;
  /** WAL the server keeps for the slot (current position minus restart_lsn). */
  retainedBytes: number;
  /** Current position minus confirmed_flush_lsn. */
  unconfirmedBytes: number;
}

export async function slotInfo(c: pg.ClientBase, slot: string): Promise<SlotInfo | null> {
  const { rows } = await c.query<{
    database: string; plugin: string; active: boolean; confirmed: string | null; restart: string | null; current: string; retained: string | null; unconfirmed: string | null;
  }>(
    `SELECT database, plugin, active, confirmed_flush_lsn::text AS confirmed, restart_lsn::text AS restart, pg_current_wal_lsn()::text AS current,
            pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::int8 AS retained, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 AS unconfirmed
       FROM pg_replication_slots WHERE slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) return null;
  return {
    slot, database: r.database, plugin: r.plugin, active: r.active, confirmedLsn: r.confirmed, restartLsn: r.restart, currentLsn: r.current,
    retainedBytes: Number(r.retained ?? 0), unconfirmedBytes: Number(r.unconfirmed ?? 0),
  };
}

/**
 * Creates the logical slot (pgoutput) when missing; returns its consistent point (confirmed_flush_lsn).
 * On PostgreSQL 17+ it is a failover slot: a standby with sync_replication_slots keeps a copy, so
 * the stream survives a promotion instead of losing its position (and its changes) with the primary.
 */
export async function ensureSlot(c: pg.ClientBase, slot: string): Promise<{ created: boolean; lsn: string }> {
  const existing = await slotInfo(c, slot);
  if (existing) return { created: false, lsn: existing.confirmedLsn ?? existing.currentLsn };
  try {
    const { rows } = await c.query<{ lsn: string }>(
      `SELECT lsn::text FROM (SELECT * FROM pg_create_logical_replication_slot($1, 'pgoutput'${(await serverVersion(c)) >= 170000 ? ', false, false, true' : ''})) s`,
      [slot],
    );
    return { created: true, lsn: rows[0]!.lsn };
  } catch (err) {
    if ((err as { code?: string }).code !== '42710') throw err; // another worker created it just now
    const info = await slotInfo(c, slot);
    return { created: false, lsn: info!.confirmedLsn ?? info!.currentLsn };
  }
}

const serverVersion = async (c: pg.ClientBase) => Number((await c.query<{ v: string }>(`SELECT current_setting('server_version_num') AS v`)).rows[0]!.v);

export async function dropSlot(c: pg.ClientBase, slot: string): Promise<boolean> {
  const { rows } = await c.query<{ n: number }>(`SELECT count(pg_drop_replication_slot(slot_name))::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
  return rows[0]!.n > 0;
}

/** Tables the publication publishes (schema-qualified, as the source sees them), or null when it does not exist. */
export async function publicationTables(c: pg.ClientBase, publication: string): Promise<{ viaRoot: boolean; all: boolean; tables: string[] } | null> {
  const { rows } = await c.query<{ root: boolean; all: boolean }>(`SELECT pubviaroot AS root, puballtables AS all FROM pg_publication WHERE pubname = $1`, [publication]);
  if (!rows[0]) return null;
  const { rows: t } = await c.query<{ t: string }>(`SELECT format('%I.%I', schemaname, tablename) AS t FROM pg_publication_tables WHERE pubname = $1`, [publication]);
  return { viaRoot: rows[0].root, all: rows[0].all, tables: t.map((r) => r.t) };
}

/** `schema.table` exactly as format('%I.%I') writes it, for a config table name; null when it does not exist. */
export async function qualifiedSourceTable(c: pg.ClientBase, table: string): Promise<{ name: string; schema: string; table: string; partitioned: boolean; oid: number } | null> {
  const { rows } = await c.query<{ name: string; schema: string; table: string; kind: string; oid: string }>(
    `SELECT format('%I.%I', n.nspname, r.relname) AS name, n.nspname AS schema, r.relname AS table, r.relkind AS kind, r.oid::int8 AS oid
       FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = to_regclass($1)`,
    [quoteTable(table)],
  );
  return rows[0] ? { name: rows[0].name, schema: rows[0].schema, table: rows[0].table, partitioned: rows[0].kind === 'p', oid: Number(rows[0].oid) } : null;
}

/** The source table's columns as names, types and typmods in order: what an idle reader compares to notice DDL no change has carried yet. */
export async function columnShape(c: pg.ClientBase, oid: number): Promise<string> {
  const { rows } = await c.query<{ shape: string | null }>(
    `SELECT string_agg(attname || ':' || atttypid || ':' || atttypmod, ',' ORDER BY attnum) AS shape
       FROM pg_attribute WHERE attrelid = $1::int8::oid AND attnum > 0 AND NOT attisdropped`,
    [oid],
  );
  return rows[0]?.shape ?? '';
}

/** The table with this pg_class oid as it is named now (a rename is followed), or null when it was dropped. */
export async function sourceTableByOid(c: pg.ClientBase, oid: number): Promise<{ schema: string; table: string } | null> {
  const { rows } = await c.query<{ schema: string; table: string }>(
    `SELECT n.nspname AS schema, r.relname AS table FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace WHERE r.oid = $1::int8::oid`,
    [oid],
  );
  return rows[0] ?? null;
}

export const createPublicationSql = (publication: string, tables: string[]) =>
  `CREATE PUBLICATION ${quoteIdent(publication, 'publication')} FOR TABLE ${tables.join(', ')} WITH (publish_via_partition_root = true)`;
export const addToPublicationSql = (publication: string, table: string) => `ALTER PUBLICATION ${quoteIdent(publication, 'publication')} ADD TABLE ${table}`;
/**
 * The advisory lock of a slot on its source ($1: the slot name). A join holds it exclusively while it
 * takes its start LSN and writes its state row; a reader holds it shared while it re-reads the state
 * rows and confirms. So a reader that loaded its pipelines before a join can never confirm past it.
 */
export const slotLockSql = `hashtext('lakebase-worker cdc slot ' || $1)`;
export const currentLsnSql = 'SELECT pg_current_wal_lsn()::text AS lsn';
export const lsnDiffSql = 'SELECT pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8 AS bytes';

// --- target side: applying a collapsed batch ----------------------------------------------------

/** DELETE of the given keys (text values cast to the key columns' types). */
export function deleteKeysSql(table: string, key: { name: string; type: string }[]): string {
  const cols = key.map((k, i) => `t.${quoteIdent(k.name)} = (x.v->>${i})::${k.type}`).join(' AND ');
  return `DELETE FROM ${quoteTable(table)} t USING jsonb_array_elements($1::jsonb) x(v) WHERE ${cols}`;
}

/**
 * INSERT … ON CONFLICT (key) DO UPDATE of rows given as JSON arrays of text, one per row, in
 * `columns` order. `insertOnly` columns are written by the insert and left as they are by the update.
 */
export function upsertRowsSql(table: string, columns: { name: string; type: string }[], key: string[], insertOnly: string[] = []): string {
  const list = columns.map((c) => quoteIdent(c.name)).join(', ');
  const values = columns.map((c, i) => `(x.v->>${i})::${c.type}`).join(', ');
  const rest = columns.filter((c) => !key.includes(c.name) && !insertOnly.includes(c.name));
  const conflict = `ON CONFLICT (${key.map((k) => quoteIdent(k)).join(', ')}) DO ${
    rest.length ? `UPDATE SET ${rest.map((c) => `${quoteIdent(c.name)} = EXCLUDED.${quoteIdent(c.name)}`).join(', ')}` : 'NOTHING'
  }`;
  return `INSERT INTO ${quoteTable(table)} (${list}) SELECT ${values} FROM jsonb_array_elements($1::jsonb) x(v) ${conflict}`;
}

export const truncateSql = (table: string) => `TRUNCATE ${quoteTable(table)}`;

type Col = { name: string; type: string };
const rowsOf = (columns: Col[], offset = 0) => columns.map((c, i) => `(x.v->>${i + offset})::${c.type} AS ${quoteIdent(c.name)}`).join(', ');
const keyMatch = (alias: string, key: Col[], offset: number, json = 'x.v') => key.map((k, i) => `${alias}.${quoteIdent(k.name)} = (${json}->>${i + offset})::${k.type}`).join(' AND ');

/**
 * Rows that changed their key while some columns were unchanged TOAST (not in the WAL): the new
 * key's row takes those columns from the old key's target row, read before the batch deletes it.
 * Rows given as JSON arrays: `present` values, then the old key. Where the target has no old row
 * (the copy saw the row after its key change), updateWhereNoOldRowSql writes the present columns.
 */
export function movedRowsSql(table: string, present: Col[], missing: string[], key: Col[], oldKey: Col[]): string {
  const q = quoteTable(table);
  const list = [...present.map((c) => quoteIdent(c.name)), ...missing.map((c) => quoteIdent(c))].join(', ');
  const keyNames = key.map((k) => k.name);
  const sets = [...present.filter((c) => !keyNames.includes(c.name)).map((c) => c.name), ...missing]
    .map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`);
  return `INSERT INTO ${q} (${list})
    SELECT ${[...present.map((c, i) => `(x.v->>${i})::${c.type}`), ...missing.map((c) => `o.${quoteIdent(c)}`)].join(', ')}
      FROM jsonb_array_elements($1::jsonb) x(v) JOIN ${q} o ON ${keyMatch('o', oldKey, present.length)}
    ON CONFLICT (${keyNames.map((k) => quoteIdent(k)).join(', ')}) DO ${sets.length ? `UPDATE SET ${sets.join(', ')}` : 'NOTHING'}`;
}

/** The rest of movedRowsSql's rows (no old row in the target): the present columns of the new key's row, when it exists. */
export function updateWhereNoOldRowSql(table: string, present: Col[], key: Col[], oldKey: Col[]): string | null {
  const q = quoteTable(table);
  const keyNames = key.map((k) => k.name);
  const rest = present.filter((c) => !keyNames.includes(c.name));
  if (!rest.length) return null;
  return `UPDATE ${q} t SET ${rest.map((c) => `${quoteIdent(c.name)} = x.${quoteIdent(c.name)}`).join(', ')}
    FROM (SELECT ${rowsOf(present)}, x.v AS lbw_row__ FROM jsonb_array_elements($1::jsonb) x(v)) x
    WHERE ${key.map((k) => `t.${quoteIdent(k.name)} = x.${quoteIdent(k.name)}`).join(' AND ')}
      AND NOT EXISTS (SELECT 1 FROM ${q} o WHERE ${keyMatch('o', oldKey, present.length, 'x.lbw_row__')})`;
}

/**
 * An update whose unchanged TOAST columns are not in the WAL, of a key with no row moving into it:
 * only an UPDATE. A target without the row never saw it (the copy came after a later delete or key
 * change, which the stream replays next); inserting it would write NULL for those columns.
 */
export function updateRowsSql(table: string, present: Col[], key: Col[]): string | null {
  const keyNames = key.map((k) => k.name);
  const rest = present.filter((c) => !keyNames.includes(c.name));
  if (!rest.length) return null;
  return `UPDATE ${quoteTable(table)} t SET ${rest.map((c) => `${quoteIdent(c.name)} = x.${quoteIdent(c.name)}`).join(', ')}
    FROM (SELECT ${rowsOf(present)} FROM jsonb_array_elements($1::jsonb) x(v)) x
    WHERE ${key.map((k) => `t.${quoteIdent(k.name)} = x.${quoteIdent(k.name)}`).join(' AND ')}`;
}
