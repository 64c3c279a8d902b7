import type { CredentialProvider, Session } from '../auth/credentials';
import { unseal, type SealPrivateKey } from '../auth/sealed';
import { lookupGroup } from '../config/lookup';
import type { Config } from '../config/schema';
import type { RecordTransform } from '../db/copyText';
import type { PoolRegistry } from '../db/pools';
import type { Metrics } from '../metrics';
import { createSyncEngine, type CallContext, type ConnectionBudget, type ResolvedRun, type DeleteBucketInput, type DeletesInput, type ResyncBucketInput, type VerifyBucketInput, type VerifyInput } from '../sync';
import { activityContext } from './context';
import { heartbeatEvery, runActivity } from './adapter';
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
  sealingKeys: SealPrivateKey[];
  rowTransforms?: Record<string, RowTransform>;
  metrics?: Metrics;
  /** The worker's connection budget (shared with other activity sets); one is made when left out. */
  budget?: ConnectionBudget;
}

/**
 * Opens a run's sealed IdP token for this process only: it opens only in the workflow it was sealed
 * for (the id the server gave this activity) and, when `scope` is given, for that job or pipeline.
 */
export function sessionOf(auth: JobAuth | undefined, keys: SealPrivateKey[], scope?: string): Session | undefined {
  if (!auth) return undefined;
  const workflowId = activityContext()?.info.workflowExecution?.workflowId;
  if (!workflowId) throw new Error('a sealed IdP token opens only inside the workflow it was sealed for');
  return { idpToken: unseal(auth.idpToken, keys, { workflowId, ...(scope !== undefined && { scope }) }), ...(auth.sameAs && { expectedIdentity: auth.sameAs }) };
}

