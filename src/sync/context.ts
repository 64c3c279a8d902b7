import type pg from 'pg';
import type { ReadOnlyAccess } from '../auth/credentials';
import { lookupEnvironment } from '../config/lookup';
import type { Config, PipelineConfig } from '../config/schema';
import { sourceColumns } from '../db/catalog';
import type { RecordTransform } from '../db/copyText';
import { adjustPlan, planColumns, type ColumnPlan } from '../db/syncSql';
import { targetColumns } from '../db/typeCatalog';
import { ConnectionBudget } from './gates';
import type { ResolvedRun } from './run';

/**
 * Opens a connection to one environment of a profile, as the caller's identity; with `access`, one
 * that may only read those tables (a READ_ONLY credential where the credential API issues one, and
 * a read-only session everywhere).
 */
export type Connector = (profile: string, environment: string, access?: ReadOnlyAccess) => Promise<pg.PoolClient>;

export interface SyncEngineDeps {
  config: Config;
  /** Named TypeScript row transforms registered with the worker. */
  rowTransforms?: Record<string, RecordTransform>;
  /** Shared by every sync on this worker; built from the environments' maxConnections when left out. */
  budget?: ConnectionBudget;
  log?: (message: string, fields: Record<string, unknown>) => void;
}

/** What each engine call needs besides its input: a way to connect, and ways to report. */
export interface CallContext {
  connect: Connector;
  /** Rows and bytes streamed so far in this call (heartbeats). */
  onProgress?: (progress: { rows: number; bytes: number }) => void;
  signal?: AbortSignal;
}

export const environmentKey = (side: { profile: string; environment: string }) => `${side.profile}/${side.environment}`;

export function connectionBudget(config: Config): ConnectionBudget {
  return new ConnectionBudget((key) => {
    const [profile, environment] = key.split('/') as [string, string];
    return lookupEnvironment(config, profile, environment).maxConnections;
  });
}

/** A connection for the duration of `fn`; one that failed is discarded rather than reused. */
export async function withConnection<R>(connect: Connector, side: { profile: string; environment: string }, fn: (c: pg.PoolClient) => Promise<R>, access?: ReadOnlyAccess): Promise<R> {
  const client = await connect(side.profile, side.environment, access);
  try {
    const result = await fn(client);
    client.release();
    return result;
  } catch (err) {
    client.release(true);
    throw err;
  }
}

/**
 * What a sync does with its source: reads its table (scoped to it), or a query's tables (unscoped:
 * the query names them). The engine never writes to a sync's source; a view or query whose
 * functions write (a sequence, an audit row) fails with SQLSTATE 25006, which says so.
 */
export const sourceAccess = (p: Pick<PipelineConfig, 'source'>): ReadOnlyAccess => ({ readOnly: true, ...(p.source.table && { tables: [p.source.table] }) });

/** Source and target connections together, within the worker's connection budget; the source only reads. */
export function withBoth<R>(
  budget: ConnectionBudget,
  ctx: CallContext,
  sides: { source: { profile: string; environment: string }; target: { profile: string; environment: string }; pipeline: Pick<PipelineConfig, 'source'> },
  fn: (source: pg.PoolClient, target: pg.PoolClient) => Promise<R>,
): Promise<R> {
  return budget.run([environmentKey(sides.source), environmentKey(sides.target)], () =>
    withConnection(ctx.connect, sides.target, (t) => withConnection(ctx.connect, sides.source, (s) => fn(s, t), sourceAccess(sides.pipeline))),
  );
}

/**
 * The column plan from the source's real columns, limited to columns the target has and writes
 * itself (not generated): what verify and delete detection compare. Chunks use reconcileSchema
 * (src/sync/schemaChanges.ts), which also evolves the target.
 */
export async function columnPlan(source: pg.ClientBase, target: pg.ClientBase, { pipeline: p, name }: Pick<ResolvedRun, 'pipeline' | 'name'>): Promise<ColumnPlan> {
  const columns = (await targetColumns(target, p.target.table!)) ?? [];
  const writable = new Set(columns.filter((c) => !c.generated).map((c) => c.name));
  const plan = planColumns(p, await sourceColumns(source, p), name);
  return adjustPlan(plan, plan.columns.filter((c) => !writable.has(c)), []);
}

/** Whether a finished run keeps its cursor for the next one (incremental) or starts over. */
export const incremental = (p: PipelineConfig) => p.mode === 'append' || (p.mode === 'upsert' && p.cursor !== undefined);

/** How a merge treats softDeleteColumn: a source marker whose rows are deleted, or (deletes: soft) the target's own marker, cleared when a key comes back. */
export const softDeletes = (p: PipelineConfig): { softDeleteColumn?: string; deleteMarker?: string } =>
  p.deletes === 'soft' ? { deleteMarker: p.softDeleteColumn } : { softDeleteColumn: p.softDeleteColumn };
