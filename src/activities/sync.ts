import { Transform } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealingKey } from '../auth/sealed';
import type { Config, PipelineConfig } from '../config/schema';
import { copyRowTransform, type RecordTransform } from '../db/copyText';
import type { PoolRegistry } from '../db/pools';
import { ensureStateTable, readState, sameCursor, writeState } from '../db/syncState';
import {
  chunkBoundarySql,
  copyInSql,
  copyOutSql,
  createStageSql,
  estimateSql,
  lastRowSql,
  mergeSql,
  planColumns,
  refreshTableName,
  sourceRelation,
  type ColumnPlan,
  type CursorValue,
} from '../db/syncSql';
import { quoteIdent, quoteTable } from '../db/identifiers';
import { configFailure, toActivityFailure } from './failures';
import type { ChunkResult, FinishSyncInput, GroupPlan, JobAuth, PlanSyncInput, SyncChunkInput, SyncPlan } from './types';

/**
 * A named TypeScript row transform registered with the worker. It sees one row as PostgreSQL text
 * values keyed by target column, and returns the row to write (missing columns become NULL) or
 * null to drop it.
 */
export type RowTransform = RecordTransform;

export interface SyncDeps {
  config: Config;
  pools: PoolRegistry;
  credentials: CredentialProvider;
  /** Keys that open sealed IdP tokens of login-idp jobs. */
  sealingKeys: SealingKey[];
  rowTransforms?: Record<string, RowTransform>;
}

/** Opens a job's sealed IdP token for this process only. */
export function sessionOf(auth: JobAuth | undefined, keys: SealingKey[]): Session | undefined {
  return auth ? { idpToken: unseal(auth.idpToken, keys) } : undefined;
}

const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };
const HEARTBEAT_MS = 2_000;

/** Counts bytes and rows (newlines: COPY text escapes embedded ones) as they stream past, and heartbeats. */
function meter(onProgress: (rows: number, bytes: number) => void): Transform & { rows: number; bytes: number } {
  let last = 0;
  const t = new Transform({
    transform(chunk: Buffer, _enc, done) {
      m.bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) m.rows++;
      const now = Date.now();
      if (now - last > HEARTBEAT_MS) {
        last = now;
        onProgress(m.rows, m.bytes);
      }
      done(null, chunk);
    },
  });
  const m = Object.assign(t, { rows: 0, bytes: 0 });
  return m;
}

function heartbeat(details: unknown): void {
  try {
    Context.current().heartbeat(details);
  } catch {
    // Called outside an activity (direct use in tests/tools): nothing to report to.
  }
}

