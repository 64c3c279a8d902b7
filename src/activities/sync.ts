import type { Transform } from 'node:stream';
import { pipeline as pipe } from 'node:stream/promises';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealingKey } from '../auth/sealed';
import { pipelineInEnvironment } from '../config/pipelines';
import type { Config, PipelineConfig } from '../config/schema';
import type { Metrics } from '../metrics';
import { CopyMeter, copyRowTransform, type RecordTransform } from '../db/copyText';
import type { PoolRegistry } from '../db/pools';
import { ensureStateTable, readState, sameCursor, writeState } from '../db/syncState';
import {
  copyInSql,
  copyOutSql,
  createStageSql,
  estimateSql,
  mergeSql,
  planColumns,
  refreshTableName,
  sourceRelation,
  type ColumnPlan,
  type CursorValue,
} from '../db/syncSql';
import { quoteIdent, quoteTable } from '../db/identifiers';
import { RAW_TEXT } from '../db/rawText';
import { activityContext } from './context';
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
  metrics?: Metrics;
}

/** Opens a job's sealed IdP token for this process only. */
export function sessionOf(auth: JobAuth | undefined, keys: SealingKey[]): Session | undefined {
  return auth ? { idpToken: unseal(auth.idpToken, keys) } : undefined;
}

const heartbeat = (details: unknown) => activityContext()?.heartbeat(details);

