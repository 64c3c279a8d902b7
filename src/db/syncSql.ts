import type { PipelineConfig } from '../config/schema';
import { quoteIdent, quoteTable } from './identifiers';

/** How a pipeline's source columns map to target columns; built from the source's real column list. */
export interface ColumnPlan {
  /** SELECT list entries, in output order. */
  select: string[];
  /** Output (target) column names, same order. */
  columns: string[];
  /** Source column names used for keyset paging, in key order. */
  sourceKey: string[];
  /** Index in `columns` of each key column. */
  keyIndex: number[];
}

export class PipelineShapeError extends Error {
  override name = 'PipelineShapeError';
}

export function sourceRelation(p: PipelineConfig): string {
  if (p.source.query) return `(${p.source.query}) AS src`;
  return `${quoteTable(p.source.table!)} AS src`;
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
  const sourceKey = p.key.map((k) => {
    const src = targetToSource.get(k);
    if (src === undefined)
      throw new PipelineShapeError(
        `pipelines.${pipelineName}.key: key column "${k}" must be a copied source column (not excluded or computed); available: ${[...targetToSource.keys()].join(', ')}`,
      );
    return src;
  });
  return { select, columns, sourceKey, keyIndex: p.key.map((k) => columns.indexOf(k)) };
}

/** Keyset page: rows strictly after `after` in key order. Parameters are the `after` values. */
export function keysetSelect(p: PipelineConfig, plan: ColumnPlan, hasAfter: boolean, limit: number): string {
  const keys = plan.sourceKey.map((k) => `src.${quoteIdent(k)}`);
  const where = !hasAfter
    ? ''
    : keys.length === 1
      ? ` WHERE ${keys[0]} > $1`
      : ` WHERE (${keys.join(', ')}) > (${keys.map((_, i) => `$${i + 1}`).join(', ')})`;
  return `SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)}${where} ORDER BY ${keys.join(', ')} LIMIT ${Math.trunc(limit)}`;
}

/**
 * A multi-row upsert. Values are bound as text and typed by the target columns, so every
 * PostgreSQL type round-trips exactly. Unchanged rows are skipped, so a re-run writes nothing.
 */
export function upsertStatement(targetTable: string, columns: string[], key: string[], rowCount: number, mode: 'append' | 'upsert'): string {
  const cols = columns.map((c) => quoteIdent(c));
  const rows: string[] = [];
  for (let r = 0; r < rowCount; r++) {
    rows.push(`(${columns.map((_, c) => `$${r * columns.length + c + 1}`).join(', ')})`);
  }
  const conflict = `(${key.map((k) => quoteIdent(k)).join(', ')})`;
  const nonKey = columns.filter((c) => !key.includes(c));
  const head = `INSERT INTO ${quoteTable(targetTable)} AS t (${cols.join(', ')}) VALUES ${rows.join(', ')} ON CONFLICT ${conflict}`;
  if (mode === 'append' || nonKey.length === 0) return `${head} DO NOTHING`;
  const set = nonKey.map((c) => `${quoteIdent(c)} = EXCLUDED.${quoteIdent(c)}`).join(', ');
  // Compared as text: json, point and friends have no equality operator.
  const changed = `ROW(${nonKey.map((c) => `t.${quoteIdent(c)}::text`).join(', ')}) IS DISTINCT FROM ROW(${nonKey
    .map((c) => `EXCLUDED.${quoteIdent(c)}::text`)
    .join(', ')})`;
  return `${head} DO UPDATE SET ${set} WHERE ${changed}`;
}

/** PostgreSQL accepts at most 65535 bind parameters per statement. */
export const MAX_BIND_PARAMS = 65_535;
