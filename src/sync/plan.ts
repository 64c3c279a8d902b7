import type pg from 'pg';
import { columnHasNull, estimateRows, hasUniqueKey, isEmpty, splitPoints, tablePages } from '../db/catalog';
import { ensureSnapshotTable, sameSnapshot, writeSnapshot } from '../db/schemaSnapshot';
import { createRefreshTable, refreshTableName } from '../db/swap';
import type { ColumnPlan } from '../db/syncSql';
import { ensureStateTable, peekState, readBuckets, readPartitions, readState, replaceBuckets, replacePartitions, writeState, type PartitionState } from '../db/syncState';
import { withTransaction } from '../db/transaction';
import { targetColumns } from '../db/typeCatalog';
import { incremental, softDeletes, withBoth, type CallContext, type SyncEngineDeps } from './context';
import { runDdl, targetCreation, type DdlStatement } from './createTarget';
import { configError } from './errors';
import type { ConnectionBudget } from './gates';
import { compareShape, planBuckets } from './compare';
import { compareEligible, probeResync } from './resync';
import { addEnumLabels } from './enumLabels';
import { inspectSchema, snapshotOf, type SchemaInspection } from './schemaChanges';
import { checkDrift, type ResolvedRun } from './run';
import type { CursorValue, ResyncProbe, SyncPlan, TargetShapeReport } from './types';

export interface PlanInput {
  pipeline: string;
  environment?: string;
  /** Owner of the sync state while this run lasts (the workflow id: stable across continue-as-new). */
  runId: string;
  /** After continue-as-new: describe the plan without touching the state. */
  continuing?: boolean;
  /** Split the run into partitions (sync engine v2); whole-table runs of older workflows leave it out. */
  partitioned?: boolean;
  /** Validate and describe what a run would do (SyncPlan.dryRun) without claiming state or changing anything. */
  dryRun?: boolean;
  /** A populated target without a cursor may be re-synced by comparing first (SyncPlan.resync); older workflows leave it out. */
  compare?: boolean;
  /** continuing: the fingerprint the run's first plan had (PipelineDriftError when the config changed since). */
  fingerprint?: string;
}

/** Rows sampled to place partition bounds: enough for even slices, cheap on any table. */
const SAMPLE_ROWS = 50_000;

/** Below this many rows a slice costs more in round trips than it gains in parallel. */
const MIN_SLICE_ROWS = 25_000;

/**
 * How many slices: at most twice the parallelism (slack for uneven slices), fewer when the rows
 * would make slices smaller than a chunk or MIN_SLICE_ROWS — so even a table of a few chunks
 * spreads over every connection (what a remote Lakebase, limited per connection, needs).
 */
export function partitionCount(estimatedRows: number, batchRows: number, parallelism: number): number {
  if (parallelism <= 1) return 1;
  return Math.max(1, Math.min(parallelism * 2, Math.ceil(estimatedRows / Math.min(batchRows, MIN_SLICE_ROWS))));
}

interface Shapes {
  plan: ColumnPlan;
  inspection: SchemaInspection;
  /** The target is missing: what creates it. */
  creation?: DdlStatement[];
}

/** Checks the pipeline against both sides (the target may be missing: then it says how to create it). */
async function checkShapes(s: pg.ClientBase, t: pg.ClientBase, { pipeline: p, name: pipeline }: ResolvedRun): Promise<Shapes> {
  const inspection = await inspectSchema(s, t, p, pipeline);
  const plan = inspection.plan;
  if (p.cursor && (await columnHasNull(s, p, plan.sourceOrder[0]!)))
    throw configError(`pipelines.${pipeline}.cursor: column "${p.cursor}" has NULL values; rows with a NULL cursor would never sync. Use a NOT NULL column (e.g. coalesce it in a source query).`);
  if (!inspection.target) return { plan, inspection, creation: await targetCreation(s, t, p, pipeline, inspection.shape.map((c) => c.source!)) };
  if (p.mode === 'upsert' && !(await hasUniqueKey(t, p.target.table!, p.key)))
    throw configError(
      `pipelines.${pipeline}: mode upsert merges on key (${p.key.join(', ')}), but ${p.target.table} has no primary key or unique index on exactly those columns; add one (ALTER TABLE … ADD PRIMARY KEY (${p.key.join(', ')})) or use mode append`,
    );
  return { plan, inspection };
}

/** The target's shape changes in this run: chunks evolve it, which a compare before them would not see. */
const shapeChanges = (shapes: Shapes) => !!(shapes.creation || shapes.inspection.evolution.length || shapes.inspection.decision?.notes.length);

