// The bucketed compare of a pipeline's source and target, shared by delete detection and verify:
// key ranges are digested (row count + sum of row hashes) on both sides, sub-ranges that differ
// are the only ones whose rows move — streamed into a session table on the target, never held here.
import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { estimateRows, tablePages } from '../db/catalog';
import {
  analyzeLeafSql,
  bucketDigestSql,
  bucketExtentSql,
  bucketSplitSql,
  CANONICAL_TEXT_SETTINGS,
  collationOrderSql,
  COLLATABLE_TYPE_SQL,
  columnTypeProbeSql,
  columnTypesProbeSql,
  FORMAT_TYPE_SQL,
  HASH_DIGEST,
  leafCopyInSql,
  leafCopyOutSql,
  leafTableSql,
  markedSql,
  pastCursorSql,
  rowHashSql,
  sampledSourceSql,
  sourceSideSql,
  subBoundsSql,
  targetSideSql,
  type CompareShape,
  type KeyRange,
} from '../db/compareSql';
import { relayCopy } from '../db/copyFrames';
import { sourceRelation, type CursorValue } from '../db/syncSql';
import { withTransaction, type Transaction } from '../db/transaction';
import { columnPlan, type CallContext } from './context';
import type { ResolvedRun } from './run';


/** What a compare looks at: keys only (delete detection), row counts, or counts and row checksums. */
export type ComparePurpose = 'deletes' | 'counts' | 'checksums';

/** Sub-buckets per bucket: a differing bucket moves about 1/64 of its rows per differing sub-bucket. */
const SUB_BUCKETS = 64;
/** Top-level buckets are activities; more than this would only grow the workflow's history. */
const MAX_BUCKETS = 256;
const MIN_LEAF_ROWS = 200;
const SAMPLE_ROWS = 50_000;

export async function typeOf(c: pg.ClientBase, relation: string, column: string): Promise<string> {
  const field = (await c.query(columnTypeProbeSql(relation, column))).fields[0]!;
  return (await c.query<{ t: string }>(FORMAT_TYPE_SQL, [field.dataTypeID])).rows[0]!.t;
}

/** One side's bucket column: its type and, for a type with collations, how this server orders it. */
interface BucketSide {
  bucketType: string;
  /** null: the type has no collation; `bytes`: already in byte order; otherwise an identity other servers must match. */
  order: null | 'bytes' | { identity: string | null };
}

async function bucketSide(c: pg.ClientBase, relation: string, column: string): Promise<BucketSide> {
  const field = (await c.query(columnTypeProbeSql(relation, column))).fields[0]!;
  const bucketType = (await c.query<{ t: string }>(FORMAT_TYPE_SQL, [field.dataTypeID])).rows[0]!.t;
  if (!(await c.query<{ collatable: boolean }>(COLLATABLE_TYPE_SQL, [field.dataTypeID])).rows[0]?.collatable) return { bucketType, order: null };
  const r = (await c.query<{ bytes: boolean; provider: string; locale: string; version: string | null }>(collationOrderSql(relation, column))).rows[0];
  if (!r) return { bucketType, order: { identity: null } };
  if (r.bytes) return { bucketType, order: 'bytes' };
  // Without a version only C.* locales (code point order, which PostgreSQL leaves unversioned) can be matched.
  const unversionedOk = /(^|\/)C\./i.test(r.locale);
  return { bucketType, order: { identity: r.version !== null || unversionedOk ? `${r.provider}|${r.locale}|${r.version ?? ''}` : null } };
}

/**
 * Which sides compare the bucket column under COLLATE "C" (CompareSide.collateC): none when both
 * already order it alike (byte order, or the same collation at the same library version, where
 * the key's index serves), otherwise each side not already in byte order.
 */
function collateSides(a: BucketSide['order'], b: BucketSide['order']): [boolean, boolean] {
  const needs = (x: BucketSide['order']) => x !== null && x !== 'bytes';
  if (a !== null && b !== null && a !== 'bytes' && b !== 'bytes' && a.identity !== null && a.identity === b.identity) return [false, false];
  return [needs(a), needs(b)];
}

/**
 * The compare of a pipeline: its source as the target would see it (SQL transforms applied,
 * target column names), rows left out on each side, and which source rows arrived after `runCursor`.
 */
