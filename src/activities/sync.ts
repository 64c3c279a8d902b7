import type pg from 'pg';
import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealingKey } from '../auth/sealed';
import type { Config, PipelineConfig } from '../config/schema';
import { MAX_BIND_PARAMS, keysetSelect, planColumns, sourceRelation, upsertStatement } from '../db/syncSql';
import type { PoolRegistry } from '../db/pools';
import { configFailure, toActivityFailure } from './failures';
import type { Batch, JobAuth, ReadBatchInput, SqlText, SyncPlan, WriteResult } from './types';

/** A named TypeScript row transform registered with the worker. Return null to drop the row. */
export type RowTransform = (row: Record<string, SqlText>) => Record<string, SqlText> | null;

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

// Every value comes back as PostgreSQL's own text: no float rounding, no Date truncation.
const RAW_TEXT: pg.CustomTypesConfig = { getTypeParser: () => (value: string) => value };

/** Temporal rejects payloads over 2 MB and warns above 512 KiB; stay below both (this path is for small batches). */
const BATCH_BYTE_BUDGET = 450_000;

export function createSyncActivities({ config, pools, sealingKeys, rowTransforms = {} }: SyncDeps) {
  function pipelineOf(name: string): PipelineConfig {
    const p = config.pipelines[name];
    if (!p) throw configFailure(`unknown pipeline "${name}"; configured pipelines: ${Object.keys(config.pipelines).join(', ') || '(none)'}`);
    return p;
  }

  /** Runs `fn` on a connection to one side of the pipeline, always giving the connection back. */
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

  async function sourceColumns(client: pg.PoolClient, p: PipelineConfig): Promise<string[]> {
    const res = await client.query({ text: `SELECT * FROM ${sourceRelation(p)} LIMIT 0`, types: RAW_TEXT });
    return res.fields.map((f) => f.name);
  }

  async function planSync({ pipeline, auth }: { pipeline: string; auth?: JobAuth }): Promise<SyncPlan> {
    const p = pipelineOf(pipeline);
    if (p.mode === 'full-refresh')
      throw configFailure(`pipelines.${pipeline}.mode: full-refresh is not supported by this version; use upsert or append`);
    if (p.transform.rowTransform && !rowTransforms[p.transform.rowTransform])
      throw configFailure(
        `pipelines.${pipeline}.transform.rowTransform: no row transform "${p.transform.rowTransform}" is registered with this worker; registered: ${Object.keys(rowTransforms).join(', ') || '(none)'}`,
      );
    try {
      await withClient(p, 'source', auth, async (c) => planColumns(p, await sourceColumns(c, p), pipeline));
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

  async function readBatch({ pipeline, after, limit, auth }: ReadBatchInput): Promise<Batch> {
    const p = pipelineOf(pipeline);
    const statement = `readBatch(${pipeline})`;
    try {
      const { plan, res } = await withClient(p, 'source', auth, async (c) => {
        const plan = planColumns(p, await sourceColumns(c, p), pipeline);
        const res = await c.query<SqlText[]>({
          text: keysetSelect(p, plan, after !== null, limit),
          values: after ?? [],
          rowMode: 'array',
          types: RAW_TEXT,
        });
        return { plan, res };
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

  async function writeBatch({ pipeline, batch, auth }: { pipeline: string; batch: Batch; auth?: JobAuth }): Promise<WriteResult> {
    const p = pipelineOf(pipeline);
    if (batch.rows.length === 0) return { rowsWritten: 0 };
    const mode = p.mode === 'append' ? 'append' : 'upsert';
    const rowsPerStatement = Math.max(1, Math.floor(MAX_BIND_PARAMS / batch.columns.length));
    try {
      return await withClient(p, 'target', auth, async (client) => {
        let rowsWritten = 0;
        // One transaction per batch: a failed attempt leaves nothing behind, a retry starts clean.
        await client.query('BEGIN');
        try {
          for (let start = 0; start < batch.rows.length; start += rowsPerStatement) {
            const slice = batch.rows.slice(start, start + rowsPerStatement);
            const res = await client.query(upsertStatement(p.target.table!, batch.columns, p.key, slice.length, mode), slice.flat());
            rowsWritten += res.rowCount ?? 0;
          }
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK').catch(() => undefined);
          throw err;
        }
        return { rowsWritten };
      });
    } catch (err) {
      throw toActivityFailure(err, `writeBatch(${pipeline}) into ${p.target.table}`);
    }
  }

  return { planSync, readBatch, transformBatch, writeBatch };
}
