// The independent oracle: reads both tables itself (no product code), each row as the text of
// every column under fixed session settings, ordered by key under COLLATE "C", and compares them
// with the divergence each mode allows (a soft delete keeps and flags the row; append keeps history).
import pg from 'pg';
import type { Mode } from './case';

export const CANONICAL_SETTINGS = `SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; SET extra_float_digits = 3; SET bytea_output = 'hex'`;

export interface TableRead {
  /** column name → format_type plus collation, for the type check. */
  types: Map<string, string>;
  /** JSON of the key values (text) → JSON of all compared columns (text), one entry per row (duplicates kept). */
  rows: { key: string; row: string; rev: string; marked: boolean }[];
}

const q = (n: string) => `"${n.replace(/"/g, '""')}"`;

export async function readTable(db: pg.ClientBase, table: string, columns: string[], key: string[], softColumn?: string): Promise<TableRead | null> {
  await db.query(CANONICAL_SETTINGS);
  const t = await db.query<{ attname: string; t: string }>(
    `SELECT a.attname, format_type(a.atttypid, a.atttypmod) || coalesce(' COLLATE ' || nullif(c.collname, 'default'), '') AS t
       FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation
      WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`,
    [table],
  );
  if (!t.rows.length) return null;
  const types = new Map(t.rows.map((r) => [r.attname, r.t]));
  const keyText = `json_build_array(${key.map((k) => `${q(k)}::text`).join(', ')})::text`;
  const rowText = `json_build_array(${columns.map((c) => (types.has(c) ? `${q(c)}::text` : `'<missing column>'`)).join(', ')})::text`;
  const marked = softColumn && types.has(softColumn) ? `${q(softColumn)} IS NOT NULL` : 'false';
  const r = await db.query<{ key: string; row: string; rev: string; marked: boolean }>(
    `SELECT ${keyText} AS key, ${rowText} AS row, rev::text AS rev, ${marked} AS marked FROM ${table} ORDER BY ${key.map((k) => `${q(k)}::text COLLATE "C"`).join(', ')}, rev`,
  );
  return { types, rows: r.rows };
}

export interface OracleResult {
  rowsCompared: number;
  lost: number;
  duplicated: number;
  differing: number;
  extra: number;
  problems: string[];
}

export const oracleOk = (r: OracleResult): boolean => r.problems.length === 0;

/** Compares a source read and a target read under the mode's rules. `everSynced`: keys present at some finished sync (soft deletes); `keyCollationOwn`: the target's key columns may collate differently. */
export function compareReads(mode: Mode, src: TableRead, tgt: TableRead | null, columns: string[], everSynced?: Set<string>, keyCollationOwn = false): OracleResult {
  const res: OracleResult = { rowsCompared: src.rows.length, lost: 0, duplicated: 0, differing: 0, extra: 0, problems: [] };
  const show = (s: string) => (s.length > 160 ? `${s.slice(0, 160)}…` : s);
  if (!tgt) {
    res.lost = src.rows.length;
    res.problems.push('target table missing');
    return res;
  }
  for (const c of columns) {
    // A target the user made may give the key its own collation; the types must still match.
    const own = (t: string | undefined) => (keyCollationOwn && c.startsWith('k_') ? t?.replace(/ COLLATE .*$/, '') : t);
    const a = own(src.types.get(c));
    const b = own(tgt.types.get(c));
    if (a !== b) res.problems.push(`column ${c}: source type ${a ?? '(none)'}, target ${b ?? '(none)'}`);
  }
  const note = (kind: string, detail: string) => {
    if (res.problems.length < 12) res.problems.push(`${kind}: ${show(detail)}`);
  };
  if (mode === 'append') return compareAppend(src, tgt, columns, res, note);
  const byKey = new Map<string, TableRead['rows']>();
  for (const r of tgt.rows) byKey.set(r.key, [...(byKey.get(r.key) ?? []), r]);
  const srcKeys = new Set(src.rows.map((r) => r.key));
  for (const s of src.rows) {
    const t = byKey.get(s.key) ?? [];
    const live = t.filter((r) => !r.marked);
    if (!live.length) {
      res.lost++;
      note(t.length ? 'lost (marked deleted)' : 'lost', s.key);
      continue;
    }
    if (live.length > 1) {
      res.duplicated += live.length - 1;
      note('duplicated', `${s.key} ×${live.length}`);
    }
    if (live[0]!.row !== s.row) {
      res.differing++;
      note('differs', `${s.key}: ${columnDiff(columns, s.row, live[0]!.row)}`);
    }
  }
  for (const [key, rows] of byKey) {
    if (srcKeys.has(key)) continue;
    if (mode === 'upsert-soft') {
      const unmarked = rows.filter((r) => !r.marked);
      if (unmarked.length) {
        res.extra += unmarked.length;
        note('deleted in the source, not marked in the target', key);
      }
      continue;
    }
    res.extra += rows.length;
    note('extra', key);
  }
  if (mode === 'upsert-soft' && everSynced) {
    for (const key of everSynced) {
      if (srcKeys.has(key)) continue;
      if (!byKey.get(key)?.some((r) => r.marked)) {
        res.lost++;
        note('soft delete lost (synced once, deleted in the source, not kept and marked)', key);
      }
    }
  }
  return res;
}

/** append keeps history: each current source version (key, rev) exactly once and equal; older versions may stay, each once. */
function compareAppend(src: TableRead, tgt: TableRead, columns: string[], res: OracleResult, note: (kind: string, detail: string) => void): OracleResult {
  const versions = new Map<string, TableRead['rows']>();
  for (const r of tgt.rows) {
    const v = `${r.key} rev ${r.rev}`;
    versions.set(v, [...(versions.get(v) ?? []), r]);
  }
  for (const [v, rows] of versions) {
    if (rows.length > 1) {
      res.duplicated += rows.length - 1;
      note('duplicated', `${v} ×${rows.length}`);
    }
  }
  for (const s of src.rows) {
    const same = versions.get(`${s.key} rev ${s.rev}`);
    if (!same) {
      res.lost++;
      note('lost', `${s.key} rev ${s.rev}`);
    } else if (same[0]!.row !== s.row) {
      res.differing++;
      note('differs', `${s.key}: ${columnDiff(columns, s.row, same[0]!.row)}`);
    }
  }
  return res;
}

/** Which columns differ, each value cut short: `c3_toast: source "Ltq0…" (4711 chars) target null`. */
function columnDiff(columns: string[], a: string, b: string): string {
  const x = JSON.parse(a) as (string | null)[];
  const y = JSON.parse(b) as (string | null)[];
  const v = (s: string | null | undefined) => (s === null || s === undefined ? 'null' : s.length > 40 ? `${JSON.stringify(s.slice(0, 40))}… (${s.length} chars)` : JSON.stringify(s));
  return columns.flatMap((c, i) => (x[i] === y[i] ? [] : [`${c}: source ${v(x[i])} target ${v(y[i])}`])).join('; ');
}
