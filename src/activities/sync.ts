import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealingKey } from '../auth/sealed';
import { lookupGroup } from '../config/lookup';
import type { Config } from '../config/schema';
import type { RecordTransform } from '../db/copyText';
import type { PoolRegistry } from '../db/pools';
import type { Metrics } from '../metrics';
import { createSyncEngine, type CallContext, type ConnectionBudget } from '../sync';
import { activityContext } from './context';
import { toActivityFailure } from './failures';
import type { ChunkResult, FinishResult, FinishSyncInput, GroupPlan, JobAuth, PlanSyncInput, SyncChunkInput, SyncPlan } from './types';

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
  /** The worker's connection budget (shared with other activity sets); one is made when left out. */
  budget?: ConnectionBudget;
}

/** Opens a job's sealed IdP token for this process only. */
export function sessionOf(auth: JobAuth | undefined, keys: SealingKey[]): Session | undefined {
  return auth ? { idpToken: unseal(auth.idpToken, keys) } : undefined;
}

/** Thin Temporal adapters over the sync engine: connect as the run's identity, heartbeat, map failures. */
export function createSyncActivities({ config, pools, sealingKeys, rowTransforms = {}, metrics, budget }: SyncDeps) {
  const engine = createSyncEngine({ config, rowTransforms, budget, log: (message, fields) => activityContext()?.log.info(message, fields) });

  function callContext(auth: JobAuth | undefined, heartbeatExtra: Record<string, unknown> = {}): CallContext {
    const session = sessionOf(auth, sealingKeys);
    const act = activityContext();
    return {
      connect: (profile, environment) => pools.connect(profile, environment, session),
      onProgress: ({ rows, bytes }) => act?.heartbeat({ rows, bytes, ...heartbeatExtra }),
      signal: act?.cancellationSignal,
    };
  }

  async function planSync(input: PlanSyncInput): Promise<SyncPlan> {
    try {
      return await engine.plan(callContext(input.auth), input);
    } catch (err) {
      throw toActivityFailure(err, `planSync(${input.pipeline})`);
    }
  }

  /** One chunk: up to batchRows rows after `after` (in `partition`, for partitioned runs), committed with its cursor. */
  async function syncChunk(input: SyncChunkInput): Promise<ChunkResult> {
    const { pipeline } = input;
    const timer = metrics?.chunkSeconds.startTimer({ pipeline });
    try {
      const result = await engine.chunk(callContext(input.auth, { after: input.after, partition: input.partition }), input);
      timer?.();
      metrics?.rowsCopied.inc({ pipeline }, result.rowsCopied);
      metrics?.rowsWritten.inc({ pipeline }, result.rowsWritten);
      activityContext()?.heartbeat({ rows: result.rowsCopied, bytes: result.bytes, committed: result.cursor, partition: input.partition });
      return result;
    } catch (err) {
      if ((err as Error).name === 'RowTransformError')
        throw ApplicationFailure.create({ type: 'LakebaseConfigError', nonRetryable: true, message: `pipelines.${pipeline}: ${(err as Error).message}` });
      if ((err as Error).name === 'AbortError') throw new CancelledFailure(`syncChunk(${pipeline}) cancelled; the chunk was rolled back`);
      throw toActivityFailure(err, `syncChunk(${pipeline}) into ${config.pipelines[pipeline]?.target.table ?? '?'}`);
    }
  }

  /** Ends a run: a full refresh swaps its loaded table in (one transaction); incremental runs keep their cursor. */
  async function finishSync(input: FinishSyncInput): Promise<FinishResult> {
    try {
      return await engine.finish(callContext(input.auth), input);
    } catch (err) {
      throw toActivityFailure(err, `finishSync(${input.pipeline}) on ${config.pipelines[input.pipeline]?.target.table ?? '?'}`);
    }
  }

  async function planGroup({ group }: { group: string }): Promise<GroupPlan> {
    try {
      const g = lookupGroup(config, group);
      return { group, pipelines: g.pipelines, parallelism: g.parallelism };
    } catch (err) {
      throw toActivityFailure(err, `planGroup(${group})`);
    }
  }

  return { planSync, syncChunk, finishSync, planGroup };
}