/** A compare-then-copy run continued as new: its buckets are in the state; the figures of its probe are not. */
async function continuedResync(s: pg.ClientBase, t: pg.ClientBase, run: ResolvedRun): Promise<ResyncProbe> {
  const p = run.pipeline;
  const { shape, plan } = await compareShape(s, t, run, 'checksums', null);
  const planned = await planBuckets(s, p, shape, plan, p.batchRows);
  return {
    method: 'compare',
    reason: 'continues a compare-then-copy re-sync',
    probe: { buckets: planned.buckets.length, subRanges: 0, differingSubRanges: 0, rows: 0, changedRows: 0 },
    digests: true,
    groupRows: planned.leafRows,
    leafRows: planned.leafRows,
    estimatedRows: planned.estimatedRows,
  };
}

/** What the plan does to the target's shape, for the UI (nothing: undefined). */
function shapeReport(shapes: Shapes): TargetShapeReport | undefined {
  const r: TargetShapeReport = {};
  if (shapes.creation) r.created = shapes.creation.map((x) => x.sql);
  if (shapes.inspection.decision?.notes.length) r.changes = shapes.inspection.decision.notes;
  if (shapes.inspection.evolution.length) r.evolution = shapes.inspection.evolution.map((x) => x.sql);
  return Object.keys(r).length ? r : undefined;
}

const partitionState = (partition: number, lower: string | null, upper: string | null, cursor: CursorValue[] | null): PartitionState => ({
  partition, lower, upper, cursor, done: false, rowsCopied: 0, rowsWritten: 0, chunks: 0,
});

/** A keyless table (full refresh) is sliced by heap pages; the last slice is open-ended for pages added meanwhile. */
async function pageSlices(s: pg.ClientBase, { pipeline: p, name: pipeline }: ResolvedRun, estimated: number): Promise<PartitionState[]> {
  const { kind, pages } = await tablePages(s, p.source.table!);
  if (kind !== 'r' && kind !== 'm')
    throw configError(`pipelines.${pipeline}: without a key, a full refresh reads page ranges of a plain table, and ${p.source.table} is not one; set key`);
  const parts = Math.max(1, Math.min(partitionCount(estimated, p.batchRows, p.parallelism), pages));
  const step = Math.ceil(pages / parts);
  return Array.from({ length: parts }, (_, i) => partitionState(i, String(i * step), i === parts - 1 ? null : String((i + 1) * step), null));
}

/** Slices of the rows after `start`, bounded on the first order column by sampled split points. */
async function slice(s: pg.ClientBase, run: ResolvedRun, plan: ColumnPlan, start: CursorValue[] | null, estimated: number): Promise<PartitionState[]> {
  const p = run.pipeline;
  if (plan.sourceOrder.length === 0) return pageSlices(s, run, estimated);
  const parts = partitionCount(estimated, p.batchRows, p.parallelism);
  const samplePercent = Math.min(100, (100 * SAMPLE_ROWS) / Math.max(1, estimated));
  const points = await splitPoints(s, p, plan, start, parts, samplePercent);
  const bounds = [null, ...points, null];
  // Every slice starts after the run's start cursor: a split point may equal its first value.
  return bounds.slice(0, -1).map((lower, i) => partitionState(i, lower, bounds[i + 1] ?? null, start));
}

const count = (n: number) => n.toLocaleString('en');

