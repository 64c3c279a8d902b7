// SQL text of the bucketed source/target compare behind delete detection and verify. Both sides
// are read as relations `v` whose columns carry the target's names, so one text serves either.
import { quoteIdent, quoteTable } from './identifiers';
import { cursorLiteral, type CursorValue } from './syncSql';

/** One side of a compare: a relation aliased `v` (columns named as in the target) and rows to leave out. */
export interface CompareSide {
  relation: string;
  /** Rows that do not take part (e.g. soft-deleted ones), as a condition on `v`. */
  exclude?: string;
  /** The bucket column's type on this side, for the bounds array. */
  bucketType: string;
  /**
   * The bucket column is text-like and this side does not already order it by bytes: its ranges,
   * sub-buckets and split points are taken under COLLATE "C", so both servers mean the same rows
   * by one bound whatever their collations (left off where not needed, so an index still serves).
   */
  collateC?: boolean;
}

export interface CompareShape {
  source: CompareSide;
  target: CompareSide;
  /** Target name of the column buckets are ranges of (first key column, else the cursor); null: one bucket, the whole table. */
  bucketColumn: string | null;
  /** Target key columns; empty for a keyless pipeline (differences are then told per range, not per key). */
  key: string[];
  /** Columns whose text goes into each row's hash; empty: rows are only counted. */
  hashColumns: string[];
  /** The row hash expression over hashColumns (rowHashSql), when both sides' column types are known. */
  rowHash?: string;
  /** Source rows ordered after this cursor (target names of the order columns) came after the sync: not counted as differences. */
  late?: { columns: string[]; after: CursorValue[] };
}

/** A range of the bucket column, [lower, upper); null ends are open. */
export interface KeyRange {
  lower: string | null;
  upper: string | null;
}

/** Session settings that make both servers print every type the same way, so row hashes compare. */
export const CANONICAL_TEXT_SETTINGS = [
  `SET LOCAL TimeZone = 'UTC'`,
  `SET LOCAL DateStyle = 'ISO, MDY'`,
  `SET LOCAL IntervalStyle = 'postgres'`,
  `SET LOCAL extra_float_digits = 1`,
  `SET LOCAL bytea_output = 'hex'`,
];

const col = (c: string) => `v.${quoteIdent(c)}`;

/** The bucket column on one side, ordered by bytes (see CompareSide.collateC). */
const bucketOf = (shape: CompareShape, side: CompareSide) => `${col(shape.bucketColumn!)}${side.collateC ? ' COLLATE "C"' : ''}`;

/** The source as the target sees it: the pipeline's select list (transforms applied, target names) over its relation. */
export const sourceSideSql = (select: string[], relation: string) => `(SELECT ${select.join(', ')} FROM ${relation}) AS v`;

export const targetSideSql = (table: string) => `${quoteTable(table)} AS v`;

/** The source side over a page sample of its table: where bucket split points are drawn from. */
export const sampledSourceSql = (select: string[], table: string, percent: number) =>
  `(SELECT ${select.join(', ')} FROM ${quoteTable(table)} AS src TABLESAMPLE SYSTEM (${percent.toFixed(4)})) AS v`;

/** No rows, only the columns' type OIDs in the result description (works for a query source too). */
export const columnTypesProbeSql = (relation: string, columns: string[]) => `SELECT ${columns.map(col).join(', ')} FROM ${relation} LIMIT 0`;

export const columnTypeProbeSql = (relation: string, column: string) => columnTypesProbeSql(relation, [column]);

/** Rows whose marker column is set (soft deletes). */
export const markedSql = (column: string) => `${col(column)} IS NOT NULL`;

/** Rows whose column is past a cursor value. */
export const pastCursorSql = (column: string, value: string) => `${col(column)} > ${lit(value)}`;

export const FORMAT_TYPE_SQL = `SELECT format_type($1, NULL) AS t`;

/** Whether a type (OID) takes a collation at all: COLLATE on any other is an error. */
export const COLLATABLE_TYPE_SQL = `SELECT typcollation <> 0 AS collatable FROM pg_type WHERE oid = $1`;

