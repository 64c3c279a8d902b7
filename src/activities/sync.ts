import type pg from 'pg';
import type { Config, PipelineConfig } from '../config/schema';
import { MAX_BIND_PARAMS, keysetSelect, planColumns, sourceRelation, upsertStatement } from '../db/syncSql';
import type { PoolRegistry } from '../db/pools';
import { configFailure, toActivityFailure } from './failures';
import type { Batch, ReadBatchInput, SqlText, SyncPlan, WriteResult } from './types';

/** A named TypeScript row transform registered with the worker. Return null to drop the row. */
export type RowTransform = (row: Record<string, SqlText>) => Record<string, SqlText> | null;

export interface SyncDeps {
  config: Config;
  pools: PoolRegistry;
  rowTransforms?: Record<string, RowTransform>;
}

// Every value comes back as PostgreSQL's own text: no float rounding, no Date truncation.
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/** Temporal rejects payloads over 2 MB and warns above 512 KiB; stay below both (this path is for small batches). */
const BATCH_BYTE_BUDGET = 450_000;

export function createSyncActivities({ config, pools, rowTransforms = {} }: SyncDeps) {
  function pipelineOf(name: string): PipelineConfig {
    const p = config.pipelines[name];
    if (!p) throw configFailure(`unknown pipeline "${name}"; configured pipelines: ${Object.keys(config.pipelines).join(', ') || '(none)'}`);
    return p;
  }

  async function sourceColumns(p: PipelineConfig): Promise<string[]> {
    const pool = pools.get(p.source.profile, p.source.environment);
    const res = await pool.query({ text: `SELECT * FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
    return res.fields.map((f) => f.name);
  }

  async function planSync({ pipeline }: { pipeline: string }): Promise<SyncPlan> {
    const p = pipelineOf(pipeline);
    if (p.mode === 'full-refresh')
      throw configFailure(`pipelines.${pipeline}.mode: full-refresh is not supported by this version; use upsert or append`);
    if (p.transform.rowTransform && !rowTransforms[p.transform.rowTransform])
      throw configFailure(
        `pipelines.${pipeline}.transform.rowTransform: no row transform "${p.transform.rowTransform}" is registered with this worker; registered: ${Object.keys(rowTransforms).join(', ') || '(none)'}`,
      );
    try {
      planColumns(p, await sourceColumns(p), pipeline);
    } catch (err) {
      throw toActivityFailure(err, `planSync(${pipeline}) reading source columns`);
    }
    return {
      pipeline,
      mode: p.mode,
      batchRows: p.batchRows,
      rowTransform: p.transform.rowTransform,
      source: { profile: p.source.profile, environment: p.source.environment, relation: p.source.table ?? 'query' },
      target: { profile: p.target.profile, environment: p.target.environment, table: p.target.table! },
    };
  }

  async function readBatch({ pipeline, after, limit }: ReadBatchInput): Promise<Batch> {
    const p = pipelineOf(pipeline);
    const statement = `readBatch(${pipeline})`;
    try {
      const plan = planColumns(p, await sourceColumns(p), pipeline);
      const pool = pools.get(p.source.profile, p.source.environment);
      const res = await pool.query<SqlText[]>({
        text: keysetSelect(p, plan, after !== null, limit),
        values: after ?? [],
        rowMode: 'array',
        types: RAW_TEXT,
      });
      let rows = res.rows;
      let bytes = 0;
      for (let i = 0; i < rows.length; i++) {
        for (const v of rows[i]!) bytes += v === null ? 4 : v.length + 3;
        if (bytes > BATCH_BYTE_BUDGET && i > 0) {
          rows = rows.slice(0, i);
          break;
        }
      }
      const last = rows[rows.length - 1];
      return { columns: plan.columns, rows, lastKey: last ? plan.keyIndex.map((i) => last[i] ?? null) : null };
    } catch (err) {
      throw toActivityFailure(err, statement);
    }
  }

  async function transformBatch({ pipeline, batch }: { pipeline: string; batch: Batch }): Promise<Batch> {
    const p = pipelineOf(pipeline);
    const name = p.transform.rowTransform;
    if (!name) return batch;
    const fn = rowTransforms[name];
    if (!fn) throw configFailure(`pipelines.${pipeline}.transform.rowTransform: "${name}" is not registered with this worker`);
    const out: SqlText[][] = [];
    let columns = batch.columns;
    for (const row of batch.rows) {
      const record = Object.fromEntries(batch.columns.map((c, i) => [c, row[i] ?? null]));
      let result: Record<string, SqlText> | null;
      try {
        result = fn(record);
      } catch (err) {
        const key = p.key.map((k) => `${k}=${record[k]}`).join(', ');
        throw configFailure(`row transform "${name}" failed on row ${key}: ${(err as Error).message}`);
      }
      if (result === null) continue;
      if (out.length === 0) columns = Object.keys(result);
      out.push(columns.map((c) => result[c] ?? null));
    }
    return { columns, rows: out, lastKey: batch.lastKey };
  }

  async function writeBatch({ pipeline, batch }: { pipeline: string; batch: Batch }): Promise<WriteResult> {
    const p = pipelineOf(pipeline);
    if (batch.rows.length === 0) return { rowsWritten: 0 };
    const mode = p.mode === 'append' ? 'append' : 'upsert';
    const rowsPerStatement = Math.max(1, Math.floor(MAX_BIND_PARAMS / batch.columns.length));
    const client = await connect(pools.get(p.target.profile, p.target.environment), `writeBatch(${pipeline})`);
    let rowsWritten = 0;
    try {
      // One transaction per batch: a failed attempt leaves nothing behind, a retry starts clean.
      await client.query('BEGIN');
      for (let start = 0; start < batch.rows.length; start += rowsPerStatement) {
        const slice = batch.rows.slice(start, start + rowsPerStatement);
        const res = await client.query(upsertStatement(p.target.table!, batch.columns, p.key, slice.length, mode), slice.flat());
        rowsWritten += res.rowCount ?? 0;
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release(true);
      throw toActivityFailure(err, `writeBatch(${pipeline}) into ${p.target.table}`);
    }
    client.release();
    return { rowsWritten };
  }

  return { planSync, readBatch, transformBatch, writeBatch };
}

async function connect(pool: pg.Pool, statement: string): Promise<pg.PoolClient> {
  try {
    return await pool.connect();
  } catch (err) {
    throw toActivityFailure(err, `${statement} connecting`);
  }
}
