// Compare-then-copy re-sync: a populated target with no cursor to say what changed is compared with
// its source bucket by bucket first (the digests of verify and delete detection), and only the rows
// that differ are copied and merged — deleted too, when the pipeline asks — in the same pass.
import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { isEmpty } from '../db/catalog';
import {
  analyzeLeafSql,
  changedCountsSql,
  changedTableSql,
  closeChangedKeysSql,
  declareChangedKeysSql,
  deleteChangedGoneSql,
  fetchChangedKeysSql,
  keyedRowsCopyOutSql,
  leafCopyInSql,
  leafTableSql,
  scopedLeafCopyOutSql,
  scopedRowsCopyOutSql,
  type CompareScope,
  type CompareShape,
  type KeyRange,
} from '../db/compareSql';
import { relayCopy } from '../db/copyFrames';
import { quoteTable } from '../db/identifiers';
import { copyInSql, createStageSql, mergeSql } from '../db/syncSql';
import { finishBucket, lockBucket, peekState, readPartitions } from '../db/syncState';
import { compareShape, diffBucket, planBuckets, sourceSnapshot, typeOf, withCanonicalText } from './compare';
import { withBoth, type CallContext, type SyncEngineDeps } from './context';
import { ownRun } from './deletes';
import { followEnumLabels } from './enumLabels';
import { conflictError } from './errors';
import type { ConnectionBudget } from './gates';
import { checkDrift, type ResolvedRun } from './run';
import type { ResyncBucketResult, ResyncProbe } from './types';

/** Above this share of the sampled bucket's rows changed, comparing first costs more than merging every row. */
const MERGE_ABOVE = 0.5;
/** Above this share of a range's rows changed, the range is copied whole instead of by a list of keys. */
const KEYS_BELOW = 0.3;
/** Up to this share of rows changed, buckets digest small sub-buckets and narrow the differing ones; above it they compare row hashes of every row. */
const GROUPS_UP_TO = 0.05;
/** Sized so about this share of sub-buckets differ when changes are spread: few rows' hashes streamed beyond the changed ones. */
const GROUP_DIFFER_SHARE = 0.1;
/** Sub-buckets a bucket digests at most: the bounds travel in the SQL text. */
const MAX_GROUPS = 4096;
/** Keys per keyed COPY from the source: they travel in its SQL text, and only one batch is held here. */
const KEY_BATCH = 10_000;
const STAGE = 'lbw_stage';

export interface ResyncBucketInput {
  pipeline: string;
  environment?: string;
  runId: string;
  bucket: number;
  /** From the plan: rows per sub-range. */
  leafRows: number;
  /** From the plan: digest sub-buckets of `groupRows` rows first and narrow only the differing ones to keys (false: row hashes of the whole bucket). */
  digests: boolean;
  /** From the plan: rows per sub-bucket when `digests` (leafRows when left out). */
  groupRows?: number;
  /** From the plan (SyncPlan.fingerprint): the bucket fails with PipelineDriftError if the config changed since. */
  fingerprint?: string;
}

type Deps = SyncEngineDeps & { budget: ConnectionBudget };

/**
 * Whether a run of `p` may re-sync by comparing first (`resync: auto`): an upsert with no cursor
 * (nothing says which rows changed), merging on its key, with nothing the compare cannot see — a
 * row transform (runs in the worker) or a soft-delete marker (changes which rows count).
 */
export function compareEligible(p: PipelineConfig): boolean {
  return p.resync === 'auto' && p.mode === 'upsert' && p.cursor === undefined && p.key.length > 0 && !p.softDeleteColumn && !p.transform.rowTransform && p.deletes !== 'soft';
}

/** What narrowing a scope to keys found (the keys themselves stay in the target's changed table). */
interface Narrowed {
  /** Source keys streamed (the source rows of the scope). */
  keysCompared: number;
  /** Keys of source rows the target lacks or holds with other values. */
  copy: number;
  /** Target rows whose key the source no longer has. */
  gone: number;
}

