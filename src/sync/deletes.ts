import type pg from 'pg';
import { deleteGoneSql, markGoneSql } from '../db/compareSql';
import { targetColumns } from '../db/typeCatalog';
import { quoteIdent, quoteTable } from '../db/identifiers';
import { finishBucket, lockBucket, readBuckets, readState, replaceBuckets } from '../db/syncState';
import { compareShape, copyLeaves, diffBucket, joinAdjacent, planBuckets, sourceSnapshot, withCanonicalText } from './compare';
import { withBoth, type CallContext, type SyncEngineDeps } from './context';
import { configError, conflictError } from './errors';
import type { ConnectionBudget } from './gates';
import { checkDrift, type ResolvedRun } from './run';
import type { DeleteBucketResult, DeletePlan } from './types';

export interface DeletesInput {
  pipeline: string;
  environment?: string;
  runId: string;
  /** From the run's plan (SyncPlan.fingerprint): PipelineDriftError under another config. */
  fingerprint?: string;
}

export interface DeleteBucketInput extends DeletesInput {
  bucket: number;
  /** From the plan: rows per sub-bucket. */
  leafRows: number;
  /** From the plan (DeletePlan.fingerprint): the bucket fails with PipelineDriftError if the config changed since. */
  fingerprint?: string;
}

type Deps = SyncEngineDeps & { budget: ConnectionBudget };

export async function ownRun(t: pg.ClientBase, { pipeline: p, name: pipeline }: ResolvedRun, runId: string): Promise<void> {
  const state = await readState(t, p.stateSchema, pipeline, 'share');
  if (state.runId !== runId)
    throw conflictError(`pipeline "${pipeline}" is now owned by run ${state.runId ?? '(none)'}; this run (${runId}) stops looking for deletes so two runs never write at once`);
}

/** deletes: soft sets the marker to now() (a timestamp column) or true (a boolean one). */
async function markerValue(t: pg.ClientBase, { pipeline: p, name: pipeline }: ResolvedRun): Promise<string> {
  const column = p.softDeleteColumn!;
  const type = (await targetColumns(t, p.target.table!))?.find((c) => c.name === column)?.type;
  if (type === 'boolean') return 'true';
  if (type?.startsWith('timestamp') || type === 'date') return 'now()';
  throw configError(
    type === undefined
      ? `pipelines.${pipeline}.softDeleteColumn: ${p.target.table} has no column "${column}" to mark deleted rows in; add it (ALTER TABLE ${p.target.table} ADD COLUMN ${quoteIdent(column)} timestamptz)`
      : `pipelines.${pipeline}.softDeleteColumn: "${column}" is ${type}; deletes: soft marks rows with now() or true, so use a timestamptz or boolean column`,
  );
}

/**
 * Splits the key space into buckets for this run's delete detection (or returns the run's buckets
 * when an earlier attempt made them), recorded in the state schema beside the partitions.
 */
export async function planDeletes(deps: Deps, ctx: CallContext, run: ResolvedRun, input: DeletesInput): Promise<DeletePlan> {
  const { runId } = input;
  const { pipeline: p, name: pipeline } = run;
  checkDrift(run, input.fingerprint);
  if (p.deletes === 'ignore') return { buckets: [], leafRows: 0, estimatedRows: 0 };
  return withBoth(deps.budget, ctx, run, async (s, t) => {
    if (p.deletes === 'soft') await markerValue(t, run);
    const { shape, plan } = await compareShape(s, t, run, 'deletes', null);
    const planned = await planBuckets(s, p, shape, plan, p.batchRows);
    const existing = await withCanonicalText(t, async () => {
      await ownRun(t, run, runId);
      const mine = await readBuckets(t, p.stateSchema, pipeline, runId);
      if (mine.length) return mine;
      const fresh = planned.buckets.map((r, bucket) => ({ bucket, lower: r.lower, upper: r.upper, done: false, rowsDeleted: 0, rowsWritten: 0 }));
      await replaceBuckets(t, p.stateSchema, pipeline, runId, fresh);
      return fresh;
    });
    return {
      buckets: existing.map((b) => ({ bucket: b.bucket, done: b.done, rowsDeleted: b.rowsDeleted })),
      leafRows: planned.leafRows,
      estimatedRows: planned.estimatedRows,
      fingerprint: run.fingerprint,
    };
  });
}

/**
 * One bucket: digests both sides, streams the source's keys of differing sub-ranges to the target
 * and deletes (or marks) the target rows whose key is gone — committed with the bucket's `done`.
 */
export async function deleteBucket(deps: Deps, ctx: CallContext, run: ResolvedRun, input: DeleteBucketInput): Promise<DeleteBucketResult> {
  const { runId, bucket } = input;
  const { pipeline: p, name: pipeline } = run;
  checkDrift(run, input.fingerprint);
  return withBoth(deps.budget, ctx, run, (s, t) =>
    withCanonicalText(t, async (tx) => {
      await ownRun(t, run, runId);
      const b = await lockBucket(t, p.stateSchema, pipeline, runId, bucket);
      if (!b) throw conflictError(`pipeline "${pipeline}" has no delete bucket ${bucket} in run ${runId}; it was re-planned by another run`);
      if (b.done) {
        tx.rollbackOnly();
        return { bucket, rowsDeleted: b.rowsDeleted, rangesChecked: 0, keysCompared: 0, alreadyCommitted: true };
      }
      const { shape } = await compareShape(s, t, run, 'deletes', null);
      const range = { lower: b.lower, upper: b.upper };
      let rowsDeleted = 0;
      const diff = await sourceSnapshot(s, async () => {
        const d = await diffBucket(s, t, shape, range, input.leafRows);
        // Only ranges where the target has rows the source lacks can hold deletes.
        const differing = d.differing.filter((x) => x.targetRows > 0);
        const suspect = joinAdjacent(differing.map((x) => x.range));
        const keys = suspect.length ? await copyLeaves(s, t, shape, suspect, ctx) : 0;
        if (suspect.length) {
          const table = quoteTable(p.target.table!);
          const sql = p.deletes === 'soft' ? markGoneSql(shape, table, suspect, p.softDeleteColumn!, await markerValue(t, run)) : deleteGoneSql(shape, table, suspect);
          rowsDeleted = (await t.query(sql)).rowCount ?? 0;
        }
        return { ranges: differing.length, keys };
      });
      await finishBucket(t, p.stateSchema, pipeline, bucket, rowsDeleted);
      return { bucket, rowsDeleted, rangesChecked: diff.ranges, keysCompared: diff.keys, alreadyCommitted: false };
    }),
  );
}
