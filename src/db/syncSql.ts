import type { PipelineConfig } from '../config/schema';
import { IdentifierError, quoteIdent, quoteTable } from './identifiers';

/** How a pipeline's source columns map to target columns; built from the source's real column list. */
export interface ColumnPlan {
  /** SELECT list entries, in output order. */
  select: string[];
  /** Output (target) column names, same order. */
  columns: string[];
  /** Source columns that order the rows for chunking (cursor first, then key), and their target names. */
  sourceOrder: string[];
  order: string[];
}

export class PipelineShapeError extends Error {
  override name = 'PipelineShapeError';
}

export type CursorValue = string | null;

export function sourceRelation(p: PipelineConfig): string {
  if (p.source.query) return `(${p.source.query}) AS src`;
  return `${quoteTable(p.source.table!)} AS src`;
}

/** Columns that order rows for chunking: the cursor (when set) then the key, each once. */
export function orderColumns(p: PipelineConfig): string[] {
  return [...new Set(p.cursor ? [p.cursor, ...p.key] : p.key)];
}

/**
 * Renames and exclusions apply to source columns; `transform.columns` adds or replaces target
 * columns with SQL expressions, evaluated in the source database (pushed down).
 */
export function planColumns(p: PipelineConfig, sourceColumns: string[], pipelineName: string): ColumnPlan {
  const { rename, exclude, columns: exprs } = p.transform;
  for (const c of [...Object.keys(rename), ...exclude]) {
    if (!sourceColumns.includes(c))
      throw new PipelineShapeError(
        `pipelines.${pipelineName}.transform: source column "${c}" does not exist; source columns are ${sourceColumns.join(', ')}`,
      );
  }
  const select: string[] = [];
  const columns: string[] = [];
  const targetToSource = new Map<string, string>();
  for (const c of sourceColumns) {
    if (exclude.includes(c)) continue;
    const target = rename[c] ?? c;
    if (target in exprs) continue; // replaced by an expression below
    select.push(target === c ? `src.${quoteIdent(c)}` : `src.${quoteIdent(c)} AS ${quoteIdent(target)}`);
    columns.push(target);
    targetToSource.set(target, c);
  }
  for (const [target, expr] of Object.entries(exprs)) {
    select.push(`(${expr}) AS ${quoteIdent(target)}`);
    columns.push(target);
  }
  const order = orderColumns(p);
  const sourceOrder = order.map((k) => {
    const src = targetToSource.get(k);
    if (src === undefined)
      throw new PipelineShapeError(
        `pipelines.${pipelineName}: ${k === p.cursor ? 'cursor' : 'key'} column "${k}" must be a copied source column (not excluded or computed); available: ${[...targetToSource.keys()].join(', ')}`,
      );
    return src;
  });
  if (p.softDeleteColumn && p.deletes !== 'soft' && !columns.includes(p.softDeleteColumn))
    throw new PipelineShapeError(`pipelines.${pipelineName}.softDeleteColumn: "${p.softDeleteColumn}" is not among the copied columns`);
  if (p.softDeleteColumn && p.deletes === 'soft' && columns.includes(p.softDeleteColumn))
    throw new PipelineShapeError(
      `pipelines.${pipelineName}.softDeleteColumn: with deletes: soft, "${p.softDeleteColumn}" marks target rows whose key left the source, so it must not be copied from the source too; exclude it under transform.exclude or name another target column`,
    );
  return { select, columns, sourceOrder, order };
}

/**
 * The plan without `leaveOut` columns, plus `nullColumns` written as NULL (columns the source
 * dropped that the target keeps; see src/sync/schemaChanges.ts).
 */
export function adjustPlan(plan: ColumnPlan, leaveOut: string[], nullColumns: string[]): ColumnPlan {
  if (leaveOut.length === 0 && nullColumns.length === 0) return plan;
  const keep = plan.columns.map((c) => !leaveOut.includes(c));
  return {
    ...plan,
    select: [...plan.select.filter((_, i) => keep[i]), ...nullColumns.map((c) => `NULL AS ${quoteIdent(c)}`)],
    columns: [...plan.columns.filter((_, i) => keep[i]), ...nullColumns],
  };
}

