import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealingKey } from '../auth/sealed';
import { lookupGroup } from '../config/lookup';
import type { Config } from '../config/schema';
import type { RecordTransform } from '../db/copyText';
import type { PoolRegistry } from '../db/pools';
import type { Metrics } from '../metrics';
import { createSyncEngine, type CallContext, type ConnectionBudget, type DeleteBucketInput, type DeletesInput, type ResyncBucketInput, type VerifyBucketInput, type VerifyInput } from '../sync';
import { activityContext } from './context';
import { toActivityFailure } from './failures';
import type {
  ChunkResult,
  DeleteBucketResult,
  DeletePlan,
  FinishResult,
  FinishSyncInput,
  GroupPlan,
  JobAuth,
  PlanSyncInput,
  ResyncBucketResult,
  SyncChunkInput,
  SyncPlan,
  VerifyBucketResult,
  VerifyPlan,
} from './types';

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

  /**
   * A bucket's digest queries stream nothing for a while: heartbeat on a timer, so a dead worker's
   * bucket is retried elsewhere within the heartbeat timeout and a live one is not. The timer runs
   * at a third of that timeout (at most 5 s): at a fixed 5 s, a workflow asking for a 5 s timeout
   * saw every bucket longer than that timed out and retried while its first attempt still ran.
   */
  async function withHeartbeats<R>(details: Record<string, unknown>, fn: () => Promise<R>): Promise<R> {
    const act = activityContext();
    const every = Math.min(5_000, Math.max(100, (act?.info.heartbeatTimeoutMs || 15_000) / 3));
    act?.heartbeat(details);
    const timer = act && setInterval(() => act.heartbeat(details), every);
    try {
      return await fn();
    } finally {
      if (timer) clearInterval(timer);
    }
  }

  /** The run's delete-detection buckets (made once per run, kept in the state schema). */
  async function planDeletes(input: DeletesInput & { auth?: JobAuth }): Promise<DeletePlan> {
    try {
      return await withHeartbeats({ phase: 'plan deletes' }, () => engine.planDeletes(callContext(input.auth), input));
    } catch (err) {
      throw toActivityFailure(err, `planDeletes(${input.pipeline})`);
    }
  }

  /** One bucket of delete detection: its deletes (or marks) commit with the bucket's done flag. */
  async function deleteBucket(input: DeleteBucketInput & { auth?: JobAuth }): Promise<DeleteBucketResult> {
    const { pipeline, bucket } = input;
    try {
      const result = await withHeartbeats({ phase: 'deletes', bucket }, () => engine.deleteBucket(callContext(input.auth, { bucket }), input));
      if (!result.alreadyCommitted) metrics?.rowsWritten.inc({ pipeline }, result.rowsDeleted);
      return result;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new CancelledFailure(`deleteBucket(${pipeline}) cancelled; the bucket was rolled back`);
      throw toActivityFailure(err, `deleteBucket(${pipeline}, bucket ${bucket}) on ${config.pipelines[pipeline]?.target.table ?? '?'}`);
    }
  }

  /** One bucket of a compare-then-copy re-sync: its merged and deleted rows commit with the bucket's done flag. */
  async function resyncBucket(input: ResyncBucketInput & { auth?: JobAuth }): Promise<ResyncBucketResult> {
    const { pipeline, bucket } = input;
    try {
      const result = await withHeartbeats({ phase: 're-sync', bucket }, () => engine.resyncBucket(callContext(input.auth, { bucket }), input));
      if (!result.alreadyCommitted) metrics?.rowsWritten.inc({ pipeline }, result.rowsWritten + result.rowsDeleted);
      return result;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new CancelledFailure(`resyncBucket(${pipeline}) cancelled; the bucket was rolled back`);
      throw toActivityFailure(err, `resyncBucket(${pipeline}, bucket ${bucket}) on ${config.pipelines[pipeline]?.target.table ?? '?'}`);
    }
  }

  async function planVerify(input: VerifyInput & { mode?: VerifyPlan['mode']; auth?: JobAuth }): Promise<VerifyPlan> {
    try {
      return await withHeartbeats({ phase: 'plan verify' }, () => engine.planVerify(callContext(input.auth), input));
    } catch (err) {
      throw toActivityFailure(err, `planVerify(${input.pipeline})`);
    }
  }

  /** One bucket of a verify; reads only. Mismatches are counted in lakebase_verify_mismatches_total. */
  async function verifyBucket(input: VerifyBucketInput & { auth?: JobAuth }): Promise<VerifyBucketResult> {
    const { pipeline } = input;
    try {
      const result = await withHeartbeats({ phase: 'verify', range: input.range }, () => engine.verifyBucket(callContext(input.auth), input));
      metrics?.verifyMismatches.inc({ pipeline }, result.mismatches);
      return result;
    } catch (err) {
      if ((err as Error).name === 'AbortError') throw new CancelledFailure(`verifyBucket(${pipeline}) cancelled`);
      throw toActivityFailure(err, `verifyBucket(${pipeline})`);
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

  return { planSync, syncChunk, finishSync, planDeletes, deleteBucket, resyncBucket, planVerify, verifyBucket, planGroup };
}