/** A dry run: everything planning checks, described instead of done (no state row, no table, no DDL). */
async function dryRun(s: pg.ClientBase, t: pg.ClientBase, resolved: ResolvedRun, shapes: Shapes): Promise<SyncPlan> {
  const { pipeline: p, name: pipeline } = resolved;
  const target = p.target.table!;
  const st = await peekState(t, p.stateSchema, pipeline);
  const unfinished = !!st && st.phase !== 'idle';
  const start = st && (unfinished || incremental(p)) ? st.cursor : null;
  const { plan } = shapes;
  const estimated = await estimateRows(s, p, plan, { after: start });
  const empty = shapes.creation ? true : await isEmpty(t, target);
  const actions: string[] = [`checked: source ${p.source.table ?? '(query)'} → target ${target}; ${plan.columns.length} columns copied`];
  if (shapes.creation) actions.push(`target ${target} does not exist: the run creates it (statements below)`);
  for (const note of shapes.inspection.decision?.notes ?? []) actions.push(note);
  if (shapes.inspection.evolution.length) actions.push('the first chunk changes the target (statements below), in its own transaction');
  for (const note of shapes.inspection.labels.notes) actions.push(`${note} before the copy`);
  if (unfinished) actions.push(`resumes the unfinished run ${st.runId ?? ''} (phase ${st.phase}) from its committed cursor`.replace('  ', ' '));
  const rows = `~${count(estimated)} rows${start ? ` after cursor (${start.join(', ')})` : ''}`;
  const chunks = `chunks of ${count(p.batchRows)} rows, up to ${p.parallelism} at a time`;
  if (p.mode === 'full-refresh') actions.push(`full refresh: copies ${rows} into ${refreshTableName(target)} (${chunks}), then swaps it in for ${target} in one transaction`);
  else if (p.mode === 'append') actions.push(`append: inserts ${rows} into ${target} (${chunks})`);
  else if (empty && !softDeletes(p).softDeleteColumn && start === null) actions.push(`upsert, first load into an empty target: copies ${rows} without merging (${chunks})`);
  else if (!empty && start === null && compareEligible(p) && !shapeChanges(shapes))
    actions.push(`upsert, populated target without cursor: compares bucket digests of ${target} with the source first and copies only what differs, or merges every row when a sampled bucket shows most rows changed (resync: auto)`);
  else actions.push(`upsert: merges ${rows} into ${target} on key (${p.key.join(', ')}), writing only rows that differ (${chunks})`);
  if (p.mode === 'upsert' && p.deletes !== 'ignore')
    actions.push(`then looks for target rows whose key left the source and ${p.deletes === 'soft' ? `marks them in ${p.softDeleteColumn}` : 'deletes them'} (deletes: ${p.deletes})`);
  if (p.verify !== 'none') actions.push(`finally compares source and target (verify: ${p.verify})`);
  const statements = [...(shapes.creation ?? []), ...shapes.inspection.labels.statements, ...shapes.inspection.evolution].map((x) => x.sql);
  return { ...planOf(resolved, shapes, { startCursor: start, resumed: unfinished, estimatedRows: estimated, initialLoad: false }), dryRun: { actions, statements } };
}

/** What every plan says, from the pipeline, its shapes and where this run stands. */
function planOf({ pipeline: p, name: pipeline }: ResolvedRun, shapes: Shapes, run: Pick<SyncPlan, 'startCursor' | 'resumed' | 'estimatedRows' | 'initialLoad'>): SyncPlan {
  const targetShape = shapeReport(shapes);
  return {
    pipeline,
    mode: p.mode,
    chunkRows: p.batchRows,
    order: shapes.plan.order,
    rowTransform: p.transform.rowTransform,
    source: { profile: p.source.profile, environment: p.source.environment, relation: p.source.table ?? 'query' },
    target: { profile: p.target.profile, environment: p.target.environment, table: p.target.table! },
    ...run,
    ...(targetShape && { targetShape }),
    // Only when set, so plans (and histories) of pipelines without them look as they did.
    ...(p.deletes !== 'ignore' && { deletes: p.deletes }),
    ...(p.verify !== 'none' && { verify: p.verify }),
  };
}

/**
 * Checks the pipeline against both tables, claims the sync state for this run, and (partitioned)
 * splits the rows into slices with their own cursors; an unfinished run's slices are resumed.
 */
