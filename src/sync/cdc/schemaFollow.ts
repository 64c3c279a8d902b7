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
  const sourceName = (target: string) => Object.entries(p.transform.rename).find(([, to]) => to === target)?.[0] ?? target;
  const { rows } = await s.query<{ name: string; value: string | null }>(
    `SELECT a.attname AS name, (a.attmissingval::text::text[])[1] AS value
       FROM pg_attribute a WHERE a.attrelid = $1::int8::oid AND a.atthasmissing AND a.attname = ANY($2::text[])`,
    [source.oid, added.map((c) => sourceName(c.name))],
  );
  let n = 0;
  for (const c of added) {
    const m = rows.find((r) => r.name === sourceName(c.name));
    if (!m || m.value === null) continue;
    const r = await t.query(`UPDATE ${quoteTable(p.target.table!)} SET ${quoteIdent(c.name)} = $1::${c.type} WHERE ${quoteIdent(c.name)} IS NULL`, [m.value]);
    n += r.rowCount ?? 0;
  }
  return n;
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