/**
 * How a text-like column of `relation` is ordered here (the subquery is typed, never run):
 * `bytes` when its collation is libc C or POSIX (its own, or the database default that is), and
 * otherwise the collation's provider, locale and the version its library reports now — two
 * servers whose columns agree on all three order them alike. Column names differ across
 * PostgreSQL 15–17 (colliculocale/colllocale, daticulocale/datlocale), hence to_jsonb.
 */
export const collationOrderSql = (relation: string, column: string) => {
  const dflt = 'c.oid = 100';
  const provider = `CASE WHEN ${dflt} THEN COALESCE(to_jsonb(d) ->> 'datlocprovider', 'c') ELSE c.collprovider::text END`;
  const locale =
    `CASE WHEN ${dflt} THEN COALESCE(to_jsonb(d) ->> 'daticulocale', to_jsonb(d) ->> 'datlocale', '') || '/' || d.datcollate ` +
    `ELSE COALESCE(to_jsonb(c) ->> 'colliculocale', to_jsonb(c) ->> 'colllocale', '') || '/' || COALESCE(c.collcollate, '') END`;
  return (
    `SELECT (c.collprovider = 'c' AND c.collcollate IN ('C', 'POSIX')) OR (${dflt} AND ${provider} = 'c' AND d.datcollate IN ('C', 'POSIX')) AS bytes, ` +
    `${provider} AS provider, ${locale} AS locale, ` +
    `CASE WHEN ${dflt} THEN pg_database_collation_actual_version(d.oid) ELSE pg_collation_actual_version(c.oid) END AS version ` +
    `FROM pg_collation c, pg_database d WHERE d.datname = current_database() ` +
    `AND c.oid = pg_collation_for((SELECT ${col(column)} FROM ${relation} WHERE false))::regcollation`
  );
};
const lit = (x: string) => cursorLiteral(x);

function rangeCondition(shape: CompareShape, side: CompareSide, r: KeyRange): string {
  const b = bucketOf(shape, side);
  const parts = [...(r.lower === null ? [] : [`${b} >= ${lit(r.lower)}`]), ...(r.upper === null ? [] : [`${b} < ${lit(r.upper)}`])];
  return parts.length ? `(${parts.join(' AND ')})` : 'true';
}

function conditions(shape: CompareShape, side: CompareSide, ranges: KeyRange[]): string[] {
  const c: string[] = [];
  if (shape.bucketColumn !== null && ranges.length) c.push(ranges.length === 1 ? rangeCondition(shape, side, ranges[0]!) : `(${ranges.map((r) => rangeCondition(shape, side, r)).join(' OR ')})`);
  if (side.exclude) c.push(`NOT (${side.exclude})`);
  return c;
}

function where(shape: CompareShape, side: CompareSide, ranges: KeyRange[], more: string[] = []): string {
  const c = [...conditions(shape, side, ranges), ...more];
  return c.length ? ` WHERE ${c.join(' AND ')}` : '';
}

/** A row's hash: 64 bits of its columns' text (equal rows hash equal on both servers under CANONICAL_TEXT_SETTINGS). */
function rowHash(shape: CompareShape): string {
  if (!shape.hashColumns.length) return '0::bigint';
  return shape.rowHash ?? `hashtextextended(ROW(${shape.hashColumns.map(col).join(', ')})::text, 0)`;
}


/**
 * Built-in types (fixed OIDs on every server) whose hash function is the value's exact equality,
 * so a value hashed here cannot pass for another one. Not numeric (1.0 and 1.00 hash alike), not
 * float (-0 and 0), interval ('1 day' and '24 hours'), jsonb (its numbers), nor enums (their label
 * OIDs differ per server): those go through their text. Text under COLLATE "C": bytes, whatever
 * the column's own collation; char(n) as PostgreSQL compares it, trailing blanks aside.
 * timestamptz as the instant (the compare's sessions run in UTC, where the cast is one to one).
 */
