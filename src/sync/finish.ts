import type pg from 'pg';
import type { PipelineConfig } from '../config/schema';
import { countRows, generatedColumns, tableColumns } from '../db/catalog';
import { renameSwap, renameSwapBlockers, truncateSwap } from '../db/swap';
import { deletePartitions, readPartitions, readState, writeState, type PartitionState } from '../db/syncState';
import { withTransaction } from '../db/transaction';
import { incremental, pipelineOf, withConnection, type CallContext, type SyncEngineDeps } from './context';
import { conflictError } from './errors';
import type { CursorValue, FinishResult } from './types';

export interface FinishInput {
  pipeline: string;
  environment?: string;
  runId: string;
}

/** Slices are disjoint and ordered, so the last one that copied anything holds the run's greatest cursor. */
function runCursor(partitions: PartitionState[], start: CursorValue[] | null): CursorValue[] | null {
  const last = [...partitions].reverse().find((x) => x.rowsCopied > 0);
  return last ? last.cursor : start;
}

async function swapIn(t: pg.ClientBase, p: PipelineConfig, deps: SyncEngineDeps): Promise<FinishResult['swap'] & { rows: number | null }> {
  const target = p.target.table!;
  const blockers = await renameSwapBlockers(t, target);
  if (blockers.length === 0) {
    const r = await renameSwap(t, target);
    if (r.swapped) {
      deps.log?.('full refresh swapped in by rename', { target });
      return { method: 'rename', reason: 'nothing depends on the target', rows: null };
    }
    blockers.push(...r.blockers);
  }
  const reason = `kept the target table (${blockers.slice(0, 3).join('; ')}${blockers.length > 3 ? '; …' : ''}), replaced its rows`;
  deps.log?.('full refresh swapped in by TRUNCATE + INSERT', { target, reason });
  const generated = await generatedColumns(t, target);
  const columns = (await tableColumns(t, target)).filter((c) => !generated.includes(c));
  return { method: 'truncate-insert', reason, rows: await truncateSwap(t, target, columns) };
}

/**
 * Ends a run: a full refresh puts its loaded table in place (one transaction); incremental runs
 * keep their cursor for the next run. A repeated call after success changes nothing.
 */
export async function finishSync(deps: SyncEngineDeps, ctx: CallContext, input: FinishInput): Promise<FinishResult> {
  const { pipeline, runId } = input;
  const p = pipelineOf(deps.config, pipeline, input.environment);
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
      }
      await deletePartitions(t, p.stateSchema, pipeline);
      await writeState(t, p.stateSchema, {
        ...state,
        phase: 'idle',
        runId: null,
        cursor: incremental(p) ? cursor : null,
        rowsWritten: state.rowsWritten + loaded,
        chunks: state.chunks + partitions.reduce((n, x) => n + x.chunks, 0),
      });
      return result;
    }),
  );
}