export async function planSync(deps: SyncEngineDeps & { budget: ConnectionBudget }, ctx: CallContext, run: ResolvedRun, input: PlanInput): Promise<SyncPlan> {
  const { runId, continuing, partitioned } = input;
  const { pipeline: p, name: pipeline } = run;
  if (continuing) checkDrift(run, input.fingerprint);
  const planned = await withBoth(deps.budget, ctx, run, async (s, t): Promise<SyncPlan> => {
    const shapes = await checkShapes(s, t, run);
    const { plan } = shapes;
    if (input.dryRun) return dryRun(s, t, run, shapes);
    // Enum labels first, each committed on its own: a label is usable only once its ALTER TYPE has committed.
    await addEnumLabels(t, shapes.inspection.labels.statements);
    await ensureStateTable(t, p.stateSchema);
    await ensureSnapshotTable(t, p.stateSchema);
    // Before the claim: the probe reads both sides in transactions of its own.
    const probe = input.compare && partitioned && !continuing && compareEligible(p) && !shapeChanges(shapes) ? await probeResync(s, t, run, ctx) : undefined;
    if (probe) deps.log?.(probe.method === 'compare' ? 're-sync by compare-then-copy' : 're-sync by merging every row', { pipeline, reason: probe.reason, ...probe.probe });
    const claimed = await withTransaction(t, async () => {
      const st = await readState(t, p.stateSchema, pipeline, 'update');
      // Under the state row's lock: a second run of the pipeline finds the table made, not half made.
      if (shapes.creation && !(await targetColumns(t, p.target.table!))) await runDdl(t, shapes.creation, pipeline);
      const recorded = shapes.inspection.decision?.snapshot ?? snapshotOf(shapes.inspection.shape);
      if (!sameSnapshot(recorded, shapes.inspection.snapshot)) await writeSnapshot(t, p.stateSchema, pipeline, recorded);
      const existing = partitioned ? await readPartitions(t, p.stateSchema, pipeline) : [];
      const single = (): PartitionState[] => [partitionState(0, null, null, st.cursor)];
      const compared = partitioned && existing.length === 0 ? await readBuckets(t, p.stateSchema, pipeline, runId) : [];
      if (continuing && input.compare && compared.length) return { start: null, resumed: true, initialLoad: false, partitions: [], compared };
      if (continuing) {
        // A whole-table run of an older workflow that continued as new here goes on as one slice.
        if (partitioned && existing.length === 0) await replacePartitions(t, p.stateSchema, pipeline, single());
        const loading = !!partitioned && p.mode === 'upsert' && st.phase === 'loading';
        return { start: st.cursor, resumed: true, initialLoad: loading, partitions: partitioned && existing.length === 0 ? single() : existing, compared: [] };
      }
      const unfinished = st.phase !== 'idle';
      if (probe?.method === 'compare' && !(unfinished && existing.length)) {
        // A retried plan finds its buckets; a run taking over an unfinished re-sync compares afresh (what is done compares equal).
        const mine = unfinished && st.runId === runId ? compared : [];
        const fresh = probe.buckets.map((r, bucket) => ({ bucket, lower: r.lower, upper: r.upper, done: false, rowsDeleted: 0, rowsWritten: 0 }));
        if (!mine.length) await replaceBuckets(t, p.stateSchema, pipeline, runId, fresh);
        await replacePartitions(t, p.stateSchema, pipeline, []);
        await writeState(t, p.stateSchema, { ...st, cursor: null, phase: 'running', runId });
        return { start: null, resumed: mine.some((b) => b.done), initialLoad: false, partitions: [], compared: mine.length ? mine : fresh };
      }
      const start = unfinished || incremental(p) ? st.cursor : null;
      const firstLoad = async () => p.mode === 'upsert' && !softDeletes(p).softDeleteColumn && start === null && (await isEmpty(t, p.target.table!));
      // A partitioned upsert into an empty target loads like a full refresh: into a new table
      // without indexes, put in place (or merged, if someone wrote meanwhile) when the run ends.
      const bulkLoad = !!partitioned && p.mode === 'upsert' && (unfinished ? st.phase === 'loading' : await firstLoad());
      const initialLoad = partitioned ? bulkLoad : await firstLoad();
      let partitions = existing;
      if (partitioned && !(unfinished && existing.length)) {
        // A whole-table run left unfinished by an older worker continues as one slice from its cursor.
        partitions = unfinished ? single() : await slice(s, run, plan, start, await estimateRows(s, p, plan, { after: start }));
        await replacePartitions(t, p.stateSchema, pipeline, partitions);
      }
      const loadsNewTable = p.mode === 'full-refresh' || bulkLoad;
      if (loadsNewTable && !unfinished) await createRefreshTable(t, p.target.table!);
      await writeState(t, p.stateSchema, { ...st, cursor: start, phase: loadsNewTable ? 'loading' : 'running', runId });
      const resumed = unfinished && (st.cursor !== null || existing.some((x) => x.rowsCopied > 0));
      return { start, resumed, initialLoad, partitions, compared: [] };
    });
    if (claimed.compared.length) {
      const resync = probe ?? (await continuedResync(s, t, run));
      return {
        ...planOf(run, shapes, { startCursor: null, resumed: claimed.resumed, estimatedRows: resync.estimatedRows, initialLoad: false }),
        partitions: [],
        parallelism: p.parallelism,
        resync: { ...resync, method: 'compare', buckets: claimed.compared.map((b) => ({ bucket: b.bucket, done: b.done, rowsWritten: b.rowsWritten, rowsDeleted: b.rowsDeleted })) },
      };
    }
    const left = claimed.partitions.filter((x) => !x.done);
    const slices = partitioned ? left.map((x) => ({ after: x.cursor, lower: x.lower, upper: x.upper })) : [{ after: claimed.start }];
    let estimatedRows = 0;
    for (const sl of slices) estimatedRows += await estimateRows(s, p, plan, sl);
    return {
      ...planOf(run, shapes, { startCursor: claimed.start, resumed: claimed.resumed, estimatedRows, initialLoad: claimed.initialLoad }),
      ...(partitioned && {
        partitions: claimed.partitions.map((x) => ({ partition: x.partition, cursor: x.cursor, done: x.done })),
        parallelism: p.parallelism,
      }),
      ...(probe && { resync: { ...probe, buckets: [] } }),
    };
  });
  // Chunks and buckets of this plan check it against their own config (src/sync/run.ts).
  return { ...planned, fingerprint: run.fingerprint };
}