const EXACT_HASH: Record<number, (x: string, seed: number) => string> = {
  20: (x, seed) => `hashint8extended(${x}, ${seed})`,
  21: (x, seed) => `hashint2extended(${x}, ${seed})`,
  23: (x, seed) => `hashint4extended(${x}, ${seed})`,
  25: (x, seed) => `hashtextextended(${x} COLLATE "C", ${seed})`,
  1042: (x, seed) => `hashbpcharextended(${x} COLLATE "C", ${seed})`,
  1043: (x, seed) => `hashtextextended(${x}::text COLLATE "C", ${seed})`,
  1114: (x, seed) => `timestamp_hash_extended(${x}, ${seed})`,
  1184: (x, seed) => `timestamp_hash_extended(${x}::timestamp, ${seed})`,
  2950: (x, seed) => `uuid_hash_extended(${x}, ${seed})`,
};

/**
 * The row hash when each column's type is known on both sides: a column of the same exact-hash
 * type on both is hashed as a value (no text output: most of a compare's CPU), the rest together
 * as their row text, as before. Each part has its own seed, so the XOR of the parts depends on
 * which column holds which value; NULL hashes to the seed.
 */
export function rowHashSql(columns: string[], sourceTypes: number[], targetTypes: number[]): string {
  const parts: string[] = [];
  const text: string[] = [];
  columns.forEach((c, i) => {
    const exact = sourceTypes[i] === targetTypes[i] ? EXACT_HASH[sourceTypes[i]!] : undefined;
    if (exact) parts.push(`COALESCE(${exact(col(c), i + 1)}, ${i + 1})`);
    else text.push(col(c));
  });
  if (text.length) parts.push(`hashtextextended(ROW(${text.join(', ')})::text, 0)`);
  return parts.length === 1 ? parts[0]! : `(${parts.join(' # ')})`;
}

/** Every `every`-th value of the bucket column within `range`, in order: lower bounds of sub-buckets of about `every` rows. */
export function subBoundsSql(shape: CompareShape, range: KeyRange, every: number): string {
  const b = col(shape.bucketColumn!);
  return (
    `SELECT x.b::text AS b FROM (SELECT ${b} AS b, row_number() OVER (ORDER BY ${bucketOf(shape, shape.source)}) AS rn FROM ${shape.source.relation}` +
    `${where(shape, shape.source, [range])}) x WHERE (x.rn - 1) % ${Math.max(1, Math.trunc(every))} = 0 AND x.rn > 1 ORDER BY x.rn`
  );
}

/** The least and greatest bucket column value of the source within `range` (two index probes where the column leads an index). */
export function bucketExtentSql(shape: CompareShape, range: KeyRange): string {
  const b = col(shape.bucketColumn!);
  return `SELECT min(${b})::text AS lo, max(${b})::text AS hi FROM ${shape.source.relation}${where(shape, shape.source, [range])}`;
}

/**
 * The planner cannot estimate how few groups width_bucket makes, so it sorts every row (on disk
 * beyond work_mem); a hash of some 64 groups fits in kilobytes. Around the digest only.
 */
export const HASH_DIGEST = { before: 'SET LOCAL enable_sort = off', after: 'SET LOCAL enable_sort = on' };

/** A row's sub-bucket: 0 below the first bound, i from bound i on. */
function subBucketOf(shape: CompareShape, side: CompareSide, bounds: string[]): string {
  return shape.bucketColumn !== null && bounds.length ? `width_bucket(${bucketOf(shape, side)}, ARRAY[${bounds.map(lit).join(', ')}]::${side.bucketType}[])` : '0';
}

/** Rows of `range` in the sub-buckets `ids` (over `bounds`): one range scan, filtered, however many sub-buckets. */
function inSubBuckets(shape: CompareShape, side: CompareSide, range: KeyRange, bounds: string[], ids: number[]): string[] {
  return [...conditions(shape, side, [range]), `${subBucketOf(shape, side, bounds)} = ANY('{${ids.map((x) => Math.trunc(x)).join(',')}}'::int[])`];
}

