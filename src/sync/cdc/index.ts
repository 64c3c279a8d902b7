// Continuous sync by logical replication: the slot and publication, the initial load (the ordinary
// partitioned engine, after the slot exists), and the stream applied in batches. No Temporal here.
import type pg from 'pg';
import type { PipelineConfig } from '../../config/schema';
import {
  addToPublicationSql, createPublicationSql, currentLsnSql, deleteCdcState, dropSlot, ensureCdcStateTable, ensureSlot, insertCdcState,
  markResumed, markStopped, markStreaming, parkCdcState, publicationTables, qualifiedSourceTable, readCdcState, setSourceOid, slotInfo, slotLockSql, sourceTableByOid, type CdcState,
} from '../../db/cdcSql';
import { createSyncEngine, fingerprintOf, type ChunkInput, type FinishInput, type PlanInput, type ResolvedRun } from '../index';
import { withConnection, type CallContext, type SyncEngineDeps } from '../context';
import type { CheckStep } from '../../db/diagnose';
import { configError } from '../errors';
import { NON_RETRYABLE_FAILURES } from '../../failureTypes';
import { compareLsn, lsnBytes } from './lsn';
import { cdcPipeline, slotGroup, slotNames } from './names';
import { assertCdcReady, cdcPreflight, slotInvalidatedText } from './preflight';
import { slotHealth, untilSlotIdle } from '../../db/cdcChecks';
import { pruneVanishedRows } from './prune';
import { streamChanges, type StreamPipeline } from './stream';
import { describeOpenTransactions, OpenTransactionsWait, untilOpenTransactionsEnd } from '../../db/openTransactions';
import type { CdcJoin, CdcStatus, StreamProgress } from './types';

export type * from './types';
export { compareLsn, lsnBytes } from './lsn';
export { defaultSlotName, slotGroup, slotNames } from './names';

export interface CdcEngineDeps extends SyncEngineDeps {
  /** Settings for a replication connection to an environment, logging in like the pools do (token or password, SSL). */
  replicationConfig: (profile: string, environment: string) => Promise<pg.ClientConfig>;
}



/** How long a join waits for source transactions open at it (the join activity's start-to-close is 10 minutes). */
const JOIN_WAIT_MS = 8 * 60_000;