export async function compareShape(s: pg.ClientBase, t: pg.ClientBase, run: Pick<ResolvedRun, 'pipeline' | 'name'>, purpose: ComparePurpose, runCursor: CursorValue[] | null) {
  const p = run.pipeline;
  const plan = await columnPlan(s, t, run);
  const source = sourceSideSql(plan.select, sourceRelation(p));
  const target = targetSideSql(p.target.table!);
  const bucketColumn = p.key[0] ?? p.cursor ?? null;
  const exclude: string[] = [];
  // A source marker column: marked rows are deleted from the target, so neither side counts them.
  if (p.softDeleteColumn && p.deletes !== 'soft') exclude.push(markedSql(p.softDeleteColumn));
  const targetExclude = [...exclude, ...(p.deletes === 'soft' && p.softDeleteColumn ? [markedSql(p.softDeleteColumn)] : [])];
  // A keyless append cannot name rows that came after the sync: the source stops at its cursor.
  // Only the source: the cursor is in the source's order, which the target's collation need not
  // share, and every target row was copied by a sync that ended at or before it.
  if (p.key.length === 0 && p.cursor && runCursor?.[0] != null) exclude.push(pastCursorSql(p.cursor, runCursor[0]));
  const either = (xs: string[]) => (xs.length ? xs.map((x) => `(${x})`).join(' OR ') : undefined);
  const sides = bucketColumn ? await Promise.all([bucketSide(s, source, bucketColumn), bucketSide(t, target, bucketColumn)]) : undefined;
  const [sourceC, targetC] = sides ? collateSides(sides[0].order, sides[1].order) : [false, false];
  const shape: CompareShape = {
    source: { relation: source, exclude: either(exclude), bucketType: sides?.[0].bucketType ?? '', collateC: sourceC },
    target: { relation: target, exclude: either(targetExclude), bucketType: sides?.[1].bucketType ?? '', collateC: targetC },
    bucketColumn,
    key: p.key,
    hashColumns: purpose === 'deletes' ? p.key : purpose === 'checksums' ? plan.columns : [],
    late: p.cursor && p.key.length && runCursor ? { columns: plan.order, after: runCursor } : undefined,
  };
  if (shape.hashColumns.length) {
    const types = (c: pg.ClientBase, relation: string) => c.query(columnTypesProbeSql(relation, shape.hashColumns)).then((r) => r.fields.map((f) => f.dataTypeID));
    const [st, tt] = await Promise.all([types(s, source), types(t, target)]);
    shape.rowHash = rowHashSql(shape.hashColumns, st, tt);
  }
  return { shape, plan };
}

/** A transaction on `c` whose values print the same on both servers (row hashes depend on it). */
export function withCanonicalText<R>(c: pg.ClientBase, fn: (tx: Transaction) => Promise<R>, begin = 'BEGIN'): Promise<R> {
  return withTransaction(
    c,
    async (tx) => {
      for (const sql of CANONICAL_TEXT_SETTINGS) await c.query(sql);
      return fn(tx);
    },
    begin,
  );
}