/** Thin Temporal adapters over the sync engine: connect as the run's identity, heartbeat, map failures. */
export function createSyncActivities({ config, pools, sealingKeys, rowTransforms = {}, metrics, budget }: SyncDeps) {
  const engine = createSyncEngine({ config, rowTransforms, budget, log: (message, fields) => activityContext()?.log.info(message, fields) });

  function callContext({ auth, pipeline }: { auth?: JobAuth; pipeline: string }, heartbeatExtra: Record<string, unknown> = {}): CallContext {
    const session = sessionOf(auth, sealingKeys, `pipeline:${pipeline}`);
    const act = activityContext();
    return {
      connect: (profile, environment, access) => pools.connect(profile, environment, session, access),
      onProgress: ({ rows, bytes }) => act?.heartbeat({ rows, bytes, ...heartbeatExtra }),
      signal: act?.cancellationSignal,
    };
  }

  /**
   * The run, resolved once for this activity: its label names the target table and the engine
   * takes it as it is. Undefined when the name does not resolve: the engine call then resolves it
   * inside runActivity, so the error is classified like any other.
   */
  function resolved(input: { pipeline: string; environment?: string }): ResolvedRun | undefined {
    try {
      return engine.resolve(input);
    } catch {
      return undefined;
    }
  }
  const targetOf = (run: ResolvedRun | undefined) => run?.pipeline.target.table ?? '?';

  async function planSync(input: PlanSyncInput): Promise<SyncPlan> {
    const run = resolved(input);
    return runActivity({ statement: `planSync(${input.pipeline})` }, () => engine.plan(callContext(input), input, run));
  }

  /** One chunk: up to batchRows rows after `after` (in `partition`, for partitioned runs), committed with its cursor. */
  async function syncChunk(input: SyncChunkInput): Promise<ChunkResult> {
    const { pipeline } = input;
    const run = resolved(input);
    const timer = metrics?.chunkSeconds.startTimer({ pipeline });
    const label = {
      statement: `syncChunk(${pipeline}) into ${targetOf(run)}`,
      configPath: `pipelines.${pipeline}`,
      cancelled: { message: `syncChunk(${pipeline}) cancelled; the chunk was rolled back`, when: 'abort' as const },
    };
    return runActivity(label, async () => {
      const result = await engine.chunk(callContext(input, { after: input.after, partition: input.partition }), input, run);
      timer?.();
      metrics?.rowsCopied.inc({ pipeline }, result.rowsCopied);
      metrics?.rowsWritten.inc({ pipeline }, result.rowsWritten);
      activityContext()?.heartbeat({ rows: result.rowsCopied, bytes: result.bytes, committed: result.cursor, partition: input.partition });
      return result;
    });
  }

  /** Ends a run: a full refresh swaps its loaded table in (one transaction); incremental runs keep their cursor. */
  async function finishSync(input: FinishSyncInput): Promise<FinishResult> {
    const run = resolved(input);
    return runActivity({ statement: `finishSync(${input.pipeline}) on ${targetOf(run)}` }, () => engine.finish(callContext(input), input, run));
  }

  /**
   * A bucket's digest queries stream nothing for a while: heartbeat on a timer, so a dead worker's
   * bucket is retried elsewhere within the heartbeat timeout and a live one is not. The timer runs
   * at a third of that timeout (at most 5 s): at a fixed 5 s, a workflow asking for a 5 s timeout
   * saw every bucket longer than that timed out and retried while its first attempt still ran.
   */
  async function withHeartbeats<R>(details: Record<string, unknown>, fn: () => Promise<R>): Promise<R> {
    const act = activityContext();
    const every = heartbeatEvery(act?.info.heartbeatTimeoutMs || 15_000);
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
    const run = resolved(input);
    return runActivity({ statement: `planDeletes(${input.pipeline})` }, () => withHeartbeats({ phase: 'plan deletes' }, () => engine.planDeletes(callContext(input), input, run)));
  }

  /** A bucket activity that writes the target: named with its table; a cancel rolls the bucket back. */
  const bucketLabel = (activity: string, pipeline: string, bucket: number, run: ResolvedRun | undefined) => ({
    statement: `${activity}(${pipeline}, bucket ${bucket}) on ${targetOf(run)}`,
    cancelled: { message: `${activity}(${pipeline}) cancelled; the bucket was rolled back`, when: 'abort' as const },
  });

  /** One bucket of delete detection: its deletes (or marks) commit with the bucket's done flag. */
  async function deleteBucket(input: DeleteBucketInput & { auth?: JobAuth }): Promise<DeleteBucketResult> {
    const { pipeline, bucket } = input;
    const run = resolved(input);
    return runActivity(bucketLabel('deleteBucket', pipeline, bucket, run), async () => {
      const result = await withHeartbeats({ phase: 'deletes', bucket }, () => engine.deleteBucket(callContext(input, { bucket }), input, run));
      if (!result.alreadyCommitted) metrics?.rowsWritten.inc({ pipeline }, result.rowsDeleted);
      return result;
    });
  }

  /** One bucket of a compare-then-copy re-sync: its merged and deleted rows commit with the bucket's done flag. */
  async function resyncBucket(input: ResyncBucketInput & { auth?: JobAuth }): Promise<ResyncBucketResult> {
    const { pipeline, bucket } = input;
    const run = resolved(input);
    return runActivity(bucketLabel('resyncBucket', pipeline, bucket, run), async () => {
      const result = await withHeartbeats({ phase: 're-sync', bucket }, () => engine.resyncBucket(callContext(input, { bucket }), input, run));
      if (!result.alreadyCommitted) metrics?.rowsWritten.inc({ pipeline }, result.rowsWritten + result.rowsDeleted);
      return result;
    });
  }

  async function planVerify(input: VerifyInput & { mode?: VerifyPlan['mode']; auth?: JobAuth }): Promise<VerifyPlan> {
    const run = resolved(input);
    return runActivity({ statement: `planVerify(${input.pipeline})` }, () => withHeartbeats({ phase: 'plan verify' }, () => engine.planVerify(callContext(input), input, run)));
  }

  /** One bucket of a verify; reads only. Mismatches are counted in lakebase_verify_mismatches_total. */
  async function verifyBucket(input: VerifyBucketInput & { auth?: JobAuth }): Promise<VerifyBucketResult> {
    const { pipeline } = input;
    const run = resolved(input);
    const label = { statement: `verifyBucket(${pipeline})`, cancelled: { message: `verifyBucket(${pipeline}) cancelled`, when: 'abort' as const } };
    return runActivity(label, async () => {
      const result = await withHeartbeats({ phase: 'verify', range: input.range }, () => engine.verifyBucket(callContext(input), input, run));
      metrics?.verifyMismatches.inc({ pipeline }, result.mismatches);
      return result;
    });
  }

  async function planGroup({ group }: { group: string }): Promise<GroupPlan> {
    return runActivity({ statement: `planGroup(${group})` }, async () => {
      const g = lookupGroup(config, group);
      return { group, pipelines: g.pipelines, parallelism: g.parallelism };
    });
  }

  return { planSync, syncChunk, finishSync, planDeletes, deleteBucket, resyncBucket, planVerify, verifyBucket, planGroup };
}