/** A literal that PostgreSQL coerces to the compared column's type; E'' so backslashes are safe whatever the settings. */
export function cursorLiteral(value: string): string {
  if (value.includes('\0')) throw new IdentifierError('cursor value contains a NUL byte');
  return `E'${value.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function tuple(parts: string[]): string {
  return parts.length === 1 ? parts[0]! : `(${parts.join(', ')})`;
}

function orderTuple(plan: ColumnPlan): string {
  return tuple(plan.sourceOrder.map((c) => `src.${quoteIdent(c)}`));
}

/**
 * Which rows a chunk reads: after `after` in order and, for a partition, with the first order
 * column in [lower, upper). Bounds on one column keep every range an index range scan.
 */
export interface Slice {
  after: CursorValue[] | null;
  lower?: string | null;
  upper?: string | null;
}

function conditions(plan: ColumnPlan, slice: Slice): string[] {
  const out: string[] = [];
  if (plan.sourceOrder.length === 0) return out;
  const first = `src.${quoteIdent(plan.sourceOrder[0]!)}`;
  if (slice.after) out.push(`${orderTuple(plan)} > ${tuple(slice.after.map((x) => (x === null ? 'NULL' : cursorLiteral(x))))}`);
  if (slice.lower != null) out.push(`${first} >= ${cursorLiteral(slice.lower)}`);
  if (slice.upper != null) out.push(`${first} < ${cursorLiteral(slice.upper)}`);
  return out;
}

function where(plan: ColumnPlan, slice: Slice): string {
  const c = conditions(plan, slice);
  return c.length ? ` WHERE ${c.join(' AND ')}` : '';
}

/** Planner's estimate of the rows still to copy (cheap, for progress, ETA and partition count only). */
export function estimateSql(p: PipelineConfig, plan: ColumnPlan, slice: Slice): string {
  return `EXPLAIN (FORMAT JSON) SELECT 1 FROM ${sourceRelation(p)}${where(plan, slice)}`;
}

/**
 * Values of the first order column that split the rows after `after` into equal parts, read from
 * a page sample of a table (TABLESAMPLE needs no statistics, so a freshly loaded table splits
 * well too) or from the whole result of a source query.
 */
export function splitPointsSql(p: PipelineConfig, plan: ColumnPlan, after: CursorValue[] | null, parts: number, samplePercent: number): string {
  const first = `src.${quoteIdent(plan.sourceOrder[0]!)}`;
  const fractions = Array.from({ length: parts - 1 }, (_, i) => ((i + 1) / parts).toFixed(6)).join(', ');
  const sample = p.source.table && samplePercent < 100 ? ` TABLESAMPLE SYSTEM (${samplePercent.toFixed(4)})` : '';
  return (
    `SELECT (percentile_disc(ARRAY[${fractions}]::float8[]) WITHIN GROUP (ORDER BY ${first}))::text[] AS points ` +
    `FROM ${sourceRelation(p)}${sample}${where(plan, { after })}`
  );
}

/**
 * COPY of one chunk: the next `rows` rows of the slice in order. The stream's last row carries
 * the chunk's cursor, so no separate boundary query is needed. Literals are inlined (COPY takes
 * no bind parameters).
 */
export function copyOutSql(p: PipelineConfig, plan: ColumnPlan, slice: Slice, rows: number): string {
  const order = plan.sourceOrder.map((c) => `src.${quoteIdent(c)}`).join(', ');
  if (p.key.length === 0) {
    // A cursor without a key is no unique order: the chunk ends after every row tied with its
    // last one, so a cursor value is never split across chunks (a chunk may exceed `rows`).
    const first = `src.${quoteIdent(plan.sourceOrder[0]!)}`;
    const edge = `(SELECT ${first} FROM ${sourceRelation(p)}${where(plan, slice)} ORDER BY ${first} OFFSET ${Math.trunc(rows) - 1} LIMIT 1)`;
    const c = [...conditions(plan, slice), `${first} <= COALESCE(${edge}, ${first})`];
    return `COPY (SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)} WHERE ${c.join(' AND ')} ORDER BY ${order}) TO STDOUT`;
  }
  return `COPY (SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)}${where(plan, slice)} ORDER BY ${order} LIMIT ${Math.trunc(rows)}) TO STDOUT`;
}

/**
 * A keyless table's rows on heap pages [from, to) (to null: to the end), read as a TID range
 * scan without sorting. Page ranges are exact while the table is not rewritten, which is what a
 * full refresh of a table without a key can rely on.
 */
export function copyPagesSql(p: PipelineConfig, plan: ColumnPlan, from: number, to: number | null): string {
  const range = [`src.ctid >= '(${Math.trunc(from)},0)'::tid`, ...(to === null ? [] : [`src.ctid < '(${Math.trunc(to)},0)'::tid`])];
  return `COPY (SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)} WHERE ${range.join(' AND ')}) TO STDOUT`;
}

export function copyInSql(table: string, columns: string[]): string {
  return `COPY ${table} (${columns.map((c) => quoteIdent(c)).join(', ')}) FROM STDIN`;
}

/** Session-local staging table shaped like the target's copied columns; gone at commit. */
export function createStageSql(stage: string, target: string, columns: string[]): string {
  return `CREATE TEMP TABLE ${stage} ON COMMIT DROP AS SELECT ${columns.map((c) => quoteIdent(c)).join(', ')} FROM ${quoteTable(target)} WITH NO DATA`;
}

/**
 * Merge a staged chunk into the target. upsert: insert or update changed rows on the key (compared
 * as text: json and point have no equality); append: insert (the state table makes it exactly-once).
 * With a soft-delete column, rows whose marker is set are deleted from the target instead.
 */
export function mergeSql(opts: {
  target: string;
  stage: string;
  columns: string[];
  key: string[];
  mode: 'append' | 'upsert';
  softDeleteColumn?: string;
  /** deletes: soft — the target column marking rows whose key left the source; a row that comes back is unmarked. */
  deleteMarker?: string;
}): string[] {
  const { target, stage, columns, key, mode, softDeleteColumn, deleteMarker } = opts;
  const t = quoteTable(target);
  const cols = columns.map((c) => quoteIdent(c));
  const live = softDeleteColumn ? ` WHERE s.${quoteIdent(softDeleteColumn)} IS NULL` : '';
  const statements: string[] = [];
  if (softDeleteColumn) {
    const on = key.map((k) => `t.${quoteIdent(k)} = s.${quoteIdent(k)}`).join(' AND ');
    statements.push(`DELETE FROM ${t} AS t USING ${stage} AS s WHERE ${on} AND s.${quoteIdent(softDeleteColumn)} IS NOT NULL`);
  }
  const insert = `INSERT INTO ${t} AS t (${cols.join(', ')}) SELECT ${cols.map((c) => `s.${c}`).join(', ')} FROM ${stage} AS s${live}`;
  if (mode === 'append') {
    statements.push(insert);
    return statements;
  }
  const nonKey = columns.filter((c) => !key.includes(c));
  const conflict = `ON CONFLICT (${key.map((k) => quoteIdent(k)).join(', ')})`;
  const unmark = deleteMarker ? `t.${quoteIdent(deleteMarker)} IS NOT NULL` : undefined;
  if (nonKey.length === 0) {
    statements.push(unmark ? `${insert} ${conflict} DO UPDATE SET ${quoteIdent(deleteMarker!)} = NULL WHERE ${unmark}` : `${insert} ${conflict} DO NOTHING`);
    return statements;
  }
  const set = [...nonKey.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`), ...(deleteMarker ? [`${quoteIdent(deleteMarker)} = NULL`] : [])].join(', ');
  const changed = `ROW(${nonKey.map((c) => `t.${quoteIdent(c)}::text`).join(', ')}) IS DISTINCT FROM ROW(${nonKey
    .map((c) => `EXCLUDED.${quoteIdent(c)}::text`)
    .join(', ')})`;
  statements.push(`${insert} ${conflict} DO UPDATE SET ${set} WHERE ${unmark ? `${changed} OR ${unmark}` : changed}`);
  return statements;
}