export function createCdcEngine(deps: CdcEngineDeps) {
  const { config } = deps;
  const engine = createSyncEngine(deps);
  /**
   * The initial load is an upsert's first load (partitioned, resumable, creates the target with the
   * key): the cdc pipeline resolved once, as that upsert, and handed to the engine as its run.
   */
  const loadRun = (input: { pipeline: string; environment?: string }): ResolvedRun => {
    const run = engine.resolve(input);
    const pipeline: PipelineConfig = { ...run.pipeline, mode: 'upsert', deletes: 'ignore', verify: 'none' };
    return { ...run, pipeline, fingerprint: fingerprintOf(pipeline) };
  };
  const load = {
    plan: (ctx: CallContext, input: PlanInput) => engine.plan(ctx, input, loadRun(input)),
    chunk: (ctx: CallContext, input: ChunkInput) => engine.chunk(ctx, input, loadRun(input)),
    finish: (ctx: CallContext, input: FinishInput) => engine.finish(ctx, input, loadRun(input)),
  };

  const names = (name: string) => slotNames(config, name);
  /** Readers running in this process, by slot: their lag in seconds, live. */
  const liveLag = new Map<string, () => number>();
  const group = (name: string) => slotGroup(config, name);

  async function sourceTable(s: pg.ClientBase, name: string, p: PipelineConfig) {
    const t = await qualifiedSourceTable(s, p.source.table!);
    if (!t) throw configError(`pipelines.${name}.source.table: table ${p.source.table} does not exist in the source database`);
    return t;
  }

  /**
   * Makes sure the publication carries the table and the slot exists, and records where this
   * pipeline's copy starts. The slot comes first: every change after its start is replayed after
   * the copy, and replayed upserts and deletes by key converge on the source's rows.
   */
  async function join(ctx: CallContext, input: { pipeline: string }): Promise<CdcJoin> {
    const name = input.pipeline;
    const p = cdcPipeline(config, name);
    const { slot, publication } = names(name);
    const existing = await withConnection(ctx.connect, p.target, async (t) => {
      await ensureCdcStateTable(t, p.stateSchema);
      return readCdcState(t, p.stateSchema, name);
    });
    return withConnection(ctx.connect, p.source, async (s) => {
      const table = await sourceTable(s, name, p);
      // Before any publication or slot is touched (preflight.ts): a refused check changes nothing on the source.
      await assertCdcReady(s, { pipeline: name, config: p, slot, publication });
      // Exclusive against every reader's confirm of this slot (they hold it shared): once the row
      // below is committed, no reader confirms past its start (checkpoint.ts).
      await s.query(`SELECT pg_advisory_lock(${slotLockSql})`, [slot]);
      try {
        const slotNow = await slotInfo(s, slot);
        if (existing && existing.slot === slot && slotNow) {
          const same = { pipeline: name, slot, publication, phase: existing.phase, startLsn: existing.startLsn, createdSlot: false, createdPublication: false };
          if (!existing.parked && !existing.stoppedAt) return same;
          // Stopped with the slot kept: resume from the checkpoint while no reader moved the slot past
          // it. Parked, or passed meanwhile: copy anew (the copy into a populated target prunes).
          const kept = existing.stoppedAt && !existing.parked && existing.phase === 'streaming' && existing.stoppedLsn && slotNow.confirmedLsn && compareLsn(slotNow.confirmedLsn, existing.stoppedLsn) <= 0;
          if (kept) {
            await withConnection(ctx.connect, p.target, (t) => markResumed(t, p.stateSchema, name));
            return same;
          }
        }
        let createdPublication = false;
        const pub = await publicationTables(s, publication);
        if (!pub) {
          if (p.cdc.publication)
            throw configError(`pipelines.${name}.cdc.publication: publication "${publication}" does not exist on the source; create it (${createPublicationSql(publication, [table.name])}; on Lakebase this needs databricks_superuser) or leave cdc.publication out and let the worker create one`);
          await s.query(createPublicationSql(publication, [table.name]));
          createdPublication = true;
        } else {
          if (table.partitioned && !pub.viaRoot)
            throw configError(`pipelines.${name}: ${table.name} is partitioned but publication "${publication}" does not publish via the partition root; run ALTER PUBLICATION "${publication}" SET (publish_via_partition_root = true)`);
          if (!pub.all && !pub.tables.includes(table.name)) {
            if (p.cdc.publication)
              throw configError(`pipelines.${name}.cdc.publication: publication "${publication}" does not publish ${table.name}; run ${addToPublicationSql(publication, table.name)}`);
            await s.query(addToPublicationSql(publication, table.name));
          }
        }
        const made = await ensureSlot(s, slot);
        // An existing slot: this pipeline's changes count from now (the publication carries the table as of now).
        const startLsn = made.created ? made.lsn : (await s.query<{ lsn: string }>(currentLsnSql)).rows[0]!.lsn;
        await withConnection(ctx.connect, p.target, async (t) => {
          await insertCdcState(t, p.stateSchema, { pipeline: name, slot, publication, startLsn });
          await setSourceOid(t, p.stateSchema, name, table.oid);
        });
        return { pipeline: name, slot, publication, phase: 'snapshot' as const, startLsn, createdSlot: made.created, createdPublication };
      } finally {
        await s.query(`SELECT pg_advisory_unlock(${slotLockSql})`, [slot]).catch(() => undefined);
      }
    });
  }

  /**
   * Before the copy of a joined pipeline: every source transaction open when its table joined the
   * publication has ended (openTransactions.ts: otherwise one that wrote the table before and
   * commits after the copy read it is lost). Waiting again on a retry costs nothing.
   */
  async function untilJoinedTransactionsEnd(ctx: CallContext, input: { pipeline: string }): Promise<void> {
    const name = input.pipeline;
    const p = cdcPipeline(config, name);
    const open = await withConnection(ctx.connect, p.source, (s) => untilOpenTransactionsEnd(s, JOIN_WAIT_MS, 200, (o) =>
      deps.log?.('cdc join: waiting for source transactions open at the join to end before copying', { pipeline: name, transactions: describeOpenTransactions(o) }),
    ));
    if (open)
      throw new OpenTransactionsWait(
        `pipelines.${name}: the copy waits for source transactions that were open when the table joined the publication (${describeOpenTransactions(open)}), still open after ${JOIN_WAIT_MS / 60_000} minutes; ` +
          'their writes would be in neither the copy nor the stream. End them (COMMIT or ROLLBACK; SELECT pg_cancel_backend(pid) for a stuck one): the join is retried',
      );
  }

  async function finishSnapshot(ctx: CallContext, input: { pipeline: string }): Promise<void> {
    const p = cdcPipeline(config, input.pipeline);
    await withConnection(ctx.connect, p.target, (t) => markStreaming(t, p.stateSchema, input.pipeline));
  }

  /** Reads the pipeline's slot and applies changes for every cdc pipeline sharing it, until aborted (or untilLsn is applied). */
  async function stream(ctx: CallContext, input: { pipeline: string; untilLsn?: string; onProgress?: (p: StreamProgress) => void }): Promise<StreamProgress> {
    const p = cdcPipeline(config, input.pipeline);
    const { slot, publication } = names(input.pipeline);
    const members = group(input.pipeline);
    // Followed by oid (the state row's, from the join): a rename is followed; a table dropped (or
    // dropped and made again under its name) parks its pipeline, since its changes since are not in the target.
    const pipelines: StreamPipeline[] = [];
    for (const n of members) {
      const q = cdcPipeline(config, n);
      const state = await withConnection(ctx.connect, q.target, (t) => readCdcState(t, q.stateSchema, n));
      const found = await withConnection(ctx.connect, p.source, async (s) => {
        if (state?.sourceOid) {
          const now = await sourceTableByOid(s, state.sourceOid);
          return now ? { ...now, oid: state.sourceOid } : null;
        }
        return sourceTable(s, n, q);
      });
      if (!found) {
        if (state && !state.parked && !state.stoppedAt)
          await withConnection(ctx.connect, q.target, (t) =>
            parkCdcState(
              t, q.stateSchema, n, NON_RETRYABLE_FAILURES.schemaChanged,
              `the source table of pipelines.${n} (${q.source.table}, oid ${state.sourceOid}) was dropped${'' /* or recreated: a new oid */}; its changes since are not in the target. ` +
                `cdc stop --pipeline ${n}, then cdc start --pipeline ${n} copies the table anew`,
            ),
          );
        continue;
      }
      if (state && !state.sourceOid) await withConnection(ctx.connect, q.target, (t) => setSourceOid(t, q.stateSchema, n, found.oid));
      pipelines.push({ name: n, config: q, source: { schema: found.schema, table: found.table, oid: found.oid } });
    }
    const running = streamChanges(ctx, {
      slot,
      publication,
      replication: await deps.replicationConfig(p.source.profile, p.source.environment),
      pipelines,
      stateSchema: (n) => cdcPipeline(config, n).stateSchema,
      batchRows: p.cdc.batchRows,
      batchMs: p.cdc.batchMs,
      untilLsn: input.untilLsn,
      onProgress: input.onProgress,
      onLag: (lag) => void liveLag.set(slot, lag),
      log: deps.log,
    });
    try {
      return await running;
    } finally {
      liveLag.delete(slot);
    }
  }

  async function currentLsn(ctx: CallContext, input: { pipeline: string }): Promise<string> {
    const p = cdcPipeline(config, input.pipeline);
    return withConnection(ctx.connect, p.source, async (s) => (await s.query<{ lsn: string }>(currentLsnSql)).rows[0]!.lsn);
  }

  /**
   * A reader may still hold the slot for a moment after its stream ended (an activity of a failed or
   * terminated run stops at its next heartbeat): wait for it rather than fail with 55006.
   */
  async function untilSlotReleased(s: pg.ClientBase, slot: string, ms = 60_000): Promise<void> {
    const h = await untilSlotIdle(s, slot, ms, 500);
    if (h?.active)
      throw configError(`replication slot "${slot}" is still being read by PID ${h.activePid} after ${ms / 1000} s with no stream of ours running: stop that reader (SELECT pg_terminate_backend(${h.activePid})) and run cdc stop --drop-slot again`);
  }

  /** After a copy merged into a populated target, before streaming: drop the rows the source deleted meanwhile (prune.ts). */
  async function pruneAfterCopy(ctx: CallContext, input: { pipeline: string }): Promise<number> {
    const p = cdcPipeline(config, input.pipeline);
    const pruned = await withConnection(ctx.connect, p.target, (t) => withConnection(ctx.connect, p.source, (s) => pruneVanishedRows(s, t, p)));
    if (pruned) deps.log?.('cdc copy into a populated target: deleted the rows the source no longer has', { pipeline: input.pipeline, rows: pruned });
    return pruned;
  }

  /** The checks the join makes before it touches the source (preflight.ts), as a report: test-connection and cdc start --dry-run. */
  async function preflight(ctx: CallContext, input: { pipeline: string }): Promise<CheckStep[]> {
    const p = cdcPipeline(config, input.pipeline);
    const { slot, publication } = names(input.pipeline);
    return withConnection(ctx.connect, p.source, (s) => cdcPreflight(s, { pipeline: input.pipeline, config: p, slot, publication }));
  }

  async function status(ctx: CallContext, input: { pipeline: string }): Promise<CdcStatus> {
    const name = input.pipeline;
    const p = cdcPipeline(config, name);
    const { slot, publication } = names(name);
    const state = await withConnection(ctx.connect, p.target, (t) => readCdcState(t, p.stateSchema, name));
    const [info, health] = await withConnection(ctx.connect, p.source, async (s) => [await slotInfo(s, slot), await slotHealth(s, slot)] as const);
    const applied = state?.appliedLsn ?? state?.startLsn ?? null;
    const current = info?.currentLsn ?? null;
    // Bytes of WAL behind the target; WAL of other tables counts too until the reader confirms past it.
    const lagBytes = applied && current ? Math.min(lsnBytes(applied, current), info?.unconfirmedBytes ?? Infinity) : 0;
    // The reader's own figure when it runs here (the age of what it received and has not applied);
    // with no reader at all, what is outstanding is at least as old as the last applied commit.
    const live = liveLag.get(slot);
    const lagSeconds = live ? live() : !info?.active && lagBytes > 0 && state?.appliedCommitTime ? Math.max(0, (Date.now() - state.appliedCommitTime.getTime()) / 1000) : 0;
    const warnings: string[] = [];
    if (state && !info) warnings.push(`replication slot "${slot}" does not exist on the source: the stream cannot go on; stop the pipeline and start it again`);
    if (health?.walStatus === 'lost') {
      const t = slotInvalidatedText(slot);
      warnings.push(`${t.detail}; fix: ${t.fix}`);
    } else if (health?.walStatus === 'unreserved')
      warnings.push(`slot "${slot}" is past max_slot_wal_keep_size (wal_status unreserved): the source invalidates it at its next checkpoint unless the stream catches up`);
    if (state?.parked)
      warnings.push(
        `pipeline ${name} is parked (${state.parked.type} since ${state.parked.at.toISOString()}): ${state.parked.reason}. The slot streams on for its other pipelines; ` +
          `fix the cause, then cdc stop --pipeline ${name} and cdc start --pipeline ${name}: it copies the table anew`,
      );
    if (info && info.retainedBytes > p.cdc.retainedWalWarnBytes)
      warnings.push(`slot "${slot}" retains ${info.retainedBytes} bytes of WAL on the source (limit ${p.cdc.retainedWalWarnBytes}): is the stream running? cdc stop --drop-slot removes a forgotten slot`);
    return {
      pipeline: name, slot, publication, phase: state?.phase ?? 'not-started', slotExists: !!info, slotActive: !!info?.active,
      startLsn: state?.startLsn ?? null, appliedLsn: state?.appliedLsn ?? null, confirmedLsn: info?.confirmedLsn ?? null, currentLsn: current,
      lagBytes, lagSeconds, retainedWalBytes: info?.retainedBytes ?? 0, rowsApplied: state?.rowsApplied ?? 0, batches: state?.batches ?? 0, warnings,
      walStatus: health?.walStatus ?? null, safeWalSize: health?.safeWalSize ?? null,
      parked: state?.parked ? { type: state.parked.type, reason: state.parked.reason, at: state.parked.at.toISOString() } : null,
      stopped: !!state?.stoppedAt,
    };
  }

  /**
   * The pipeline leaves its slot. Without dropSlot, when no other pipeline reads the slot, its state
   * stays: the slot keeps the WAL from its checkpoint, and the next start resumes there. With other
   * pipelines on the slot the reader moves on for them, so the checkpoint cannot be kept: the state
   * goes (the next start copies anew). With dropSlot, the slot is dropped once no other pipeline
   * uses it; the publication stays (an operator may own it).
   */
  async function leave(ctx: CallContext, input: { pipeline: string; dropSlot: boolean }): Promise<{ slotDropped: boolean; stillUsedBy: string[] }> {
    const name = input.pipeline;
    const p = cdcPipeline(config, name);
    const { slot } = names(name);
    const stillUsedBy: string[] = [];
    for (const n of group(name)) {
      if (n === name) continue;
      const q = cdcPipeline(config, n);
      const s = await withConnection(ctx.connect, q.target, (t) => readCdcState(t, q.stateSchema, n));
      if (s?.slot === slot) stillUsedBy.push(n);
    }
    if (!input.dropSlot && stillUsedBy.length === 0) {
      const [state, info] = await Promise.all([
        withConnection(ctx.connect, p.target, (t) => readCdcState(t, p.stateSchema, name)),
        withConnection(ctx.connect, p.source, (s) => slotInfo(s, slot)),
      ]);
      if (state?.slot === slot && info) {
        // Marked stopped: a reader of this slot started later for another pipeline leaves it alone.
        await withConnection(ctx.connect, p.target, (t) => markStopped(t, p.stateSchema, name, info.confirmedLsn));
        return { slotDropped: false, stillUsedBy };
      }
    }
    await withConnection(ctx.connect, p.target, (t) => deleteCdcState(t, p.stateSchema, name));
    if (!input.dropSlot || stillUsedBy.length) return { slotDropped: false, stillUsedBy };
    return {
      slotDropped: await withConnection(ctx.connect, p.source, async (s) => {
        await untilSlotReleased(s, slot);
        return dropSlot(s, slot);
      }),
      stillUsedBy,
    };
  }

  async function park(ctx: CallContext, input: { pipeline: string; type: string; reason: string }): Promise<void> {
    const p = cdcPipeline(config, input.pipeline);
    await withConnection(ctx.connect, p.target, (t) => parkCdcState(t, p.stateSchema, input.pipeline, input.type, input.reason));
  }

  return { names, group, join, untilJoinedTransactionsEnd, park, load, finishSnapshot, pruneAfterCopy, stream, currentLsn, preflight, status, leave };
}

export type CdcEngine = ReturnType<typeof createCdcEngine>;