/**
 * Narrows `scope` to the keys that differ: the source's keys and row hashes there are streamed
 * into the target's leaf table (memory stays at a COPY buffer) and joined with the target's rows
 * there into the changed table. `s` inside sourceSnapshot, `t` inside withCanonicalText.
 */
async function narrow(s: pg.ClientBase, t: pg.ClientBase, shape: CompareShape, scope: CompareScope, ctx: CallContext): Promise<Narrowed> {
  await t.query(leafTableSql(shape));
  const leaves = await relayCopy(s, t, scopedLeafCopyOutSql(shape, scope), leafCopyInSql(shape), { signal: ctx.signal, onProgress: (rows, bytes) => ctx.onProgress?.({ rows, bytes }) });
  await t.query(analyzeLeafSql());
  await t.query(changedTableSql(shape, scope));
  const { copy, gone } = (await t.query<{ copy: number; gone: number }>(changedCountsSql())).rows[0]!;
  return { keysCompared: leaves.rows, copy, gone };
}

interface Changes extends Narrowed {
  subRanges: number;
  differingSubRanges: number;
  /** Source rows of the range. */
  sourceRows: number;
}

/** The probe: digests name the sub-ranges of `range` that differ, and those are narrowed to keys. */
async function findChanges(s: pg.ClientBase, t: pg.ClientBase, shape: CompareShape, range: KeyRange, groupRows: number, ctx: CallContext): Promise<Changes> {
  const d = await diffBucket(s, t, shape, range, groupRows, MAX_GROUPS);
  const found: Changes = { subRanges: d.subRanges, differingSubRanges: d.differing.length, sourceRows: d.sourceRows, keysCompared: 0, copy: 0, gone: 0 };
  if (d.differing.length === 0) return found;
  return { ...found, ...(await narrow(s, t, shape, { range, bounds: d.bounds, ids: d.differing.map((x) => x.id) }, ctx)) };
}

/**
 * Decides how a run re-syncs a populated target (called by planSync for eligible pipelines): one
 * bucket from the middle of the key space is compared (read only) and its figures choose between
 * compare-then-copy and the plain merge of every row. Undefined when the plain path applies anyway:
 * an empty target (first load) or an unfinished plain run to resume.
 */
