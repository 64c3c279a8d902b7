import type { Transform } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { PipelineConfig } from '../config/schema';
import { CopyMeter, copyRowTransform, type RecordTransform } from '../db/copyText';
import { relayCopy } from '../db/copyFrames';
import { quoteTable } from '../db/identifiers';
import { refreshTableName } from '../db/swap';
import { estimateRows, tablePages } from '../db/catalog';
import { copyInSql, copyOutSql, copyPagesSql, createStageSql, mergeSql, type ColumnPlan, type CursorValue } from '../db/syncSql';
import type { PartitionState } from '../db/syncState';
import { lockPartition, readState, sameCursor, writePartition, writeState } from '../db/syncState';
import { withTransaction } from '../db/transaction';
import { incremental, softDeletes, withBoth, type CallContext, type SyncEngineDeps } from './context';
import { conflictError, initialLoadConflict } from './errors';
import type { ConnectionBudget } from './gates';
import { followEnumLabels } from './enumLabels';
import { reconcileSchema } from './schemaChanges';
import { checkDrift, type ResolvedRun } from './run';
import type { ChunkResult } from './types';

export interface ChunkInput {
  pipeline: string;
  environment?: string;
  runId: string;
  /** The cursor the caller believes is committed; the chunk copies rows after it. */
  after: CursorValue[] | null;
  /** From the plan: COPY straight into the target (fails with an initial-load conflict if a key already exists). */
  initialLoad?: boolean;
  /** Partitioned runs: which slice. Left out by whole-table runs of older workflows. */
  partition?: number;
  /** From the plan (SyncPlan.fingerprint): the chunk fails with PipelineDriftError if the config changed since. */
  fingerprint?: string;
}

const STAGE = 'lbw_stage';

/**
 * A keyless table's next page range: about batchRows rows' worth of pages from the cursor (the
 * next page to copy), within the slice. Returns the COPY, the cursor after it and whether the slice ends there.
 */
async function nextPages(s: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan, after: CursorValue[] | null, part: PartitionState | undefined) {
  const { pages, rowsPerPage } = await tablePages(s, p.source.table!);
  const perPage = rowsPerPage ?? (await estimateRows(s, p, plan, { after: null })) / Math.max(1, pages);
  const from = Number(after?.[0] ?? part?.lower ?? 0);
  const upper = part?.upper == null ? null : Number(part.upper);
  const step = Math.max(1, Math.floor(p.batchRows / Math.max(1, perPage)));
  const to = upper === null ? from + step : Math.min(from + step, upper);
  return { sql: copyPagesSql(p, plan, from, to), cursor: [String(to)], done: to >= (upper ?? pages) };
}

/** Streams the rows of `copyOut` from the source into `into`: relayed as the server frames them, or through the row transform. */
async function copyInto(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan, copyOut: string, into: string, transform: RecordTransform | undefined, ctx: CallContext) {
  if (!transform) {
    const r = await relayCopy(s, t, copyOut, copyInSql(into, plan.columns), { signal: ctx.signal, onProgress: (rows, bytes) => ctx.onProgress?.({ rows, bytes }) });
    return { meter: r, written: r.written };
  }
  const meter = new CopyMeter((rows, bytes) => ctx.onProgress?.({ rows, bytes }));
  const sink = t.query(copyFrom(copyInSql(into, plan.columns)));
  const describe = (r: Record<string, CursorValue>) => p.key.map((k) => `${k}=${r[k]}`).join(', ');
  const stages: Transform[] = [meter, copyRowTransform(plan.columns, plan.columns, transform, describe)];
  await pipe(s.query(copyTo(copyOut)), ...(stages as [Transform, Transform]), sink, { signal: ctx.signal });
  return { meter, written: sink.rowCount };
}

/** Writes the copied rows: into the refresh table (full refresh), straight in (append, first load), or staged and merged (upsert). */
async function load(s: pg.ClientBase, t: pg.ClientBase, p: PipelineConfig, plan: ColumnPlan, slice: string, input: ChunkInput, loading: boolean, transform: RecordTransform | undefined, ctx: CallContext) {
  const target = p.target.table!;
  if (p.mode === 'full-refresh' || loading) {
    const c = await copyInto(s, t, p, plan, slice, refreshTableName(target), transform, ctx);
    return { meter: c.meter, rowsWritten: c.written, rowsUnchanged: 0 };
  }
  if (p.mode === 'append' || input.initialLoad) {
    // The state row makes this exactly-once.
    try {
      const c = await copyInto(s, t, p, plan, slice, quoteTable(target), transform, ctx);
      return { meter: c.meter, rowsWritten: c.written, rowsUnchanged: 0 };
    } catch (err) {
      if (p.mode === 'upsert' && (err as { code?: string }).code === '23505')
        throw initialLoadConflict(`syncChunk(${input.pipeline}): a key already exists in ${target}; switching to merge`);
      throw err;
    }
  }
  await t.query(createStageSql(STAGE, target, plan.columns));
  const c = await copyInto(s, t, p, plan, slice, STAGE, transform, ctx);
  let rowsWritten = 0;
  for (const sql of mergeSql({ target, stage: STAGE, columns: plan.columns, key: p.key, mode: 'upsert', ...softDeletes(p) }))
    rowsWritten += (await t.query(sql)).rowCount ?? 0;
  return { meter: c.meter, rowsWritten, rowsUnchanged: Math.max(0, c.meter.rows - rowsWritten) };
}

