import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { quoteIdent, quoteTable } from './identifiers';
import { RAW_TEXT } from './rawText';
import { sourceRelation, type ColumnPlan, type CursorValue, estimateSql, splitPointsSql, type Slice } from './syncSql';

/** Catalog and sizing queries the sync engine asks; each is one statement. */

/** Output column names of the pipeline's source (table or query), in order. */
export async function sourceColumns(c: pg.ClientBase, p: PipelineConfig): Promise<string[]> {
  const res = await c.query({ text: `SELECT * FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
  return res.fields.map((f) => f.name);
}

export async function columnHasNull(c: pg.ClientBase, p: PipelineConfig, sourceColumn: string): Promise<boolean> {
  if (p.source.table) {
    // A NOT NULL column needs no scan (the planner does not use the constraint to skip one).
    const declared = await c.query<{ notnull: boolean }>(
      `SELECT attnotnull AS notnull FROM pg_attribute WHERE attrelid = $1::regclass AND attname = $2 AND NOT attisdropped`,
      [quoteTable(p.source.table), sourceColumn],
    );
    if (declared.rows[0]?.notnull) return false;
  }
  const { rows } = await c.query<{ has_null: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM ${sourceRelation(p)} WHERE src.${quoteIdent(sourceColumn)} IS NULL) AS has_null`,
  );
  return rows[0]!.has_null;
}

export async function tableColumns(c: pg.ClientBase, table: string): Promise<string[]> {
  return (await c.query({ text: `SELECT * FROM ${quoteTable(table)} LIMIT 0`, types: RAW_TEXT })).fields.map((f) => f.name);
}

/** Columns the target computes itself (GENERATED ALWAYS … STORED): never written. */
export async function generatedColumns(c: pg.ClientBase, table: string): Promise<string[]> {
  const { rows } = await c.query<{ name: string }>(
    `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attgenerated <> '' AND NOT attisdropped`,
    [quoteTable(table)],
  );
  return rows.map((r) => r.name);
}

/** Whether `table` has a primary key or unique index on exactly `key` (what ON CONFLICT needs). */
export async function hasUniqueKey(c: pg.ClientBase, table: string, key: string[]): Promise<boolean> {
  const { rows } = await c.query<{ ok: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL
       AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
         = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k)) AS ok`,
    [quoteTable(table), key],
  );
  return rows[0]!.ok;
}

export async function isEmpty(c: pg.ClientBase, table: string): Promise<boolean> {
  return (await c.query<{ empty: boolean }>(`SELECT NOT EXISTS (SELECT 1 FROM ${quoteTable(table)}) AS empty`)).rows[0]!.empty;
}

export async function estimateRows(c: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan, slice: Slice): Promise<number> {
  const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(estimateSql(p, plan, slice));
  return Math.round(rows[0]!['QUERY PLAN'][0].Plan['Plan Rows']);
}

/** Distinct, ordered split points of the first order column (see splitPointsSql). */
export async function splitPoints(c: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan, after: CursorValue[] | null, parts: number, samplePercent: number): Promise<string[]> {
  if (parts < 2) return [];
  // TABLESAMPLE needs a table or materialized view; a view (like a query) is read whole.
  if (p.source.table && !['r', 'm', 'p'].includes((await tablePages(c, p.source.table)).kind)) samplePercent = 100;
  const { rows } = await c.query<{ points: (string | null)[] | null }>(splitPointsSql(p, plan, after, parts, samplePercent));
  const points = (rows[0]?.points ?? []).filter((x): x is string => x !== null);
  return points.filter((x, i) => i === 0 || x !== points[i - 1]);
}

export async function countRows(c: pg.ClientBase, table: string): Promise<number> {
  return Number((await c.query<{ n: string }>(`SELECT count(*) AS n FROM ${quoteTable(table)}`)).rows[0]!.n);
}

/** A table's heap size in pages now, and rows per page from its statistics (when it has any). */
export async function tablePages(c: pg.ClientBase, table: string): Promise<{ kind: string; pages: number; rowsPerPage: number | null }> {
  const { rows } = await c.query<{ kind: string; pages: string; reltuples: number; relpages: number }>(
    `SELECT relkind AS kind, pg_relation_size(oid) / current_setting('block_size')::int AS pages, reltuples, relpages FROM pg_class WHERE oid = $1::regclass`,
    [quoteTable(table)],
  );
  const r = rows[0]!;
  return { kind: r.kind, pages: Number(r.pages), rowsPerPage: r.relpages > 0 && r.reltuples > 0 ? r.reltuples / r.relpages : null };
}
