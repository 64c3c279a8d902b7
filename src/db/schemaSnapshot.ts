import type pg from 'pg';
import { z } from 'zod';
import { quoteIdent } from './identifiers';
import { lostCreateRace } from './syncState';

/**
 * The source's output columns as the last run saw them, per pipeline, next to the sync state in
 * the target database: what tells a new source column from one the target had all along, a
 * dropped one from a column only the target has, and a changed type from a deliberate difference.
 */

const snapshotColumn = z.object({
  name: z.string(),
  /** format_type in the source, e.g. `numeric(12,2)`. */
  type: z.string(),
  /** The wire type (RowDescription): when it is unchanged, the type needs no new look-up. */
  oid: z.number(),
  typmod: z.number(),
  /** Its collation as SQL (`"C"`), null for the database default; absent where not known (expressions, older snapshots). */
  collation: z.string().nullable().optional(),
  /** The source dropped it; the target keeps the column and gets NULL in it (schemaChanges: evolve). */
  dropped: z.boolean().optional(),
});
const snapshotColumns = z.array(snapshotColumn);

export type SnapshotColumn = z.infer<typeof snapshotColumn>;

const table = (schema: string) => `${quoteIdent(schema, 'stateSchema')}.sync_schema`;

/** Created with the state table (ensureStateTable's privileges apply). */
export async function ensureSnapshotTable(c: pg.ClientBase, schema: string): Promise<void> {
  try {
    await c.query(`CREATE TABLE IF NOT EXISTS ${table(schema)} (pipeline text PRIMARY KEY, columns jsonb NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`);
  } catch (err) {
    if (!lostCreateRace(err)) throw err;
  }
}

/** The recorded columns, or null before the first run that recorded them (or before the table exists). */
export async function readSnapshot(c: pg.ClientBase, schema: string, pipeline: string): Promise<SnapshotColumn[] | null> {
  const { rows } = await c.query<{ present: boolean }>(`SELECT to_regclass($1) IS NOT NULL AS present`, [table(schema)]);
  if (!rows[0]!.present) return null;
  const res = await c.query<{ columns: unknown }>(`SELECT columns FROM ${table(schema)} WHERE pipeline = $1`, [pipeline]);
  if (res.rows.length === 0) return null;
  const parsed = snapshotColumns.safeParse(res.rows[0]!.columns);
  // Unreadable (edited by hand): treated as never recorded, so nothing is mistaken for a change.
  return parsed.success ? parsed.data : null;
}

export async function writeSnapshot(c: pg.ClientBase, schema: string, pipeline: string, columns: SnapshotColumn[]): Promise<void> {
  await c.query(
    `INSERT INTO ${table(schema)} (pipeline, columns) VALUES ($1, $2::jsonb)
     ON CONFLICT (pipeline) DO UPDATE SET columns = EXCLUDED.columns, updated_at = now()`,
    [pipeline, JSON.stringify(columns)],
  );
}

export function sameSnapshot(a: SnapshotColumn[] | null, b: SnapshotColumn[] | null): boolean {
  if (a === null || b === null) return a === b;
  const key = (cols: SnapshotColumn[]) => JSON.stringify([...cols].sort((x, y) => (x.name < y.name ? -1 : 1)).map((c) => [c.name, c.type, c.oid, c.typmod, !!c.dropped, c.collation === undefined ? '?' : c.collation]));
  return key(a) === key(b);
}