/** COPY of every source row (no cursor, no slice): what a backfill of columns added to the target reads. */
export function wholeCopyOutSql(p: PipelineConfig, select: string[]): string {
  return `COPY (SELECT ${select.join(', ')} FROM ${sourceRelation(p)}) TO STDOUT`;
}

/**
 * Fills columns just added to `table` (NULL in every row) from `stage`, matched on `match`: the
 * key (an index join), or for a keyless pipeline every other copied column by its text (equal
 * rows are interchangeable). Only rows that gain a value are written.
 */
export function backfillSql(table: string, stage: string, match: string[], added: string[], byKey: boolean): string {
  const on = byKey
    ? match.map((c) => `t.${quoteIdent(c)} = s.${quoteIdent(c)}`).join(' AND ')
    : `ROW(${match.map((c) => `t.${quoteIdent(c)}`).join(', ')})::text = ROW(${match.map((c) => `s.${quoteIdent(c)}`).join(', ')})::text`;
  const set = added.map((c) => `${quoteIdent(c)} = s.${quoteIdent(c)}`).join(', ');
  const gains = added.map((c) => `s.${quoteIdent(c)} IS NOT NULL`).join(' OR ');
  return `UPDATE ${table} AS t SET ${set} FROM ${stage} AS s WHERE ${on} AND (${gains})`;
}
