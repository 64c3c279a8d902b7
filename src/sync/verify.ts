import { leafDiffSql } from '../db/compareSql';
import { currentLsnSql, readCdcState } from '../db/cdcSql';
import { ensureStateTable, readState } from '../db/syncState';
import { compareShape, copyLeaves, diffBucket, joinAdjacent, planBuckets, sourceSnapshot, withCanonicalText } from './compare';
import { withBoth, type CallContext, type SyncEngineDeps } from './context';
import { configError, conflictError } from './errors';
import type { ConnectionBudget } from './gates';
import { checkDrift, type ResolvedRun } from './run';
import type { BucketRange, CursorValue, VerifyBucketResult, VerifyDifference, VerifyExcuse, VerifyPlan } from './types';

export interface VerifyInput {
  pipeline: string;
  environment?: string;
}

export interface VerifyBucketInput extends VerifyInput {
  mode: VerifyPlan['mode'];
  range: BucketRange;
  leafRows: number;
  runCursor: CursorValue[] | null;
  /** From the plan (VerifyPlan.fingerprint): the bucket fails with PipelineDriftError if the config changed since. */
  fingerprint?: string;
}

type Deps = SyncEngineDeps & { budget: ConnectionBudget };

/** Differing sub-ranges listed in a report; the rest are counted. */
const RANGES_REPORTED = 5;

/**
 * Plans a compare of the pipeline's source and target: key-range buckets, and the cursor of the
 * last finished sync (source rows after it are not differences yet). Refuses while a sync runs.
 */
export async function planVerify(deps: Deps, ctx: CallContext, run: ResolvedRun, input: VerifyInput & { mode?: VerifyPlan['mode'] }): Promise<VerifyPlan> {
  const { pipeline: p, name: pipeline } = run;
  const mode = input.mode ?? (p.verify === 'counts' ? 'counts' : 'checksums');
  if (p.transform.rowTransform)
    throw configError(`pipelines.${pipeline}: the row transform "${p.transform.rowTransform}" runs in the worker, so the source side of a verify cannot apply it; verify needs SQL transforms only`);
  return withBoth(deps.budget, ctx, run, async (s, t) => {
    await ensureStateTable(t, p.stateSchema);
    const state = await readState(t, p.stateSchema, pipeline);
    if (state.phase !== 'idle')
      throw conflictError(`pipeline "${pipeline}" is being synced (run ${state.runId ?? '?'}, ${state.phase}); verify it when that run has finished`);
    // A cdc pipeline: the stream applies every change, so no source row is excused by a cursor; the
    // compare names its point, the LSN the target had applied when it was planned.
    const cdc = p.mode === 'cdc';
    const runCursor = cdc ? null : state.cursor;
    const at = cdc
      ? { appliedLsn: (await readCdcState(t, p.stateSchema, pipeline))?.appliedLsn ?? null, sourceLsn: (await s.query<{ lsn: string }>(currentLsnSql)).rows[0]!.lsn }
      : undefined;
    const { shape, plan } = await compareShape(s, t, run, mode, runCursor);
    const planned = await planBuckets(s, p, shape, plan, p.batchRows);
    return {
      pipeline, mode, buckets: planned.buckets, leafRows: planned.leafRows, runCursor, parallelism: p.parallelism, key: p.key, estimatedRows: planned.estimatedRows,
      ...(at && { at }), fingerprint: run.fingerprint,
    };
  });
}

interface LeafRow {
  kind: VerifyDifference['kind'];
  tolerated: boolean;
  mismatches: string;
  tolerated_rows: string;
  key: string;
}

/**
 * Compares one bucket: digests per sub-range on both sides; for differing sub-ranges of a keyed
 * table, the source's keys and row hashes are streamed to the target and joined there, naming the
 * first rows that are missing, extra or different. Reads only (the target transaction rolls back).
 */
export async function verifyBucket(deps: Deps, ctx: CallContext, run: ResolvedRun, input: VerifyBucketInput): Promise<VerifyBucketResult> {
  const { range } = input;
  const p = run.pipeline;
  checkDrift(run, input.fingerprint);
  return withBoth(deps.budget, ctx, run, (s, t) =>
    withCanonicalText(t, async (tx) => {
      tx.rollbackOnly();
      const { shape } = await compareShape(s, t, run, input.mode, input.runCursor);
      return sourceSnapshot(s, async () => {
        const diff = await diffBucket(s, t, shape, range, input.leafRows);
        const base = { range, sourceRows: diff.sourceRows, targetRows: diff.targetRows, ranges: diff.differing.slice(0, RANGES_REPORTED).map(({ range, sourceRows, targetRows }) => ({ range, sourceRows, targetRows })) };
        if (diff.differing.length === 0) return { ...base, mismatches: 0, tolerated: 0, differences: [] };
        if (shape.key.length === 0) return { ...base, mismatches: diff.differing.length, tolerated: 0, differences: [] };
        const ranges = joinAdjacent(diff.differing.map((d) => d.range));
        await copyLeaves(s, t, shape, ranges, ctx);
        const extraOk = p.mode === 'append' || (p.mode === 'upsert' && p.deletes === 'ignore');
        const { rows } = await t.query<LeafRow>(leafDiffSql(shape, ranges, extraOk));
        const first = rows[0];
        // leafDiffSql excuses an extra target row only when the pipeline keeps them, a source row only when it came after the cursor.
        const why = (kind: VerifyDifference['kind']): VerifyExcuse['reason'] => (kind === 'extra' ? (p.mode === 'append' ? 'append' : 'deletes-ignore') : 'after-cursor');
        return {
          ...base,
          mismatches: Number(first?.mismatches ?? 0),
          tolerated: Number(first?.tolerated_rows ?? 0),
          differences: rows.filter((r) => !r.tolerated).map((r) => ({ kind: r.kind, key: JSON.parse(r.key) as (string | null)[] })),
          excused: rows.filter((r) => r.tolerated).map((r) => ({ kind: r.kind, key: JSON.parse(r.key) as (string | null)[], reason: why(r.kind) })),
        };
      });
    }),
  );
}