function cancellation(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

export function createSyncActivities({ config, pools, sealingKeys, rowTransforms = {} }: SyncDeps) {
  function pipelineOf(name: string): PipelineConfig {
    const p = config.pipelines[name];
    if (!p) throw configFailure(`unknown pipeline "${name}"; configured pipelines: ${Object.keys(config.pipelines).join(', ') || '(none)'}`);
    return p;
  }

  async function withClient<R>(p: PipelineConfig, side: 'source' | 'target', auth: JobAuth | undefined, fn: (c: pg.PoolClient) => Promise<R>): Promise<R> {
    const client = await pools.connect(p[side].profile, p[side].environment, sessionOf(auth, sealingKeys));
    try {
      const result = await fn(client);
      client.release();
      return result;
    } catch (err) {
      client.release(true);
      throw err;
    }
  }

  async function columnPlan(c: pg.ClientBase, p: PipelineConfig, name: string): Promise<ColumnPlan> {
    const res = await c.query({ text: `SELECT * FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
    return planColumns(p, res.fields.map((f) => f.name), name);
  }

  function transformFor(p: PipelineConfig, pipeline: string): RowTransform | undefined {
    const name = p.transform.rowTransform;
    if (!name) return undefined;
    const fn = rowTransforms[name];
    if (!fn)
      throw configFailure(
        `pipelines.${pipeline}.transform.rowTransform: no row transform "${name}" is registered with this worker; registered: ${Object.keys(rowTransforms).join(', ') || '(none)'}`,
      );
    return fn;
  }

  /** Whether a finished run keeps its cursor for the next one (incremental) or starts over. */
  const incremental = (p: PipelineConfig) => p.mode === 'append' || (p.mode === 'upsert' && p.cursor !== undefined);

  async function planSync({ pipeline, runId, auth, continuing }: PlanSyncInput): Promise<SyncPlan> {
    const p = pipelineOf(pipeline);
    transformFor(p, pipeline);
    const statement = `planSync(${pipeline})`;
    try {
      const plan = await withClient(p, 'source', auth, async (c) => {
        const plan = await columnPlan(c, p, pipeline);
        // Compiles the SQL transforms now, so a typo fails before any state changes.
        await c.query(`SELECT ${plan.select.join(', ')} FROM ${sourceRelation(p)} LIMIT 0`);
        if (p.cursor) {
          const src = plan.sourceOrder[0]!;
          const { rows } = await c.query(`SELECT EXISTS (SELECT 1 FROM ${sourceRelation(p)} WHERE src.${quoteIdent(src)} IS NULL) AS has_null`);
          if (rows[0].has_null)
            throw configFailure(`pipelines.${pipeline}.cursor: column "${p.cursor}" has NULL values; rows with a NULL cursor would never sync. Use a NOT NULL column (e.g. coalesce it in a source query).`);
        }
        return plan;
      });
      const state = await withClient(p, 'target', auth, async (c) => {
        const targetColumns = (await c.query({ text: `SELECT * FROM ${quoteTable(p.target.table!)} LIMIT 0`, types: RAW_TEXT })).fields.map((f) => f.name);
        const missing = plan.columns.filter((col) => !targetColumns.includes(col));
        if (missing.length)
          throw configFailure(
            `pipelines.${pipeline}.target: table ${p.target.table} has no column ${missing.map((m) => `"${m}"`).join(', ')} for what the source provides; add ${missing.length > 1 ? 'them' : 'it'} to the target, or exclude/rename ${missing.length > 1 ? 'them' : 'it'} under transform`,
          );
        await ensureStateTable(c, p.stateSchema);
        await c.query('BEGIN');
        try {
          const s = await readState(c, p.stateSchema, pipeline, true);
          if (continuing) {
            await c.query('COMMIT');
            return { start: s.cursor, resumed: true };
          }
          const unfinished = s.phase !== 'idle';
          const start = unfinished || incremental(p) ? s.cursor : null;
          if (p.mode === 'full-refresh' && !unfinished) {
            // A fresh full refresh loads into a new staging table next to the target.
            const refresh = refreshTableName(p.target.table!);
            await c.query(`DROP TABLE IF EXISTS ${refresh}`);
            await c.query(`CREATE TABLE ${refresh} (LIKE ${quoteTable(p.target.table!)} INCLUDING DEFAULTS)`);
          }
          await writeState(c, p.stateSchema, { ...s, cursor: start, phase: p.mode === 'full-refresh' ? 'loading' : 'running', runId });
          await c.query('COMMIT');
          return { start, resumed: unfinished && s.cursor !== null };
        } catch (err) {
          await c.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
      const estimatedRows = await withClient(p, 'source', auth, async (c) => {
        const { rows } = await c.query<{ 'QUERY PLAN': [{ Plan: { 'Plan Rows': number } }] }>(estimateSql(p, plan, state.start));
        return Math.round(rows[0]!['QUERY PLAN'][0].Plan['Plan Rows']);
      });
      return {
        pipeline,
        mode: p.mode,
        chunkRows: p.batchRows,
        order: plan.order,
        rowTransform: p.transform.rowTransform,
        source: { profile: p.source.profile, environment: p.source.environment, relation: p.source.table ?? 'query' },
        target: { profile: p.target.profile, environment: p.target.environment, table: p.target.table! },
        startCursor: state.start,
        resumed: state.resumed,
        estimatedRows,
      };
    } catch (err) {
      throw toActivityFailure(err, statement);
    }
  }

  /**
   * Copies the rows after `after` (at most batchRows) from source to target as a stream, merges
   * them and advances the cursor in one target transaction.
   */
  async function syncChunk({ pipeline, runId, after, auth }: SyncChunkInput): Promise<ChunkResult> {
    const p = pipelineOf(pipeline);
    const transform = transformFor(p, pipeline);
    const target = p.target.table!;
    const statement = `syncChunk(${pipeline})`;
    try {
      return await withClient(p, 'target', auth, (t) =>
        withClient(p, 'source', auth, async (s) => {
          await t.query('BEGIN');
          try {
            const state = await readState(t, p.stateSchema, pipeline, true);
            if (state.runId !== runId)
              throw ApplicationFailure.create({
                type: 'LakebaseSyncConflict',
                nonRetryable: true,
                message: `pipeline "${pipeline}" is now owned by run ${state.runId ?? '(none)'}; this run (${runId}) stops so two runs never write at once`,
              });
            if (!sameCursor(state.cursor, after)) {
              // An earlier attempt committed this chunk and then lost its answer: report, copy nothing.
              await t.query('ROLLBACK');
              return { cursor: state.cursor, rowsCopied: 0, rowsWritten: 0, bytes: 0, done: false, alreadyCommitted: true };
            }
            const plan = await columnPlan(s, p, pipeline);
            const boundary = await s.query<CursorValue[]>({ text: chunkBoundarySql(p, plan, after, p.batchRows), rowMode: 'array', types: RAW_TEXT });
            const upTo = boundary.rows[0] ?? (await s.query<CursorValue[]>({ text: lastRowSql(p, plan, after), rowMode: 'array', types: RAW_TEXT })).rows[0];
            if (!upTo) {
              await t.query('ROLLBACK');
              return { cursor: after, rowsCopied: 0, rowsWritten: 0, bytes: 0, done: true, alreadyCommitted: false };
            }
            const full = p.mode === 'full-refresh';
            const into = full ? refreshTableName(target) : 'lbw_stage';
            if (!full) await t.query(createStageSql(into, target, plan.columns));

            const progress = meter((rows, bytes) => heartbeat({ rows, bytes, after }));
            const out = t.query(copyFrom(copyInSql(into, plan.columns)));
            const stages: NodeJS.ReadWriteStream[] = [progress];
            if (transform) {
              const describe = (r: Record<string, CursorValue>) => p.key.map((k) => `${k}=${r[k]}`).join(', ');
              stages.push(copyRowTransform(plan.columns, plan.columns, transform, describe));
            }
            await pipe(s.query(copyTo(copyOutSql(p, plan, after, upTo))), ...(stages as [Transform]), out, { signal: cancellation() });
            const rowsCopied = out.rowCount;

            let rowsWritten = full ? rowsCopied : 0;
            if (!full) {
              for (const sql of mergeSql({ target, stage: into, columns: plan.columns, key: p.key, mode: p.mode === 'append' ? 'append' : 'upsert', softDeleteColumn: p.softDeleteColumn }))
                rowsWritten += (await t.query(sql)).rowCount ?? 0;
            }
            await writeState(t, p.stateSchema, { ...state, cursor: upTo, rowsWritten: state.rowsWritten + rowsWritten, chunks: state.chunks + 1 });
            await t.query('COMMIT');
            heartbeat({ rows: progress.rows, bytes: progress.bytes, committed: upTo });
            return { cursor: upTo, rowsCopied, rowsWritten, bytes: progress.bytes, done: boundary.rows.length === 0, alreadyCommitted: false };
          } catch (err) {
            await t.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }),
      );
    } catch (err) {
      if ((err as Error).name === 'RowTransformError') throw configFailure(`pipelines.${pipeline}: ${(err as Error).message}`);
      if ((err as Error).name === 'AbortError') throw ApplicationFailure.create({ type: 'CancelledFailure', message: `${statement} cancelled; the chunk was rolled back` });
      throw toActivityFailure(err, `${statement} into ${target}`);
    }
  }

  /** Ends a run: a full refresh swaps its staging table in (one transaction); incremental runs keep their cursor. */
  async function finishSync({ pipeline, runId, auth }: FinishSyncInput): Promise<{ rowsInTarget: number | null }> {
    const p = pipelineOf(pipeline);
    const target = p.target.table!;
    try {
      return await withClient(p, 'target', auth, async (t) => {
        await t.query('BEGIN');
        try {
          const state = await readState(t, p.stateSchema, pipeline, true);
          if (state.runId !== runId) {
            await t.query('ROLLBACK');
            return { rowsInTarget: null }; // finished by an earlier attempt, or taken over
          }
          let rowsInTarget: number | null = null;
          if (p.mode === 'full-refresh') {
            const refresh = refreshTableName(target);
            // Readers keep seeing the old rows until this commits; never a half table.
            await t.query(`LOCK TABLE ${quoteTable(target)} IN ACCESS EXCLUSIVE MODE`);
            await t.query(`TRUNCATE ${quoteTable(target)}`);
            rowsInTarget = (await t.query(`INSERT INTO ${quoteTable(target)} SELECT * FROM ${refresh}`)).rowCount ?? 0;
            await t.query(`DROP TABLE ${refresh}`);
          }
          await writeState(t, p.stateSchema, { ...state, phase: 'idle', runId: null, cursor: incremental(p) ? state.cursor : null });
          await t.query('COMMIT');
          return { rowsInTarget };
        } catch (err) {
          await t.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
      });
    } catch (err) {
      throw toActivityFailure(err, `finishSync(${pipeline}) on ${target}`);
    }
  }

  async function planGroup({ group }: { group: string }): Promise<GroupPlan> {
    const g = config.syncGroups[group];
    if (!g) throw configFailure(`unknown sync group "${group}"; configured: ${Object.keys(config.syncGroups).join(', ') || '(none)'}`);
    return { group, pipelines: g.pipelines, parallelism: g.parallelism };
  }

  return { planSync, syncChunk, finishSync, planGroup };
}
