import type pg from 'pg';
import { LogicalReplicationService, PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { PgoutputDecoder, type Decoded, type Tuple } from './pgoutput';
import type { PipelineConfig } from '../../config/schema';
import { classifySqlError, describeSqlError } from '../../db/errors';
import { columnShape, deleteKeysSql, movedRowsSql, parkCdcState, readCdcState, truncateSql, updateRowsSql, updateWhereNoOldRowSql, upsertRowsSql, writeApplied, type CdcState } from '../../db/cdcSql';
import { withTransaction } from '../../db/transaction';
import { quoteIdent } from '../../db/identifiers';
import { targetColumns } from '../../db/typeCatalog';
import type { CallContext } from '../context';
import { withConnection } from '../context';
import { RetryableSyncError, schemaChangedError, SyncError } from '../errors';
import { addMissingEnumLabels, backfillAddedColumns, isUnknownEnumLabel, missingValues } from './schemaFollow';
import { NON_RETRYABLE_FAILURES, RETRYABLE_FAILURES } from '../../failureTypes';
import { reconcileSchema } from '../schemaChanges';
import { ChangeBatch, type ChangeRow, type TableBatch } from './batch';
import type { StreamProgress } from './types';
import { compareLsn, formatLsn, lsnValue, normalizeLsn } from './lsn';
import { confirmable, type CheckpointMember } from './checkpoint';
import { slotLockSql } from '../../db/cdcSql';
import { untilSlotIdle } from '../../db/cdcChecks';

/** One pipeline the reader applies for: its config and where its target stands. */
export interface StreamPipeline {
  name: string;
  config: PipelineConfig;
  /** The source table as the stream names it (schema and table, unquoted), and its pg_class oid: what the stream matches relations by. */
  source: { schema: string; table: string; oid: number };
}


export interface StreamOptions {
  slot: string;
  publication: string;
  /** The replication connection's settings (login as every other connection: password callback, SSL). */
  replication: pg.ClientConfig;
  pipelines: StreamPipeline[];
  stateSchema: (pipeline: string) => string;
  /** A batch is applied at this many changes or this age, whichever comes first. */
  batchRows: number;
  batchMs: number;
  /** …or at this many bytes of values held (memory bounded by bytes, whatever the rows' width); default 32 MiB. */
  batchBytes?: number;
  /** Stop once everything committed up to this source LSN is applied (tests, catch-up); otherwise run until aborted. */
  untilLsn?: string;
  /** Called once the reader runs with a function that tells its lag in seconds now (status and metrics read it live). */
  onLag?: (lagSeconds: () => number) => void;
  onProgress?: (p: StreamProgress) => void;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

const DEFAULT_BATCH_BYTES = 32 * 1024 * 1024;

/**
 * Another reader committed past this one: this one stops without writing (its batch rolls back).
 * Retryable: a stale attempt's failure is ignored by Temporal, and the current attempt meets this
 * only when it loaded its checkpoint just before a previous attempt's last commit (seen after a
 * Temporal restart: the heartbeat-timed-out attempt flushed once more as it stopped). Final, it
 * failed the stream workflow and every pipeline of the slot with it; retried, the next attempt
 * starts from the checkpoint.
 */
const fenced = (pipeline: string, ours: string | null, theirs?: string) =>
  new RetryableSyncError(
    RETRYABLE_FAILURES.cdcReaderFenced,
    `cdc pipeline ${pipeline}: another reader of its slot applied ${theirs ? `up to ${theirs}` : 'a newer checkpoint'}, past this reader (${ours ?? 'nothing'}): this reader is stale and stops without writing; the next attempt starts from that checkpoint`,
  );

/** Errors that retrying cannot fix, confined to one pipeline's target or table: it is parked, not the slot stopped. */
function cannotApply(err: unknown): boolean {
  if (err instanceof SyncError) return err.type === NON_RETRYABLE_FAILURES.schemaChanged || err.type === NON_RETRYABLE_FAILURES.config;
  const k = classifySqlError(err);
  return !k.retryable && (k.kind === 'sql' || k.kind === 'data' || k.kind === 'constraint');
}

/** A pipeline's snapshot finished while the reader ran past its start: read the slot again from its confirmed position. */
class Restart extends Error {}

/**
 * XLogData messages pg-logical-replication has parsed but not yet emitted (its flow-control queue,
 * `_messageQueue`, private in its types). Read so a keepalive never confirms past them; a library
 * that no longer has the queue fails loudly here instead of confirming blind.
 */
function libraryBacklog(service: LogicalReplicationService): number {
  const queue: unknown = (service as unknown as { _messageQueue?: unknown })._messageQueue;
  if (!Array.isArray(queue)) throw new Error('pg-logical-replication no longer keeps its _messageQueue: keepalives cannot be confirmed safely (see src/sync/cdc/stream.ts)');
  return queue.length;
}

/**
 * The library's replication protocol and flow control, with our own decoder (pgoutput.ts): values
 * stay text (the library's parsers would turn numerics and timestamps into lossy JS values), and a
 * tuple is an array, not an object built through a parser per value. The 'data' events carry `Decoded`.
 */
class TextPgoutput extends PgoutputPlugin {
  private readonly decoder = new PgoutputDecoder();
  override parse(buffer: Buffer): Pgoutput.Message {
    return this.decoder.decode(buffer) as unknown as Pgoutput.Message;
  }
}

interface Runtime extends StreamPipeline {
  state: CdcState;
  /** Target column name -> type, and the names written (after schemaChanges); null until the first batch. */
  columns: Map<string, string> | null;
  written: Set<string>;
  /** Source column names of the relation as last announced by the stream. */
  relationColumns: string | null;
  /** Written columns with a source missing value (ADD COLUMN … DEFAULT), for rows decoded from WAL older than the ALTER. */
  missing: Map<string, string>;
  /** The source table's columnShape when the target was last evolved to it (null: not yet in this reader). */
  sourceShape: string | null;
  reconcile: boolean;
  /** Skip the transaction being received: already applied. */
  skip: boolean;
  /** Per source column of the relation as last announced: its target name, or null when excluded. */
  names: (string | null)[];
  /** Per key column (config.key, target names): its index in the relation's columns, -1 when absent. */
  keyIndex: number[];
}

/** The target names of a relation's columns for this pipeline (renamed; null: excluded). */
function targetNames(p: PipelineConfig, columns: readonly { name: string }[]): (string | null)[] {
  return columns.map((c) => (p.transform.exclude.includes(c.name) ? null : (p.transform.rename[c.name] ?? c.name)));
}

/** A decoded tuple as a row of target column names, without excluded columns (an unchanged TOAST value stays undefined). */
function toTarget(r: Runtime, t: Tuple): ChangeRow {
  const out: ChangeRow = {};
  const names = r.names;
  for (let i = 0; i < t.length; i++) {
    const n = names[i];
    if (n != null) out[n] = t[i];
  }
  return out;
}

/** The key values of a tuple (a whole row, or a replica-identity key tuple whose other columns are null). */
function keyFrom(r: Runtime, t: Tuple): (string | null)[] {
  return r.keyIndex.map((i) => (i < 0 ? null : (t[i] ?? null)));
}

const slotMissing = (slot: string, detail: string) =>
  new SyncError(
    NON_RETRYABLE_FAILURES.cdcSlotMissing,
    `replication slot "${slot}" does not exist on the source any more (${detail}); changes made since it was dropped are lost to this pipeline. ` +
      'Stop the pipeline (cdc stop) and start it again: it creates the slot and copies the table anew',
  );

/**
 * Reads the slot and applies its changes to every pipeline's target: batches collapse changes per
 * key; each batch commits to a target in one transaction with the last applied commit LSN; only
 * after every target committed is that LSN confirmed to the source. A retried reader starts at the
 * slot's confirmed position and skips transactions a target already has.
 */
export async function streamChanges(ctx: CallContext, o: StreamOptions): Promise<StreamProgress> {
  const progress: StreamProgress = { appliedLsn: null, confirmedLsn: null, receivedLsn: null, lastCommitTime: null, rowsApplied: 0, changesReceived: 0, batches: 0, rowsPerSecond: 0, lagSeconds: 0 };
  for (;;) {
    try {
      return await readOnce(ctx, o, progress);
    } catch (err) {
      if (!(err instanceof Restart)) throw err;
      o.log?.('reading the slot again from its confirmed position (a pipeline finished its snapshot, or enum labels were added)', { slot: o.slot });
      // Our reader just closed, but the server holds the slot until its walsender exits: reading at
      // once fails with 55006 "is active for PID". Past the wait, the read's own error stands.
      const source = o.pipelines[0]?.config.source;
      if (source) await withConnection(ctx.connect, source, (s) => untilSlotIdle(s, o.slot, 10_000));
    }
  }
}

async function loadRuntimes(ctx: CallContext, o: StreamOptions): Promise<{ streaming: Runtime[]; waiting: { name: string; startLsn: string }[] }> {
  const streaming: Runtime[] = [];
  const waiting: { name: string; startLsn: string }[] = [];
  for (const p of o.pipelines) {
    const state = await withConnection(ctx.connect, p.config.target, (t) => readCdcState(t, o.stateSchema(p.name), p.name));
    if (!state || state.slot !== o.slot) continue; // not joined: nothing to hold back for it
    if (state.parked || state.stoppedAt) continue; // nobody applies for it until it resumes
    if (state.phase === 'snapshot') waiting.push({ name: p.name, startLsn: state.startLsn });
    else streaming.push({ ...p, state, columns: null, written: new Set(), relationColumns: null, missing: new Map(), sourceShape: null, reconcile: true, skip: false, names: [], keyIndex: [] });
  }
  return { streaming, waiting };
}

async function readOnce(ctx: CallContext, o: StreamOptions, progress: StreamProgress): Promise<StreamProgress> {
  const { streaming } = await loadRuntimes(ctx, o);
  // By oid, not name: after a rename the stream's relations carry the new name, same oid.
  const byRelation = new Map(streaming.map((r) => [r.source.oid, r]));
  const service = new LogicalReplicationService(o.replication, {
    // Never acknowledge on the library's own timer: it would confirm what was received, not what was applied.
    acknowledge: { auto: false, timeoutSeconds: 0 },
    flowControl: { enabled: true },
  });
  let batch = new ChangeBatch();
  let batchStarted = 0;
  let inTransaction = false;
  let current: { lsn: string; time: Date } | null = null;
  /** The last commit received into the batch: what the batch's flush checkpoints. */
  let lastCommit: { lsn: string; endLsn: string; time: Date } | null = null;
  let confirmed: string | null = null;
  let stopped = false;
  /**
   * Commit time of the oldest source transaction received and not yet applied: lag in seconds is its
   * age, 0 when everything received is applied, however long ago this table last changed.
   */
  let oldestUnapplied: Date | null = null;
  const lagNow = () => (oldestUnapplied ? Math.max(0, (Date.now() - oldestUnapplied.getTime()) / 1000) : 0);
  o.onLag?.(lagNow);
  /** Asked to stop while a source transaction is being received: stop at its commit. */
  let ending = false;
  const rates: { at: number; rows: number }[] = [];

  /** The library reports lsn + 1 as flushed; the slot's confirmed_flush_lsn must be exactly what was applied (a commit record may start right there). */
  const sendFlushed = (lsn: string, ping = false) => service.acknowledge(formatLsn(lsnValue(lsn) - 1n), ping);

  let chain = Promise.resolve();
  let queued = 0;
  /**
   * A piece of a large source transaction being applied while the next one is decoded (spillSoon):
   * the target writes while the source's walsender and this reader go on. Everything else that
   * touches the targets or the slot (commits, keepalives, timers, the end) waits for it.
   */
  let inflight: Promise<void> | null = null;
  const serial = (fn: () => Promise<void>) => {
    queued++;
    return (chain = chain
      .then(async () => {
        if (inflight) await inflight.catch(() => undefined);
        return fn();
      })
      .finally(() => void queued--));
  };

  async function applyTo(r: Runtime, t: pg.PoolClient, tb: TableBatch | undefined): Promise<number> {
    if (r.reconcile || !r.columns) {
      // Cleared first: a relation message decoded while this piece applies sets it again, for the next piece.
      r.reconcile = false;
      await evolveTarget(r, t).catch((err: unknown) => {
        r.reconcile = true;
        throw err;
      });
    }
    if (!tb) return 0;
    return applyRows(r, t, tb, r.columns!);
  }

  /** A new relation shape (or the first batch): the target evolved per schemaChanges, in this transaction. */
  async function evolveTarget(r: Runtime, t: pg.PoolClient): Promise<void> {
    // Read from the source table as it is named now (a rename is followed by oid).
    const now = { ...r.config, source: { ...r.config.source, table: `${quoteIdent(r.source.schema)}.${quoteIdent(r.source.table)}` } };
    const before = new Set(((await targetColumns(t, r.config.target.table!)) ?? []).map((c) => c.name));
    const plan = await withConnection(ctx.connect, r.config.source, (s) => reconcileSchema(s, t, now, r.name)).catch((err: unknown) => {
      if (err instanceof SyncError && err.type === NON_RETRYABLE_FAILURES.schemaChanged)
        throw schemaChangedError(`${err.message}. The stream cannot follow this change: cdc stop --pipeline ${r.name}, then cdc start --pipeline ${r.name} copies the table anew in its new shape`);
      throw err;
    });
    const cols = (await targetColumns(t, r.config.target.table!)) ?? [];
    r.columns = new Map(cols.map((c) => [c.name, c.type]));
    r.written = new Set(plan.columns);
    // ADD COLUMN … DEFAULT: the rows already in the target get what the source's rows got.
    const added = before.size ? cols.filter((c) => !before.has(c.name)) : [];
    [r.missing, r.sourceShape] = await withConnection(ctx.connect, r.config.source, async (s) => {
      if (added.length) await backfillAddedColumns(s, t, r.config, r.source, added);
      return Promise.all([missingValues(s, r.config, r.source, [...r.written]), columnShape(s, r.source.oid)]);
    });
  }

  async function applyRows(r: Runtime, t: pg.PoolClient, tb: TableBatch, types: Map<string, string>): Promise<number> {
    const table = r.config.target.table!;
    let n = 0;
    if (tb.truncated) await t.query(truncateSql(table));
    const deletes: (string | null)[][] = [];
    // Grouped by the columns present, the unchanged TOAST ones (undefined) and whether the key moved.
    // `fill`: columns the change's (older) relation did not have yet, inserted with the source's missing value.
    type Group = { present: string[]; missing: string[]; fill: string[]; moved: boolean; rows: (string | null)[][] };
    const groups = new Map<string, Group>();
    const group = (present: string[], missing: string[], fill: string[], moved: boolean) => {
      const sig = `${moved}\u0001${present.join('\u0000')}\u0001${missing.join('\u0000')}\u0001${fill.join('\u0000')}`;
      let g = groups.get(sig);
      if (!g) groups.set(sig, (g = { present, missing, fill, moved, rows: [] }));
      return g;
    };
    // Rows with every value present, by the column names they were built from: grouped once per shape.
    const byShape = new Map<object, Group>();
    for (const op of tb.ops.values()) {
      if (op.kind === 'delete') {
        deletes.push(op.key);
        continue;
      }
      if (op.shape) {
        let g = byShape.get(op.shape);
        if (!g) {
          const present = Object.keys(op.row).filter((c) => r.written.has(c) && types.has(c));
          const fill = [...r.missing.keys()].filter((c) => !(c in op.row) && types.has(c));
          byShape.set(op.shape, (g = group(present, [], fill, false)));
        }
        const values: (string | null)[] = [];
        for (const c of g.present) values.push(op.row[c] as string | null);
        for (const c of g.fill) values.push(r.missing.get(c)!);
        g.rows.push(values);
        continue;
      }
      const usable = Object.keys(op.row).filter((c) => r.written.has(c) && types.has(c));
      const present = usable.filter((c) => op.row[c] !== undefined);
      const absent = [...r.missing.keys()].filter((c) => !(c in op.row) && types.has(c));
      const moved = !!op.from && usable.some((c) => op.row[c] === undefined);
      // A moved row takes the absent columns from its old key's target row, as it takes unchanged TOAST.
      const missing = [...usable.filter((c) => op.row[c] === undefined), ...(moved ? absent : [])];
      const fill = moved ? [] : absent;
      group(present, missing, fill, moved).rows.push([...present.map((c) => op.row[c] as string | null), ...fill.map((c) => r.missing.get(c)!), ...(moved ? op.from! : [])]);
    }
    const col = (c: string) => ({ name: c, type: types.get(c)! });
    const key = r.config.key.map(col);
    const run = async (sql: string | null, rows: unknown[]) => (sql ? ((await t.query(sql, [JSON.stringify(rows)])).rowCount ?? 0) : 0);
    // Moved keys first: they read the old key's target row, which the deletes below remove.
    for (const g of groups.values())
      if (g.moved) {
        n += await run(movedRowsSql(table, g.present.map(col), g.missing, key, key), g.rows);
        n += await run(updateWhereNoOldRowSql(table, g.present.map(col), key, key), g.rows);
      }
    if (deletes.length) n += (await t.query(deleteKeysSql(table, key), [JSON.stringify(deletes)])).rowCount ?? 0;
    for (const g of groups.values()) {
      if (g.moved) continue;
      if (g.missing.length) n += await run(updateRowsSql(table, g.present.map(col), key), g.rows);
      else n += await run(upsertRowsSql(table, [...g.present, ...g.fill].map(col), r.config.key, g.fill), g.rows);
    }
    return n;
  }

  /**
   * Targets whose transaction is open: a source transaction larger than batchRows is applied in
   * pieces as it arrives (memory stays bounded), and committed with its LSN at its source commit.
   */
  const open = new Map<string, { client: pg.PoolClient; ops: number; rows: number }>();
  let spilled = { changes: 0, ms: 0 };

  async function spill(full: ChangeBatch): Promise<void> {
    const began = Date.now();
    for (const r of [...streaming]) {
      const tb = full.tables.get(r.name);
      if (!tb) continue;
      let e = open.get(r.name);
      if (!e) {
        const client = await ctx.connect(r.config.target.profile, r.config.target.environment);
        open.set(r.name, (e = { client, ops: 0, rows: 0 }));
        await client.query('BEGIN');
      }
      try {
        e.rows += await applyTo(r, e.client, tb);
      } catch (err) {
        if (!cannotApply(err)) throw err;
        await e.client.query('ROLLBACK').catch(() => undefined);
        e.client.release();
        open.delete(r.name);
        await addEnumLabelsOrPark(r, err);
        continue;
      }
      e.ops += tb.ops.size;
    }
    spilled = { changes: spilled.changes + full.changes, ms: spilled.ms + Date.now() - began };
    o.onProgress?.({ ...progress, lagSeconds: lagNow() });
  }

  /**
   * A batch full inside a source transaction: applied (not committed) in the background while the
   * next one fills, so the target writes while the source decodes. At most one piece applies and
   * one fills (memory: two batches); the returned promise, when there is one, holds the reader
   * until the piece before has applied.
   */
  function spillSoon(fail: (err: unknown) => void): Promise<void> | undefined {
    const full = batch;
    batch = new ChangeBatch();
    const start = () => {
      // The reader may have failed while this piece waited for the one before (its transaction was rolled back).
      if (stopped) return;
      const p: Promise<void> = spill(full).finally(() => {
        if (inflight === p) inflight = null;
      });
      inflight = p;
      p.catch(fail);
    };
    if (!inflight) return void start();
    return inflight.then(start, () => undefined);
  }

  /**
   * A change of this pipeline cannot be applied (bad data, a constraint, SQL its target refuses, a
   * schema change it cannot follow): the pipeline is parked, its state row says why, and the reader
   * goes on for the others. Nothing waits for a parked pipeline (the slot's WAL stays bounded); it
   * resumes with `cdc start` (from its checkpoint while the slot still has it, else by a new copy).
   */
  async function park(r: Runtime, err: unknown): Promise<void> {
    const type = err instanceof SyncError ? err.type : classifySqlError(err).type;
    const reason = err instanceof SyncError ? err.message : describeSqlError(err, `applying the changes of ${r.source.schema}.${r.source.table} to ${r.config.target.table}`);
    await withConnection(ctx.connect, r.config.target, (t) => parkCdcState(t, o.stateSchema(r.name), r.name, type, reason));
    streaming.splice(streaming.indexOf(r), 1);
    for (const [k, v] of byRelation) if (v === r) byRelation.delete(k);
    o.log?.('cdc pipeline parked: its change cannot be applied; the slot streams on for the others', { pipeline: r.name, type, reason });
  }

  /**
   * A value of an enum label the target's type lacks: the labels are added (each in its own
   * transaction) and the slot is read again from its confirmed position, where this transaction
   * comes again (targets that committed it skip it). Anything else that cannot be applied parks.
   */
  async function addEnumLabelsOrPark(r: Runtime, err: unknown): Promise<void> {
    if (isUnknownEnumLabel(err)) {
      const added = await withConnection(ctx.connect, r.config.target, (t) => withConnection(ctx.connect, r.config.source, (s) => addMissingEnumLabels(s, t, r.config, r.source)));
      if (added > 0) {
        o.log?.('cdc: enum labels added to the target type; reading the slot again', { pipeline: r.name, added });
        throw new Restart();
      }
    }
    await park(r, err);
  }

  /** A failed or stopped reader: open target transactions roll back (the next reader replays them from the slot). */
  async function discardOpen(): Promise<void> {
    for (const e of open.values()) {
      await e.client.query('ROLLBACK').catch(() => undefined);
      e.client.release(true);
    }
    open.clear();
  }

  async function flush(): Promise<void> {
    if (!lastCommit) return;
    const commit = lastCommit;
    const began = Date.now();
    let rows = 0;
    for (const r of [...streaming]) {
      if (r.state.appliedLsn && compareLsn(commit.lsn, r.state.appliedLsn) <= 0) continue;
      const tb = batch.tables.get(r.name);
      const e = open.get(r.name);
      try {
        if (e) {
          // Opened by spill(): the rest of the transaction, the checkpoint, then the commit.
          e.rows += await applyTo(r, e.client, tb);
          if (!(await writeApplied(e.client, o.stateSchema(r.name), r.name, commit.lsn, commit.time, e.ops + (tb?.ops.size ?? 0)))) throw fenced(r.name, commit.lsn);
          await e.client.query('COMMIT');
          open.delete(r.name);
          e.client.release();
          rows += e.rows;
        } else
          rows += await withConnection(ctx.connect, r.config.target, (t) =>
            withTransaction(t, async () => {
              const n = await applyTo(r, t, tb);
              if (!(await writeApplied(t, o.stateSchema(r.name), r.name, commit.lsn, commit.time, tb?.ops.size ?? 0))) throw fenced(r.name, commit.lsn);
              return n;
            }),
          );
      } catch (err) {
        if (!cannotApply(err)) throw err;
        if (e) {
          await e.client.query('ROLLBACK').catch(() => undefined);
          e.client.release();
          open.delete(r.name);
        }
        await addEnumLabelsOrPark(r, err);
        continue;
      }
      r.state.appliedLsn = commit.lsn;
    }
    progress.rowsApplied += rows;
    progress.batches++;
    progress.lastBatch = { changes: spilled.changes + batch.changes, rows, applyMs: spilled.ms + Date.now() - began };
    spilled = { changes: 0, ms: 0 };
    progress.appliedLsn = commit.lsn;
    progress.lastCommitTime = commit.time.toISOString();
    const now = Date.now();
    rates.push({ at: now, rows: progress.rowsApplied });
    while (rates.length > 2 && now - rates[0]!.at > 5_000) rates.shift();
    progress.rowsPerSecond = rates.length > 1 ? ((progress.rowsApplied - rates[0]!.rows) * 1000) / Math.max(1, now - rates[0]!.at) : 0;
    batch = new ChangeBatch();
    lastCommit = null;
    oldestUnapplied = null;
    progress.lagSeconds = 0;
    await confirm(commit.endLsn);
  }

  let lastShapeCheck = 0;
  /**
   * An idle reader (nothing received unapplied) evolves each target to its source table's current
   * columns every few seconds: DDL reaches the stream only with the next change of that table, so a
   * column added to a table that then stays quiet never reached its target (generative seed
   * 1230066914, once segments lasted an hour). In its own target transaction; no LSN moves.
   */
  async function followIdleSchema(): Promise<void> {
    if (open.size || Date.now() - lastShapeCheck < 5_000) return;
    lastShapeCheck = Date.now();
    for (const r of [...streaming]) {
      if (!r.reconcile && r.columns) {
        const shape = await withConnection(ctx.connect, r.config.source, (s) => columnShape(s, r.source.oid));
        if (shape === r.sourceShape) continue;
        r.reconcile = true;
      }
      try {
        await withConnection(ctx.connect, r.config.target, (t) => withTransaction(t, () => applyTo(r, t, undefined)));
      } catch (err) {
        if (!cannotApply(err)) throw err;
        await addEnumLabelsOrPark(r, err);
      }
    }
  }

  /** The pipelines' state rows naming this slot, read afresh from their targets (the checkpoint rule's input). */
  async function members(): Promise<CheckpointMember[]> {
    const out: CheckpointMember[] = [];
    for (const p of o.pipelines) {
      const s = await withConnection(ctx.connect, p.config.target, (t) => readCdcState(t, o.stateSchema(p.name), p.name));
      if (s && s.slot === o.slot) out.push({ pipeline: p.name, phase: s.phase, startLsn: s.startLsn, appliedLsn: s.appliedLsn, parked: !!s.parked, stopped: !!s.stoppedAt });
    }
    return out;
  }

  let lastDecision = 0;
  /**
   * Confirms to the source what checkpoint.ts allows, deciding on state rows re-read under the
   * slot's shared lock: a join holds it exclusively while it takes its start LSN and writes its
   * row, so no confirm can pass a start it has not seen. Also run every 2 s without a new position:
   * a pipeline that joined and finished copying meanwhile makes this reader start again with it.
   */
  async function confirm(lsn: string | null): Promise<void> {
    const ahead = !!lsn && (!confirmed || compareLsn(lsn, confirmed) > 0);
    if (!ahead && Date.now() - lastDecision < 2_000) return;
    lastDecision = Date.now();
    const lock = await source();
    await lock.query(`SELECT pg_advisory_lock_shared(${slotLockSql})`, [o.slot]);
    let decision: ReturnType<typeof confirmable>;
    try {
      const applying = new Map(streaming.map((r) => [r.name, r.state.appliedLsn]));
      decision = confirmable({ wanted: lsn ?? confirmed ?? '0/0', members: await members(), applying });
      if (decision.kind === 'confirm' && ahead && decision.lsn && (!confirmed || compareLsn(decision.lsn, confirmed) > 0)) {
        confirmed = decision.lsn;
        progress.confirmedLsn = decision.lsn;
        await sendFlushed(decision.lsn);
      }
    } finally {
      await lock.query(`SELECT pg_advisory_unlock_shared(${slotLockSql})`, [o.slot]).catch(() => undefined);
    }
    if (decision.kind === 'restart') throw new Restart();
    if (decision.kind === 'fenced') throw fenced(decision.pipeline, decision.ours, decision.theirs);
  }

  /** One source connection for the reader's lifetime: the slot lock (join vs confirm). */
  let lockClient: pg.PoolClient | null = null;
  const source = async () => (lockClient ??= await ctx.connect(o.pipelines[0]!.config.source.profile, o.pipelines[0]!.config.source.environment));

  const done = () => !!o.untilLsn && !!progress.appliedLsn && compareLsn(progress.appliedLsn, o.untilLsn) >= 0;

  /** Takes one message into the batch; true when the batch is due (applied by the caller, asynchronously). */
  function onMessage(m: Decoded): boolean {
    switch (m.tag) {
      case 'begin': {
        inTransaction = true;
        current = { lsn: m.commitLsn, time: m.commitTime };
        oldestUnapplied ??= current.time;
        for (const r of streaming)
          r.skip = (!!r.state.appliedLsn && compareLsn(current.lsn, r.state.appliedLsn) <= 0) || compareLsn(current.lsn, r.state.startLsn) < 0;
        return false;
      }
      case 'relation': {
        const r = byRelation.get(m.relationOid);
        if (!r) return false;
        if (r.source.schema !== m.schema || r.source.table !== m.name) {
          o.log?.('cdc source table renamed: followed by its oid', { pipeline: r.name, from: `${r.source.schema}.${r.source.table}`, to: `${m.schema}.${m.name}` });
          r.source = { ...r.source, schema: m.schema, table: m.name };
        }
        // A new shape: the next batch evolves the target first, in its own transaction. Rows decoded
        // with the old shape simply lack the new columns, so they keep the target's values (a row
        // they insert takes the source's missing value of an ADD COLUMN … DEFAULT: applyTo).
        // The first shape seen by this reader evolves the target too when it was already evolved
        // (the idle check, before any change came): that was to the source's columns of then, and
        // this change may come after DDL since (seen: inserted values dropped, then backfilled with
        // the DEFAULT: generative seed 2124239088).
        const shape = m.columns.map((c) => `${c.name}:${c.typeOid}`).join(',');
        if (r.relationColumns !== shape && (r.relationColumns !== null || r.columns !== null)) r.reconcile = true;
        r.relationColumns = shape;
        r.names = targetNames(r.config, m.columns);
        r.keyIndex = r.config.key.map((k) => r.names.indexOf(k));
        return false;
      }
      case 'insert':
      case 'update':
      case 'delete': {
        const r = byRelation.get(m.relation.relationOid);
        if (!r || r.skip) return false;
        const name = r.name;
        if (m.tag === 'delete') {
          const old = m.key ?? m.old;
          if (!old) throw new Error(`pgoutput: a delete of ${r.source.schema}.${r.source.table} without its key`);
          batch.delete(name, keyFrom(r, old));
        } else {
          // REPLICA IDENTITY FULL: the decoder filled the new tuple's unchanged TOAST values from the old tuple.
          const row = toTarget(r, m.new);
          const old = m.tag === 'update' ? (m.key ?? m.old) : null;
          batch.upsert(name, r.config.key, row, old ? keyFrom(r, old) : undefined, r.names);
        }
        if (batchStarted === 0) batchStarted = Date.now();
        progress.changesReceived++;
        return batch.changes >= o.batchRows || batch.bytes >= (o.batchBytes ?? DEFAULT_BATCH_BYTES);
      }
      case 'truncate': {
        for (const rel of m.relations) {
          const r = byRelation.get(rel.relationOid);
          if (r && !r.skip) batch.truncate(r.name);
        }
        if (batchStarted === 0) batchStarted = Date.now();
        return false;
      }
      case 'commit': {
        inTransaction = false;
        if (current) lastCommit = { lsn: current.lsn, endLsn: m.commitEndLsn, time: current.time };
        progress.receivedLsn = lastCommit?.endLsn ?? progress.receivedLsn;
        // A transaction with nothing for us (a table whose pipeline is copying, say) is flushed on the
        // batch timer too: left pending, the reader would neither flush nor decide again until its
        // segment ended (seen: a joined pipeline's changes waited 30 s, generative seed 202).
        if (batchStarted === 0) batchStarted = Date.now();
        return batch.changes >= o.batchRows || batch.bytes >= (o.batchBytes ?? DEFAULT_BATCH_BYTES) || (batchStarted && Date.now() - batchStarted >= o.batchMs) || done() || reached(lastCommit);
      }
      default:
        return false;
    }
  }

  const reached = (c: { lsn: string } | null) => !!o.untilLsn && !!c && compareLsn(c.lsn, o.untilLsn) >= 0;

  async function flushNow(): Promise<void> {
    batchStarted = 0;
    await flush();
    o.onProgress?.({ ...progress, lagSeconds: lagNow() });
  }

  return await new Promise<StreamProgress>((resolve, reject) => {
    let settled = false;
    const finish = async (err?: unknown) => {
      if (settled) return;
      settled = true;
      stopped = true;
      clearInterval(timer);
      await service.stop().catch(() => undefined);
      // A piece still applying finishes (or fails) before its transaction is rolled back.
      if (inflight) await inflight.catch(() => undefined);
      await discardOpen();
      lockClient?.release();
      lockClient = null;
      if (err) reject(err);
      else resolve({ ...progress });
    };
    const fail = (err: unknown) => void finish(err);
    /** Ends the reader once what it received whole (up to its last commit) is applied. */
    const flushAndFinish = async () => {
      if (lastCommit) await flushNow();
      await finish();
    };

    service.on('data', (_lsn: string, message: Pgoutput.Message) => {
      const m = message as unknown as Decoded;
      if (stopped) return;
      // Most messages only join the batch: taken synchronously (no promise per row) unless a flush,
      // a timer or a keepalive is under way, so they stay in order with it.
      if (queued === 0 && m.tag !== 'commit') {
        try {
          // A batch full mid-transaction is applied (not committed) before more rows pile up.
          if (onMessage(m)) return inTransaction ? spillSoon(fail) : serial(() => flushNow()).catch(fail);
        } catch (err) {
          fail(err);
        }
        return;
      }
      return serial(async () => {
        if (stopped) return;
        if (onMessage(m)) await (inTransaction ? spillSoon(fail) : flushNow());
        // Asked to end (segment over, stop) inside a source transaction: it ends at that transaction's
        // commit, applied; rolling its pieces back would have the next reader receive it all again.
        if (ending && !inTransaction) await flushAndFinish();
        if (done()) await finish();
      }).catch(fail);
    });
    service.on('heartbeat', (raw: string, _ts: number, shouldRespond: boolean) => {
      // The library emits a keepalive as soon as it is parsed, but XLogData parsed before it may
      // still wait in its flow-control queue (handed over one by one as our handlers settle). Its
      // position then lies past changes we have not seen: taken now, while it is parsed, this says
      // whether everything the server sent before it has reached us (finding 13).
      const behind = libraryBacklog(service) > 0;
      return serial(async () => {
        if (stopped) return;
        const lsn = normalizeLsn(raw);
        progress.receivedLsn = lsn;
        const idle = !behind && libraryBacklog(service) === 0 && !inTransaction && batch.empty && !lastCommit;
        // Idle and everything received applied: WAL up to the server's position holds nothing for us
        // (other tables' writes), so confirm it too, or the slot would retain it until our next change.
        if (idle && streaming.length) await confirm(lsn);
        else if (shouldRespond) await sendFlushed(confirmed ?? '0/1');
        if (o.untilLsn && idle && compareLsn(lsn, o.untilLsn) >= 0) await finish();
      }).catch(fail);
    });
    service.on('error', (err: Error & { code?: string }) => fail(err.code === '42704' ? slotMissing(o.slot, err.message) : err));
    const timer = setInterval(() => {
      // A piece applying means a transaction is being received: nothing here is due, and a task queued
      // behind the piece would send every message decoded meanwhile down the slow path.
      if (inflight) return;
      serial(async () => {
        if (stopped) return;
        // An end asked for mid-transaction also ends here, should its commit have come some other way.
        if (ending && !inTransaction) return flushAndFinish();
        if (!inTransaction && lastCommit && batchStarted && Date.now() - batchStarted >= o.batchMs) await flushNow();
        else if (!inTransaction && !lastCommit && batch.empty) {
          await confirm(null);
          await followIdleSchema();
        }
        // Ask the server for a keepalive: it tells us its position (idle catch-up, untilLsn).
        if (confirmed) await sendFlushed(confirmed, true);
      }).catch(fail);
    }, Math.max(100, Math.min(1_000, o.batchMs)));
    // Only a transaction still being received defers the end. Pieces of one whose commit has arrived
    // are flushable now: deferring on them left the end to a data message that never came once the
    // source went quiet (seen: a segment ran on for minutes after its stop, the fault suite's hang).
    const onAbort = () =>
      void serial(async () => {
        if (inTransaction) {
          ending = true;
          o.log?.('the stream ends at the commit of the source transaction it is receiving', { slot: o.slot, changes: spilled.changes + batch.changes });
          return;
        }
        await flushAndFinish();
      }).catch(fail);
    if (ctx.signal?.aborted) onAbort();
    else ctx.signal?.addEventListener('abort', onAbort, { once: true });
    service
      .subscribe(new TextPgoutput({ protoVersion: 1, publicationNames: [o.publication] }), o.slot)
      .then(
        () => fail(new Error(`the replication stream of slot "${o.slot}" ended`)),
        (err: Error & { code?: string }) => fail(err.code === '42704' ? slotMissing(o.slot, err.message) : err),
      );
  }).catch(async (err) => {
    await chain.catch(() => undefined);
    throw err;
  });
}