/** Runs `fn` on the source in one read-only snapshot, so a bucket's digest and its rows agree. */
export function sourceSnapshot<R>(s: pg.ClientBase, fn: () => Promise<R>): Promise<R> {
  return withCanonicalText(
    s,
    (tx) => {
      tx.rollbackOnly();
      return fn();
    },
    'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  );
}

export interface BucketPlan {
  buckets: KeyRange[];
  /** Rows per sub-bucket: the most a differing sub-bucket moves. */
  leafRows: number;
  estimatedRows: number;
}

/** Top-level key ranges of about `bucketRows` rows each, from split points over a page sample of the source. */
export async function planBuckets(s: pg.ClientBase, p: PipelineConfig, shape: CompareShape, plan: Awaited<ReturnType<typeof columnPlan>>, bucketRows: number): Promise<BucketPlan> {
  const estimatedRows = await estimateRows(s, p, plan, { after: null });
  const parts = shape.bucketColumn === null ? 1 : Math.max(1, Math.min(MAX_BUCKETS, Math.ceil(estimatedRows / Math.max(1, bucketRows))));
  const leafRows = Math.max(MIN_LEAF_ROWS, Math.ceil(estimatedRows / parts / SUB_BUCKETS));
  if (parts === 1) return { buckets: [{ lower: null, upper: null }], leafRows, estimatedRows };
  const percent = Math.min(100, (100 * SAMPLE_ROWS) / Math.max(1, estimatedRows));
  const sampled =
    p.source.table && percent < 100 && ['r', 'm', 'p'].includes((await tablePages(s, p.source.table)).kind)
      ? sampledSourceSql(plan.select, p.source.table, percent)
      : shape.source.relation;
  const { rows } = await s.query<{ points: (string | null)[] | null }>(bucketSplitSql(shape, sampled, parts));
  const points = (rows[0]?.points ?? []).filter((x, i, all): x is string => x !== null && (i === 0 || x !== all[i - 1]));
  const bounds = [null, ...points, null];
  return { buckets: bounds.slice(0, -1).map((lower, i) => ({ lower, upper: bounds[i + 1] ?? null })), leafRows, estimatedRows };
}

export interface BucketDiff {
  sourceRows: number;
  targetRows: number;
  /** Sub-ranges digested. */
  subRanges: number;
  /** Lower bounds of the sub-ranges after the first. */
  bounds: string[];
  /** Sub-ranges whose digests differ (the whole bucket for a table without a bucket column); `id` numbers them over `bounds`. */
  differing: { id: number; range: KeyRange; sourceRows: number; targetRows: number }[];
}

type Digest = Map<number, { n: number; h: string }>;

async function digest(c: pg.ClientBase, sql: string): Promise<Digest> {
  await c.query(HASH_DIGEST.before);
  const { rows } = await c.query<{ b: number; n: string; h: string }>(sql);
  await c.query(HASH_DIGEST.after);
  return new Map(rows.map((r) => [Number(r.b), { n: Number(r.n), h: r.h }]));
}

const INTEGER_TYPES = new Set(['smallint', 'integer', 'bigint']);

/**
 * Lower bounds of sub-buckets: an integer column's extent in the source split by arithmetic (two
 * index probes), any other type every `leafRows`-th value in order (one ordered read of the keys).
 */
async function subBounds(s: pg.ClientBase, shape: CompareShape, range: KeyRange, leafRows: number, maxParts: number): Promise<string[]> {
  if (shape.bucketColumn === null) return [];
  if (INTEGER_TYPES.has(shape.source.bucketType) && INTEGER_TYPES.has(shape.target.bucketType)) {
    const { lo, hi } = (await s.query<{ lo: string | null; hi: string | null }>(bucketExtentSql(shape, range))).rows[0]!;
    if (lo === null || hi === null) return [];
    const [a, z] = [BigInt(lo), BigInt(hi)];
    // At most one sub-bucket per leafRows values: rows in the range are no more than its values (keys are unique).
    const width = z - a + 1n;
    const parts = BigInt(Math.max(1, Math.min(maxParts, Math.ceil(Number(width) / Math.max(1, leafRows)))));
    const step = (width + parts - 1n) / parts;
    const out: string[] = [];
    for (let x = a + step; step > 0n && x <= z; x += step) out.push(String(x));
    return out;
  }
  const raw = (await s.query<{ b: string }>(subBoundsSql(shape, range, leafRows))).rows.map((r) => r.b);
  return raw.filter((x, i) => i === 0 || x !== raw[i - 1]);
}

/**
 * Digests one bucket on both sides by sub-buckets of about `leafRows` rows (bounds from the
 * source) and returns the sub-ranges that differ. `s` must be inside sourceSnapshot, `t` inside a
 * transaction with CANONICAL_TEXT_SETTINGS.
 */
export async function diffBucket(s: pg.ClientBase, t: pg.ClientBase, shape: CompareShape, range: KeyRange, leafRows: number, maxParts = SUB_BUCKETS): Promise<BucketDiff> {
  const bounds = await subBounds(s, shape, range, leafRows, maxParts);
  // Two connections, two servers: both sides are read at once.
  const [src, tgt] = await Promise.all([digest(s, bucketDigestSql(shape, shape.source, range, bounds)), digest(t, bucketDigestSql(shape, shape.target, range, bounds))]);
  const sub = (b: number): KeyRange => ({ lower: b === 0 ? range.lower : bounds[b - 1]!, upper: b === bounds.length ? range.upper : bounds[b]! });
  const differing: BucketDiff['differing'] = [];
  let sourceRows = 0;
  let targetRows = 0;
  for (const b of [...new Set([...src.keys(), ...tgt.keys()])].sort((x, y) => x - y)) {
    const a = src.get(b) ?? { n: 0, h: '0' };
    const z = tgt.get(b) ?? { n: 0, h: '0' };
    sourceRows += a.n;
    targetRows += z.n;
    if (a.n !== z.n || a.h !== z.h) differing.push({ id: b, range: sub(b), sourceRows: a.n, targetRows: z.n });
  }
  return { sourceRows, targetRows, subRanges: bounds.length + 1, bounds, differing };
}

/**
 * Ranges in order with touching ones joined: where most sub-ranges differ (deletes spread over the
 * table), one range scan instead of a BitmapOr of dozens.
 */
export function joinAdjacent(ranges: KeyRange[]): KeyRange[] {
  const out: KeyRange[] = [];
  for (const r of ranges) {
    const last = out.at(-1);
    if (last && last.upper !== null && last.upper === r.lower) last.upper = r.upper;
    else out.push({ ...r });
  }
  return out;
}

/** Streams the source's keys (with row hashes) of `ranges` into the target's leaf table; memory stays at a COPY buffer. */
export async function copyLeaves(s: pg.ClientBase, t: pg.ClientBase, shape: CompareShape, ranges: KeyRange[], ctx: CallContext): Promise<number> {
  await t.query(leafTableSql(shape));
  const leaves = await relayCopy(s, t, leafCopyOutSql(shape, ranges), leafCopyInSql(shape), { signal: ctx.signal, onProgress: (rows, bytes) => ctx.onProgress?.({ rows, bytes }) });
  await t.query(analyzeLeafSql());
  return leaves.rows;
}