const nothing = (cursor: CursorValue[] | null, done: boolean, alreadyCommitted: boolean): ChunkResult => ({
  cursor, rowsCopied: 0, rowsWritten: 0, rowsUnchanged: 0, bytes: 0, done, alreadyCommitted,
});

/**
 * Copies the rows after `after` (at most batchRows; within its slice for a partition) from
 * source to target as a stream, writes them and advances the cursor in one target transaction.
 */
export async function syncChunk(deps: SyncEngineDeps & { budget: ConnectionBudget }, ctx: CallContext, run: ResolvedRun, input: ChunkInput): Promise<ChunkResult> {
  const { runId, after, partition } = input;
  const { pipeline: p, name: pipeline, transform } = run;
  checkDrift(run, input.fingerprint);
  return withBoth(deps.budget, ctx, run, async (s, t) => {
    // Before the transaction: an enum label added there could not be used by its rows (src/sync/enumLabels.ts).
    await followEnumLabels(s, t, p, pipeline);
    return withTransaction(t, async (tx) => {
      // Partition chunks run side by side: they share the run's row and lock only their own slice.
      const state = await readState(t, p.stateSchema, pipeline, partition === undefined ? 'update' : 'share');
      if (state.runId !== runId)
        throw conflictError(`pipeline "${pipeline}" is now owned by run ${state.runId ?? '(none)'}; this run (${runId}) stops so two runs never write at once`);
      const part = partition === undefined ? undefined : await lockPartition(t, p.stateSchema, pipeline, partition);
      if (partition !== undefined && !part) throw conflictError(`pipeline "${pipeline}" has no partition ${partition} in run ${runId}; it was re-planned by another run`);
      const committed = part ? part.cursor : state.cursor;
      if (!sameCursor(committed, after) || part?.done) {
        // An earlier attempt committed this chunk and then lost its answer: report, copy nothing.
        tx.rollbackOnly();
        return nothing(committed, part?.done ?? false, true);
      }
      // A partitioned first load of an upsert fills the run's new table (phase 'loading'), like a full refresh.
      const loading = part !== undefined && p.mode === 'upsert' && state.phase === 'loading' && input.initialLoad !== false;
      // Schema changes first, before any row is written (the ALTER's lock comes before the rows'); a
      // full refresh or first load evolves its refresh table with the target, so either can end up in place.
      const refresh = p.mode === 'full-refresh' || (p.mode === 'upsert' && state.phase === 'loading') ? refreshTableName(p.target.table!) : undefined;
      // A cursor run fills columns it adds in the rows already copied (a later run would not: their cursor did not move).
      const plan = await reconcileSchema(s, t, p, pipeline, refresh, incremental(p) ? { transform, signal: ctx.signal } : undefined);
      const pages = plan.sourceOrder.length === 0 ? await nextPages(s, p, plan, after, part) : undefined;
      const copyOut = pages?.sql ?? copyOutSql(p, plan, { after, lower: part?.lower, upper: part?.upper }, p.batchRows);
      const { meter, rowsWritten, rowsUnchanged } = await load(s, t, p, plan, copyOut, input, loading, transform, ctx);
      const last = meter.lastRow();
      if (!pages && (meter.rows === 0 || !last)) {
        // A slice that ran dry is recorded as done; a whole table just ends (nothing to commit).
        if (part) await writePartition(t, p.stateSchema, pipeline, { ...part, done: true });
        else tx.rollbackOnly();
        return nothing(after, true, false);
      }
      const cursor = pages ? pages.cursor : plan.order.map((c) => last![plan.columns.indexOf(c)] ?? null);
      const done = pages ? pages.done : meter.rows < p.batchRows;
      if (part)
        await writePartition(t, p.stateSchema, pipeline, {
          ...part, cursor, done, rowsCopied: part.rowsCopied + meter.rows, rowsWritten: part.rowsWritten + rowsWritten, chunks: part.chunks + 1,
        });
      else await writeState(t, p.stateSchema, { ...state, cursor, rowsWritten: state.rowsWritten + rowsWritten, chunks: state.chunks + 1 });
      return { cursor, rowsCopied: meter.rows, rowsWritten, rowsUnchanged, bytes: meter.bytes, done, alreadyCommitted: false };
    });
  });
}
