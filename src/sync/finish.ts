import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { countRows, generatedColumns, isEmpty, tableColumns } from '../db/catalog';
import { blockWriters, dropRefreshTable, refreshTableName, renameSwap, renameSwapBlockers, truncateSwap } from '../db/swap';
import { mergeSql } from '../db/syncSql';
import { deleteBuckets, deletePartitions, hasBucketTable, readBuckets, readPartitions, readState, writeState, type PartitionState } from '../db/syncState';
import { withTransaction } from '../db/transaction';
import { incremental, withConnection, type CallContext, type SyncEngineDeps } from './context';
import { conflictError } from './errors';
import { checkDrift, type ResolvedRun } from './run';
import type { CursorValue, FinishResult, SwapReport } from './types';

export interface FinishInput {
  pipeline: string;
  environment?: string;
  runId: string;
  /** From the plan (SyncPlan.fingerprint): finishing under another config fails with PipelineDriftError. */
  fingerprint?: string;
}

/** Slices are disjoint and ordered, so the last one that copied anything holds the run's greatest cursor. */
function runCursor(partitions: PartitionState[], start: CursorValue[] | null): CursorValue[] | null {
  const last = [...partitions].reverse().find((x) => x.rowsCopied > 0);
  return last ? last.cursor : start;
}

const writableColumns = async (t: pg.ClientBase, table: string) => {
  const generated = await generatedColumns(t, table);
  return (await tableColumns(t, table)).filter((c) => !generated.includes(c));
};

/**
 * An upsert's first load into the run's new table: put in place like a full refresh while the
 * target is still empty, or merged into it on the key when someone wrote to it meanwhile.
 */
async function firstLoadIn(t: pg.ClientBase, p: PipelineConfig, deps: SyncEngineDeps): Promise<SwapReport> {
  const target = p.target.table!;
  await blockWriters(t, target);
  if (await isEmpty(t, target)) return swapIn(t, p, deps);
  for (const sql of mergeSql({ target, stage: refreshTableName(target), columns: await writableColumns(t, target), key: p.key, mode: 'upsert' })) await t.query(sql);
  await dropRefreshTable(t, target);
  deps.log?.('first load merged into a target written meanwhile', { target });
  return { method: 'merge', reason: 'the target was written to during the first load: the loaded rows were merged on the key' };
}

async function swapIn(t: pg.ClientBase, p: PipelineConfig, deps: SyncEngineDeps): Promise<SwapReport & { rows: number | null }> {
  const target = p.target.table!;
  // An upsert's first load swaps in the same way; its log line must not call it a full refresh.
  const what = p.mode === 'full-refresh' ? 'full refresh' : `first load (${p.mode}, into an empty target)`;
  const blockers = await renameSwapBlockers(t, target);
  if (blockers.length === 0) {
    const r = await renameSwap(t, target);
    if (r.swapped) {
      deps.log?.(`${what} swapped in by rename`, { target });
      return { method: 'rename', reason: 'nothing depends on the target', rows: null };
    }
    blockers.push(...r.blockers);
  }
  const reason = `kept the target table (${blockers.slice(0, 3).join('; ')}${blockers.length > 3 ? '; …' : ''}), replaced its rows`;
  deps.log?.(`${what} swapped in by TRUNCATE + INSERT`, { target, reason });
  return { method: 'truncate-insert', reason, rows: await truncateSwap(t, target, await writableColumns(t, target)) };
}

/**
 * Ends a run: a full refresh puts its loaded table in place (one transaction); incremental runs
 * keep their cursor for the next run. A repeated call after success changes nothing.
 */
export async function finishSync(deps: SyncEngineDeps, ctx: CallContext, run: ResolvedRun, input: FinishInput): Promise<FinishResult> {
  const { runId } = input;
  const { pipeline: p, name: pipeline } = run;
  checkDrift(run, input.fingerprint);
  return withConnection(ctx.connect, p.target, (t) =>
    withTransaction(t, async (tx) => {
      const state = await readState(t, p.stateSchema, pipeline, 'update');
      if (state.runId !== runId) {
        tx.rollbackOnly();
        return { rowsInTarget: null }; // finished by an earlier attempt, or taken over
      }
      const partitions = await readPartitions(t, p.stateSchema, pipeline);
      const open = partitions.filter((x) => !x.done).map((x) => x.partition);
      if (open.length) throw conflictError(`pipeline "${pipeline}": run ${runId} cannot finish while partitions ${open.join(', ')} are not done`);
      const cursor = partitions.length ? runCursor(partitions, state.cursor) : state.cursor;
      const loaded = partitions.reduce((n, x) => n + x.rowsWritten, 0);
      let result: FinishResult = { rowsInTarget: null, cursor };
      if (p.mode === 'full-refresh') {
        const { rows, ...swap } = await swapIn(t, p, deps);
        // A rename swap copies nothing; a partitioned load knows its rows, a whole-table one counts them.
        result = { ...result, rowsInTarget: rows ?? (partitions.length ? loaded : await countRows(t, p.target.table!)), swap };
      } else if (p.mode === 'upsert' && state.phase === 'loading') {
        const { method, reason } = await firstLoadIn(t, p, deps);
        result = { ...result, swap: { method, reason } };
      }
      // Buckets of delete detection and of a compare-then-copy re-sync; sync_bucket exists once a
      // worker that has them planned a run (see ensureStateTable).
      const buckets = (await hasBucketTable(t, p.stateSchema)) ? await readBuckets(t, p.stateSchema, pipeline, runId) : null;
      const bucketRows = (buckets ?? []).reduce((n, b) => n + b.rowsDeleted + b.rowsWritten, 0);
      await deletePartitions(t, p.stateSchema, pipeline);
      if (buckets) await deleteBuckets(t, p.stateSchema, pipeline);
      await writeState(t, p.stateSchema, {
        ...state,
        phase: 'idle',
        runId: null,
        cursor: incremental(p) ? cursor : null,
        rowsWritten: state.rowsWritten + loaded + bucketRows,
        chunks: state.chunks + partitions.reduce((n, x) => n + x.chunks, 0),
      });
      return result;
    }),
  );
}