export async function probeResync(s: pg.ClientBase, t: pg.ClientBase, run: ResolvedRun, ctx: CallContext): Promise<(ResyncProbe & { buckets: KeyRange[] }) | undefined> {
  const { pipeline: p, name: pipeline } = run;
  const st = await peekState(t, p.stateSchema, pipeline);
  if (st && st.phase !== 'idle' && (await readPartitions(t, p.stateSchema, pipeline)).length) return undefined;
  if (await isEmpty(t, p.target.table!)) return undefined;
  const { shape, plan } = await compareShape(s, t, run, 'checksums', null);
  const planned = await planBuckets(s, p, shape, plan, p.batchRows);
  // Sub-buckets as small as a bucket's own digests may be: the differing ones are narrowed to keys, so fewer rows are read twice.
  const probeRows = Math.max(1, Math.ceil((planned.leafRows * 64) / MAX_GROUPS));
  const probe = (at: number) =>
    withCanonicalText(t, (tx) => {
      tx.rollbackOnly();
      return sourceSnapshot(s, () => findChanges(s, t, shape, planned.buckets[Math.floor(planned.buckets.length * at)]!, probeRows, ctx));
    });
  const c = await probe(1 / 2);
  let sampled = 1;
  // About to merge every row: first make sure the middle bucket did not just hold a cluster of
  // changes, with two more buckets (this costs only where the merge would cost far more).
  if ((c.copy + c.gone) / Math.max(1, c.sourceRows) > MERGE_ABOVE && planned.buckets.length >= 3)
    for (const more of [await probe(1 / 6), await probe(5 / 6)]) {
      c.copy += more.copy;
      c.gone += more.gone;
      c.sourceRows += more.sourceRows;
      c.subRanges += more.subRanges;
      c.differingSubRanges += more.differingSubRanges;
      sampled += 1;
    }
  const changed = c.copy + c.gone;
  const rowShare = changed / Math.max(1, c.sourceRows);
  const figures = `${changed.toLocaleString('en')} of ${c.sourceRows.toLocaleString('en')} rows (${(100 * rowShare).toFixed(1)}%) and ${c.differingSubRanges} of ${c.subRanges} sub-ranges differ in ${sampled === 1 ? 'the sampled bucket' : `${sampled} sampled buckets`}`;
  const method = rowShare > MERGE_ABOVE ? 'merge' : 'compare';
  const digests = rowShare <= GROUPS_UP_TO;
  const bucketRows = planned.leafRows * 64;
  const groupRows = rowShare === 0 ? planned.leafRows : Math.max(Math.ceil(bucketRows / MAX_GROUPS), Math.min(planned.leafRows, Math.floor(GROUP_DIFFER_SHARE / rowShare)));
  return {
    method,
    reason:
      method === 'merge'
        ? `${figures}: most rows changed, so every row is merged (comparing first would read them twice)`
        : `${figures}: ${digests ? `sub-buckets (${groupRows.toLocaleString('en')} rows each) are digested, the differing ones narrowed to their differing rows` : 'row hashes are compared per key'}, and only those rows are copied`,
    probe: { buckets: planned.buckets.length, subRanges: c.subRanges, differingSubRanges: c.differingSubRanges, rows: c.sourceRows, changedRows: changed },
    digests,
    groupRows,
    leafRows: planned.leafRows,
    estimatedRows: planned.estimatedRows,
    buckets: planned.buckets,
  };
}

interface BucketWrites {
  rowsCopied: number;
  rowsWritten: number;
  rowsDeleted: number;
  rangesDiffering: number;
  keysCompared: number;
}

/**
 * Moves what `narrow` found: the changed keys' source rows are streamed into a stage (by key, in
 * batches; the whole scope where most of its rows changed) and merged on the key (the merge writes
 * only rows that differ); target rows whose key left the source are deleted (deletes: hard).
 */
async function moveChanged(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, shape: CompareShape, columns: string[], keyTypes: string[], scope: CompareScope, n: Narrowed, ctx: CallContext) {
  const target = p.target.table!;
  let rowsCopied = 0;
  let rowsWritten = 0;
  if (n.copy > 0) {
    await t.query(createStageSql(STAGE, target, columns));
    const stage = async (copyOut: string) => {
      const staged = await relayCopy(s, t, copyOut, copyInSql(STAGE, columns), { signal: ctx.signal, onProgress: (rows, bytes) => ctx.onProgress?.({ rows: n.keysCompared + rowsCopied + rows, bytes }) });
      rowsCopied += staged.rows;
    };
    if (n.copy > KEYS_BELOW * n.keysCompared) await stage(scopedRowsCopyOutSql(shape, columns, scope));
    else {
      await t.query(declareChangedKeysSql(shape));
      for (;;) {
        const { rows } = await t.query<{ key: (string | null)[] }>(fetchChangedKeysSql(KEY_BATCH));
        if (rows.length === 0) break;
        await stage(keyedRowsCopyOutSql(shape, columns, keyTypes, rows.map((r) => r.key), scope));
      }
      await t.query(closeChangedKeysSql());
    }
    for (const sql of mergeSql({ target, stage: STAGE, columns, key: p.key, mode: 'upsert' })) rowsWritten += (await t.query(sql)).rowCount ?? 0;
  }
  const rowsDeleted = n.gone > 0 && p.deletes === 'hard' ? ((await t.query(deleteChangedGoneSql(shape, quoteTable(target)))).rowCount ?? 0) : 0;
  return { rowsCopied, rowsWritten, rowsDeleted };
}

