// What a stream does with the source's schema changes beyond adding columns (schemaChanges.ts):
// a column added with a default gets that default on the rows already in the target, and an enum
// label added to a source type is added to the target's type.
import type pg from 'pg';
import type { PipelineConfig } from '../../config/schema';
import { quoteIdent, quoteTable } from '../../db/identifiers';

const quoteLiteral = (v: string) => `'${v.replace(/'/g, "''")}'`;

/**
 * Columns this batch's schema evolution added to the target: the value the source's rows already
 * had (pg_attribute.attmissingval, what `ADD COLUMN … DEFAULT` gives existing rows without a
 * rewrite) is written into every target row, in the batch's transaction. A volatile default
 * rewrites the source table instead (no missing value): those rows are left NULL (docs/cdc.md).
 */
export async function backfillAddedColumns(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, source: { oid: number }, added: { name: string; type: string }[]): Promise<number> {
  if (!added.length) return 0;
  const values = await missingValues(s, p, source, added.map((c) => c.name));
  let n = 0;
  for (const c of added) {
    const value = values.get(c.name);
    if (value === undefined) continue;
    const r = await t.query(`UPDATE ${quoteTable(p.target.table!)} SET ${quoteIdent(c.name)} = $1::${c.type} WHERE ${quoteIdent(c.name)} IS NULL`, [value]);
    n += r.rowCount ?? 0;
  }
  return n;
}

/**
 * Target columns (by target name) whose source column has a missing value: the value every row
 * older than its `ADD COLUMN … DEFAULT` has. A change decoded from WAL older than that ALTER lacks
 * the column; a row it inserts into the target takes this value, as the source's row has it.
 */
export async function missingValues(s: pg.ClientBase, p: PipelineConfig, source: { oid: number }, targetColumns: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (!targetColumns.length) return out;
  const sourceName = (target: string) => Object.entries(p.transform.rename).find(([, to]) => to === target)?.[0] ?? target;
  const { rows } = await s.query<{ name: string; value: string | null }>(
    `SELECT a.attname AS name, (a.attmissingval::text::text[])[1] AS value
       FROM pg_attribute a WHERE a.attrelid = $1::int8::oid AND a.atthasmissing AND NOT a.attisdropped AND a.attname = ANY($2::text[])`,
    [source.oid, targetColumns.map(sourceName)],
  );
  for (const c of targetColumns) {
    const m = rows.find((r) => r.name === sourceName(c));
    if (m && m.value !== null) out.set(c, m.value);
  }
  return out;
}

/** Is this the error of an enum value the target's type does not have (yet)? */
export const isUnknownEnumLabel = (err: unknown) => (err as { code?: string }).code === '22P02' && /invalid input value for enum/.test(String((err as Error).message));

/**
 * Labels the source's enum types have and the target's (matched by column) lack, added in order
 * (ALTER TYPE … ADD VALUE, outside any transaction: a value added inside one cannot be used before
 * it commits). Returns how many were added: 0 means the error was not ours to fix.
 */
export async function addMissingEnumLabels(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, source: { oid: number }): Promise<number> {
  const labels = `SELECT a.attname AS name, format('%I.%I', tn.nspname, ty.typname) AS type,
                         array_agg(e.enumlabel::text ORDER BY e.enumsortorder) AS labels
                    FROM pg_attribute a JOIN pg_type ty ON ty.oid = a.atttypid JOIN pg_namespace tn ON tn.oid = ty.typnamespace
                    JOIN pg_enum e ON e.enumtypid = ty.oid
                   WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
                   GROUP BY a.attname, tn.nspname, ty.typname`;
  const src = (await s.query<{ name: string; labels: string[] }>(labels.replace('$1', '$1::int8::oid'), [source.oid])).rows;
  const tgt = (await t.query<{ name: string; type: string; labels: string[] }>(labels.replace('$1', 'to_regclass($1)'), [quoteTable(p.target.table!)])).rows;
  let added = 0;
  for (const col of tgt) {
    const from = src.find((x) => (p.transform.rename[x.name] ?? x.name) === col.name);
    if (!from) continue;
    const have = new Set(col.labels);
    for (let i = 0; i < from.labels.length; i++) {
      const label = from.labels[i]!;
      if (have.has(label)) continue;
      const after = from.labels.slice(0, i).reverse().find((l) => have.has(l));
      await t.query(`ALTER TYPE ${col.type} ADD VALUE IF NOT EXISTS ${quoteLiteral(label)}${after ? ` AFTER ${quoteLiteral(after)}` : ''}`);
      have.add(label);
      added++;
    }
  }
  return added;
}