/**
 * Per sub-bucket (width_bucket over `bounds`: 0 below the first bound, i from bound i on) the row
 * count and the sum of row hashes — an order-independent digest the other side must match.
 */
export function bucketDigestSql(shape: CompareShape, side: CompareSide, range: KeyRange, bounds: string[]): string {
  const bucket = subBucketOf(shape, side, bounds);
  const hash = shape.hashColumns.length ? `COALESCE(sum(${rowHash(shape)}), 0)::text` : `'0'`;
  return `SELECT ${bucket} AS b, count(*)::text AS n, ${hash} AS h FROM ${side.relation}${where(shape, side, [range])} GROUP BY 1`;
}

/** Split points of the bucket column over a sample (or all) of the source: bounds of top-level buckets. */
export function bucketSplitSql(shape: CompareShape, sampledSource: string, parts: number): string {
  const fractions = Array.from({ length: parts - 1 }, (_, i) => ((i + 1) / parts).toFixed(6)).join(', ');
  return (
    `SELECT (percentile_disc(ARRAY[${fractions}]::float8[]) WITHIN GROUP (ORDER BY ${bucketOf(shape, shape.source)}))::text[] AS points ` +
    `FROM ${sampledSource}${where(shape, shape.source, [])}`
  );
}

export const LEAF_TABLE = 'lbw_compare';
const HASH = '__lbw_hash';
const LATE = '__lbw_late';
const KIND = '__lbw_kind';
const TOLERATED = '__lbw_tolerated';

/** A session-local table on the target for the source side of differing sub-buckets: keys, row hash, and whether the row came after the sync. */
export function leafTableSql(shape: CompareShape): string {
  return (
    `CREATE TEMP TABLE ${LEAF_TABLE} ON COMMIT DROP AS SELECT ${shape.key.map(col).join(', ')}, 0::bigint AS ${HASH}, false AS ${LATE} ` +
    `FROM ${shape.target.relation} WITH NO DATA`
  );
}

function lateCondition(shape: CompareShape): string {
  const late = shape.late;
  if (!late || late.after.some((x) => x === null)) return 'false';
  const tuple = (xs: string[]) => (xs.length === 1 ? xs[0]! : `ROW(${xs.join(', ')})`);
  return `${tuple(late.columns.map(col))} > ${tuple(late.after.map((x) => lit(x!)))}`;
}

/** Statistics on the leaf table, so the join against the target hashes instead of sorting both sides to disk. */
export const analyzeLeafSql = () => `ANALYZE ${LEAF_TABLE}`;

export function leafCopyOutSql(shape: CompareShape, ranges: KeyRange[]): string {
  return `COPY (SELECT ${shape.key.map(col).join(', ')}, ${rowHash(shape)}, ${lateCondition(shape)} FROM ${shape.source.relation}${where(shape, shape.source, ranges)}) TO STDOUT`;
}

export function leafCopyInSql(shape: CompareShape): string {
  return `COPY ${LEAF_TABLE} (${[...shape.key.map((k) => quoteIdent(k)), HASH, LATE].join(', ')}) FROM STDIN`;
}

const keyMatch = (shape: CompareShape, a: string, b: string) => shape.key.map((k) => `${a}.${quoteIdent(k)} = ${b}.${quoteIdent(k)}`).join(' AND ');

/** Target rows of `ranges` whose key the source no longer has (the leaf table holds the source's keys of those ranges). */
function goneFromSource(shape: CompareShape, ranges: KeyRange[]): string {
  return where(shape, shape.target, ranges, [`NOT EXISTS (SELECT 1 FROM ${LEAF_TABLE} s WHERE ${keyMatch(shape, 's', 'v')})`]);
}

export function deleteGoneSql(shape: CompareShape, table: string, ranges: KeyRange[]): string {
  return `DELETE FROM ${table} AS v${goneFromSource(shape, ranges)}`;
}