/**
 * Few changes: both sides digest sub-buckets small enough that most hold no change; the differing
 * ones are narrowed to the keys whose row hashes differ, and only those rows move.
 */
async function bySubBuckets(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, shape: CompareShape, columns: string[], keyTypes: string[], range: KeyRange, groupRows: number, ctx: CallContext): Promise<BucketWrites> {
  const d = await diffBucket(s, t, shape, range, groupRows, MAX_GROUPS);
  if (d.differing.length === 0) return { rowsCopied: 0, rowsWritten: 0, rowsDeleted: 0, rangesDiffering: 0, keysCompared: 0 };
  const scope: CompareScope = { range, bounds: d.bounds, ids: d.differing.map((x) => x.id) };
  const n = await narrow(s, t, shape, scope, ctx);
  return { ...(await moveChanged(s, t, p, shape, columns, keyTypes, scope, n, ctx)), rangesDiffering: d.differing.length, keysCompared: n.keysCompared };
}

/**
 * Many changes, spread: the source's keys and row hashes of the whole bucket are compared in the
 * target, and only the rows that differ are copied (by key; whole where most do).
 */
async function byRows(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, shape: CompareShape, columns: string[], keyTypes: string[], range: KeyRange, ctx: CallContext): Promise<BucketWrites> {
  const scope: CompareScope = { ranges: [range] };
  const n = await narrow(s, t, shape, scope, ctx);
  return { ...(await moveChanged(s, t, p, shape, columns, keyTypes, scope, n, ctx)), rangesDiffering: 1, keysCompared: n.keysCompared };
}

/**
 * One bucket of a compare-then-copy re-sync: finds the rows that differ, copies those from the
 * source into a stage and merges them, deletes target rows whose key left the source (deletes:
 * hard) — all committed with the bucket's `done`, so a retried bucket writes nothing twice.
 */
export async function resyncBucket(deps: Deps, ctx: CallContext, run: ResolvedRun, input: ResyncBucketInput): Promise<ResyncBucketResult> {
  const { runId, bucket } = input;
  const { pipeline: p, name: pipeline } = run;
  checkDrift(run, input.fingerprint);
  return withBoth(deps.budget, ctx, run, async (s, t) => {
    // Before the transaction: an enum label added there could not be used by its rows (src/sync/enumLabels.ts).
    await followEnumLabels(s, t, p, pipeline);
    return withCanonicalText(t, async (tx) => {
      await ownRun(t, run, runId);
      const b = await lockBucket(t, p.stateSchema, pipeline, runId, bucket);
      if (!b) throw conflictError(`pipeline "${pipeline}" has no re-sync bucket ${bucket} in run ${runId}; it was re-planned by another run`);
      if (b.done) {
        tx.rollbackOnly();
        return { bucket, rowsCopied: 0, rowsWritten: b.rowsWritten, rowsDeleted: b.rowsDeleted, rangesDiffering: 0, keysCompared: 0, alreadyCommitted: true };
      }
      const { shape, plan } = await compareShape(s, t, run, 'checksums', null);
      const keyTypes: string[] = [];
      for (const k of p.key) keyTypes.push(await typeOf(s, shape.source.relation, k));
      const range = { lower: b.lower, upper: b.upper };
      const done = await sourceSnapshot(s, () =>
        input.digests ? bySubBuckets(s, t, p, shape, plan.columns, keyTypes, range, input.groupRows ?? input.leafRows, ctx) : byRows(s, t, p, shape, plan.columns, keyTypes, range, ctx),
      );
      await finishBucket(t, p.stateSchema, pipeline, bucket, done.rowsDeleted, done.rowsWritten);
      deps.log?.('re-sync bucket compared', { pipeline, bucket, ...done });
      return { bucket, ...done, alreadyCommitted: false };
    });
  });
}