/** A counting semaphore: at most `limit` holders at once, the rest wait in order. */
function semaphore(limit: number) {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <R>(fn: () => Promise<R>): Promise<R> => {
    if (active >= limit) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

export function createSyncActivities({ config, pools, sealingKeys, rowTransforms = {}, metrics }: SyncDeps) {
  // A chunk holds two connections (COPY out and COPY in). When both come from one pool, chunks
  // taking one each and waiting for the second could starve the pool; at most poolMax/2 chunks
  // per shared pool go at once, so each always gets its pair.
  const pairGates = new Map<string, ReturnType<typeof semaphore>>();
  function pairGate(p: PipelineConfig) {
    if (p.source.profile !== p.target.profile || p.source.environment !== p.target.environment) return <R>(fn: () => Promise<R>) => fn();
    const id = `${p.source.profile}/${p.source.environment}`;
    let gate = pairGates.get(id);
    if (!gate) {
      gate = semaphore(Math.max(1, Math.floor(pools.environment(p.source.profile, p.source.environment).poolMax / 2)));
      pairGates.set(id, gate);
    }
    return gate;
  }

  /** The pipeline's config, with both sides switched to `environment` when one is given (`--env staging`). */
  function pipelineOf(name: string, environment?: string): PipelineConfig {
    const p = config.pipelines[name];
    if (!p) throw configFailure(`unknown pipeline "${name}"; configured pipelines: ${Object.keys(config.pipelines).join(', ') || '(none)'}`);
    if (!environment) return p;
    for (const side of ['source', 'target'] as const) {
      const prof = config.profiles[p[side].profile];
      if (!prof?.environments[environment])
        throw configFailure(`--env ${environment}: profile "${p[side].profile}" (the ${side} of ${name}) has no environment "${environment}"; defined: ${Object.keys(prof?.environments ?? {}).join(', ')}`);
    }
    return pipelineInEnvironment(p, environment);
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

  /** The column plan, leaving out columns the target generates itself (GENERATED ALWAYS … STORED). */
  async function columnPlan(c: pg.ClientBase, p: PipelineConfig, name: string, generated: string[] = []): Promise<ColumnPlan> {
    const res = await c.query({ text: `SELECT * FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
    const plan = planColumns(p, res.fields.map((f) => f.name), name);
    if (generated.length === 0) return plan;
    const keep = plan.columns.map((col) => !generated.includes(col));
    return { ...plan, select: plan.select.filter((_, i) => keep[i]), columns: plan.columns.filter((_, i) => keep[i]) };
  }

  async function generatedColumns(t: pg.ClientBase, table: string): Promise<string[]> {
    const { rows } = await t.query<{ name: string }>(
      `SELECT attname AS name FROM pg_attribute WHERE attrelid = $1::regclass AND attgenerated <> '' AND NOT attisdropped`,
      [quoteTable(table)],
    );
    return rows.map((r) => r.name);
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

  async function planSync({ pipeline, runId, auth, continuing, environment }: PlanSyncInput): Promise<SyncPlan> {
    const p = pipelineOf(pipeline, environment);
    transformFor(p, pipeline);
    const statement = `planSync(${pipeline})`;
    try {
      const generated = await withClient(p, 'target', auth, (t) => generatedColumns(t, p.target.table!));
      const plan = await withClient(p, 'source', auth, async (c) => {
        const plan = await columnPlan(c, p, pipeline, generated);
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
        if (p.mode === 'upsert') {
          const { rows } = await c.query<{ ok: boolean }>(
            `SELECT EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = $1::regclass AND i.indisunique AND i.indpred IS NULL
               AND (SELECT array_agg(a.attname::text ORDER BY a.attname::text) FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey))
                 = (SELECT array_agg(k ORDER BY k) FROM unnest($2::text[]) k)) AS ok`,
            [quoteTable(p.target.table!), p.key],
          );
          if (!rows[0]!.ok)
            throw configFailure(
              `pipelines.${pipeline}: mode upsert merges on key (${p.key.join(', ')}), but ${p.target.table} has no primary key or unique index on exactly those columns; add one (ALTER TABLE … ADD PRIMARY KEY (${p.key.join(', ')})) or use mode append`,
            );
        }
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
            return { start: s.cursor, resumed: true, initialLoad: false };
          }
          const unfinished = s.phase !== 'idle';
          const start = unfinished || incremental(p) ? s.cursor : null;
          const empty = (await c.query(`SELECT NOT EXISTS (SELECT 1 FROM ${quoteTable(p.target.table!)}) AS empty`)).rows[0].empty as boolean;
          const initialLoad = p.mode === 'upsert' && !p.cursor && !p.softDeleteColumn && start === null && empty;
          if (p.mode === 'full-refresh' && !unfinished) {
            // A fresh full refresh loads into a new staging table next to the target.
            const refresh = refreshTableName(p.target.table!);
            await c.query(`DROP TABLE IF EXISTS ${refresh}`);
            await c.query(`CREATE TABLE ${refresh} (LIKE ${quoteTable(p.target.table!)} INCLUDING DEFAULTS)`);
          }
          await writeState(c, p.stateSchema, { ...s, cursor: start, phase: p.mode === 'full-refresh' ? 'loading' : 'running', runId });
          await c.query('COMMIT');
          return { start, resumed: unfinished && s.cursor !== null, initialLoad };
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
        initialLoad: state.initialLoad,
      };
    } catch (err) {
      throw toActivityFailure(err, statement);
    }
  }

  /**
   * Copies the rows after `after` (at most batchRows) from source to target as a stream, merges
   * them and advances the cursor in one target transaction.
   */
  async function syncChunk({ pipeline, runId, after, auth, initialLoad, environment }: SyncChunkInput): Promise<ChunkResult> {
    const p = pipelineOf(pipeline, environment);
    const transform = transformFor(p, pipeline);
    const target = p.target.table!;
    const statement = `syncChunk(${pipeline})`;
    const timer = metrics?.chunkSeconds.startTimer({ pipeline });
    try {
      return await pairGate(p)(() => withClient(p, 'target', auth, (t) =>
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
            const plan = await columnPlan(s, p, pipeline, await generatedColumns(t, target));

            /** Streams the chunk from the source into `into`; the meter sees source rows before any transform. */
            const copyInto = async (into: string) => {
              const meter = new CopyMeter((rows, bytes) => heartbeat({ rows, bytes, after }));
              const out = t.query(copyFrom(copyInSql(into, plan.columns)));
              const stages: Transform[] = [meter];
              if (transform) {
                const describe = (r: Record<string, CursorValue>) => p.key.map((k) => `${k}=${r[k]}`).join(', ');
                stages.push(copyRowTransform(plan.columns, plan.columns, transform, describe));
              }
              await pipe(s.query(copyTo(copyOutSql(p, plan, after, p.batchRows))), ...(stages as [Transform]), out, { signal: activityContext()?.cancellationSignal });
              return { meter, written: out.rowCount };
            };

            const merge = p.mode === 'upsert' && !initialLoad;
            let copied: Awaited<ReturnType<typeof copyInto>>;
            let rowsWritten = 0;
            if (p.mode === 'full-refresh') {
              copied = await copyInto(refreshTableName(target));
              rowsWritten = copied.written;
            } else if (!merge) {
              // append, or the first load of an empty target: straight in. The state row makes it exactly-once.
              try {
                copied = await copyInto(quoteTable(target));
              } catch (err) {
                if (p.mode === 'upsert' && (err as { code?: string }).code === '23505')
                  // Someone else wrote one of these keys meanwhile; the workflow redoes the chunk with a merge.
                  throw ApplicationFailure.create({ type: 'LakebaseInitialLoadConflict', nonRetryable: true, message: `${statement}: a key already exists in ${target}; switching to merge` });
                throw err;
              }
              rowsWritten = copied.written;
            } else {
              copied = await copyInto(await stage());
              rowsWritten = await mergeStage();
            }
            async function stage() {
              await t.query(createStageSql('lbw_stage', target, plan.columns));
              return 'lbw_stage';
            }
            async function mergeStage() {
              let n = 0;
              for (const sql of mergeSql({ target, stage: 'lbw_stage', columns: plan.columns, key: p.key, mode: 'upsert', softDeleteColumn: p.softDeleteColumn }))
                n += (await t.query(sql)).rowCount ?? 0;
              return n;
            }

            const { meter } = copied;
            const last = meter.lastRow();
            if (meter.rows === 0 || !last) {
              await t.query('ROLLBACK');
              return { cursor: after, rowsCopied: 0, rowsWritten: 0, bytes: 0, done: true, alreadyCommitted: false };
            }
            const cursor = plan.order.map((c) => last[plan.columns.indexOf(c)] ?? null);
            await writeState(t, p.stateSchema, { ...state, cursor, rowsWritten: state.rowsWritten + rowsWritten, chunks: state.chunks + 1 });
            await t.query('COMMIT');
            timer?.();
            metrics?.rowsCopied.inc({ pipeline }, meter.rows);
            metrics?.rowsWritten.inc({ pipeline }, rowsWritten);
            heartbeat({ rows: meter.rows, bytes: meter.bytes, committed: cursor });
            return { cursor, rowsCopied: meter.rows, rowsWritten, bytes: meter.bytes, done: meter.rows < p.batchRows, alreadyCommitted: false };
          } catch (err) {
            await t.query('ROLLBACK').catch(() => undefined);
            throw err;
          }
        }),
      ));
    } catch (err) {
      if ((err as Error).name === 'RowTransformError') throw configFailure(`pipelines.${pipeline}: ${(err as Error).message}`);
      if ((err as Error).name === 'AbortError') throw new CancelledFailure(`${statement} cancelled; the chunk was rolled back`);
      throw toActivityFailure(err, `${statement} into ${target}`);
    }
  }

  /** Ends a run: a full refresh swaps its staging table in (one transaction); incremental runs keep their cursor. */
  async function finishSync({ pipeline, runId, auth, environment }: FinishSyncInput): Promise<{ rowsInTarget: number | null }> {
    const p = pipelineOf(pipeline, environment);
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