/** deletes: soft — `value` is now() for a timestamp column, true for a boolean one. */
export function markGoneSql(shape: CompareShape, table: string, ranges: KeyRange[], marker: string, value: string): string {
  return `UPDATE ${table} AS v SET ${quoteIdent(marker)} = ${value}${goneFromSource(shape, ranges)}`;
}

/**
 * Rows of `ranges` that differ: in the source only ('missing'), in the target only ('extra'), or
 * with other values ('differs'); `tolerated` when the row came after the sync, or (extraOk) when
 * the pipeline keeps rows deleted in the source. Ordered by key, so the first ones are named.
 */
export function leafDiffSql(shape: CompareShape, ranges: KeyRange[], extraOk: boolean): string {
  const k0 = quoteIdent(shape.key[0]!);
  const keys = shape.key.map((k) => quoteIdent(k));
  const hashDiffers = shape.hashColumns.length ? ` OR s.${HASH} <> t.${HASH}` : '';
  return (
    `WITH t AS (SELECT ${shape.key.map(col).join(', ')}, ${rowHash(shape)} AS ${HASH} FROM ${shape.target.relation}${where(shape, shape.target, ranges)}), ` +
    `d AS (SELECT ${keys.map((k) => `COALESCE(s.${k}, t.${k}) AS ${k}`).join(', ')}, ` +
    `CASE WHEN t.${k0} IS NULL THEN 'missing' WHEN s.${k0} IS NULL THEN 'extra' ELSE 'differs' END AS ${KIND}, COALESCE(s.${LATE}, false) AS ${LATE} ` +
    `FROM ${LEAF_TABLE} s FULL JOIN t ON ${keyMatch(shape, 's', 't')} WHERE s.${k0} IS NULL OR t.${k0} IS NULL${hashDiffers}), ` +
    `c AS (SELECT d.*, (${LATE} AND ${KIND} <> 'extra') OR (${extraOk} AND ${KIND} = 'extra') AS ${TOLERATED} FROM d) ` +
    `SELECT ${KIND} AS kind, ${TOLERATED} AS tolerated, ` +
    `count(*) FILTER (WHERE NOT ${TOLERATED}) OVER ()::text AS mismatches, count(*) FILTER (WHERE ${TOLERATED}) OVER ()::text AS tolerated_rows, ` +
    `json_build_array(${keys.map((k) => `${k}::text`).join(', ')})::text AS key FROM c ORDER BY ${TOLERATED}, ${keys.join(', ')} LIMIT 10`
  );
}

/** A typed array literal of text values (COPY takes no bind parameters). */
function arrayLiteral(values: (string | null)[], type: string): string {
  const items = values.map((x) => (x === null ? 'NULL' : `"${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`));
  return `${lit(`{${items.join(',')}}`)}::${type}[]`;
}

/**
 * COPY of the source rows with these keys (`keyTypes`: the source's key column types), in target
 * column names; within `scope` too, so a composite key's match scans one range, not the table.
 */
export function keyedRowsCopyOutSql(shape: CompareShape, columns: string[], keyTypes: string[], keys: (string | null)[][], scope: CompareScope): string {
  const arrays = shape.key.map((_, i) => arrayLiteral(keys.map((k) => k[i] ?? null), keyTypes[i]!));
  const match =
    shape.key.length === 1 ? `${col(shape.key[0]!)} = ANY(${arrays[0]})` : `(${shape.key.map(col).join(', ')}) IN (SELECT * FROM unnest(${arrays.join(', ')}))`;
  return `COPY (SELECT ${columns.map(col).join(', ')} FROM ${shape.source.relation} WHERE ${[...scopeConditions(shape, shape.source, scope), match].join(' AND ')}) TO STDOUT`;
}

/**
 * Which rows a re-sync narrows to keys: whole key ranges, or the sub-buckets `ids` (over `bounds`)
 * of one range — the differing ones of a digest, read by one range scan however many they are.
 */
export type CompareScope = { ranges: KeyRange[] } | { range: KeyRange; bounds: string[]; ids: number[] };

function scopeConditions(shape: CompareShape, side: CompareSide, scope: CompareScope): string[] {
  const c = 'ids' in scope ? inSubBuckets(shape, side, scope.range, scope.bounds, scope.ids) : conditions(shape, side, scope.ranges);
  return c.length ? c : ['true'];
}

/** COPY of every source row of `scope`, in target column names (where most of its rows changed). */
export function scopedRowsCopyOutSql(shape: CompareShape, columns: string[], scope: CompareScope): string {
  return `COPY (SELECT ${columns.map(col).join(', ')} FROM ${shape.source.relation} WHERE ${scopeConditions(shape, shape.source, scope).join(' AND ')}) TO STDOUT`;
}

/** COPY of the source's keys and row hashes of `scope`, for the leaf table. */
export function scopedLeafCopyOutSql(shape: CompareShape, scope: CompareScope): string {
  return `COPY (SELECT ${shape.key.map(col).join(', ')}, ${rowHash(shape)}, ${lateCondition(shape)} FROM ${shape.source.relation} WHERE ${scopeConditions(shape, shape.source, scope).join(' AND ')}) TO STDOUT`;
}

export const CHANGED_TABLE = 'lbw_changed';
const GONE = '__lbw_gone';
const CHANGED_KEYS = 'lbw_changed_keys';

/**
 * Re-sync: the keys of `scope` that differ, into a session table on the target — the leaf table
 * (the source's keys and row hashes there) joined with the target's rows there on the key: `gone`
 * for target keys the source no longer has, else keys the target lacks or holds with other values.
 * Equality on the key, never an order, so the two servers' collations do not matter.
 */
export function changedTableSql(shape: CompareShape, scope: CompareScope): string {
  const k0 = quoteIdent(shape.key[0]!);
  const keys = shape.key.map((k) => quoteIdent(k));
  return (
    `CREATE TEMP TABLE ${CHANGED_TABLE} ON COMMIT DROP AS ` +
    `WITH t AS (SELECT ${shape.key.map(col).join(', ')}, ${rowHash(shape)} AS ${HASH} FROM ${shape.target.relation} WHERE ${scopeConditions(shape, shape.target, scope).join(' AND ')}) ` +
    `SELECT s.${k0} IS NULL AS ${GONE}, ${keys.map((k) => `COALESCE(s.${k}, t.${k}) AS ${k}`).join(', ')} ` +
    `FROM ${LEAF_TABLE} s FULL JOIN t ON ${keyMatch(shape, 's', 't')} WHERE s.${k0} IS NULL OR t.${k0} IS NULL OR s.${HASH} <> t.${HASH}`
  );
}

export const changedCountsSql = () => `SELECT count(*) FILTER (WHERE ${GONE})::int AS gone, count(*) FILTER (WHERE NOT ${GONE})::int AS copy FROM ${CHANGED_TABLE}`;

/** The changed (not gone) keys as text arrays, read in batches (FETCH_CHANGED_KEYS): memory stays at one batch. */
export const declareChangedKeysSql = (shape: CompareShape) =>
  `DECLARE ${CHANGED_KEYS} NO SCROLL CURSOR FOR SELECT ARRAY[${shape.key.map((k) => `${quoteIdent(k)}::text`).join(', ')}] AS key FROM ${CHANGED_TABLE} WHERE NOT ${GONE} ORDER BY ${shape.key.map((k) => quoteIdent(k)).join(', ')}`;
export const fetchChangedKeysSql = (n: number) => `FETCH ${Math.max(1, Math.trunc(n))} FROM ${CHANGED_KEYS}`;
export const closeChangedKeysSql = () => `CLOSE ${CHANGED_KEYS}`;

/** Target rows whose key the changed table has as gone from the source. */
export const deleteChangedGoneSql = (shape: CompareShape, table: string) =>
  `DELETE FROM ${table} AS v USING ${CHANGED_TABLE} c WHERE c.${GONE} AND ${keyMatch(shape, 'c', 'v')}`;
