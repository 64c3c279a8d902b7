import { createCredentialProvider } from '../../src/auth/credentials';
import type { Config } from '../../src/config/schema';
import { createPoolRegistry, type PoolRegistry } from '../../src/db/pools';
import { createLogger } from '../../src/logger';
import { createSyncEngine, type CallContext, type SyncEngine, type SyncPlan, type VerifyBucketResult } from '../../src/sync';

/** The sync engine on its own (no Temporal): pools as the worker builds them, and the context the activities pass. */
export function engineFor(config: Config): { pools: PoolRegistry; engine: SyncEngine; ctx: CallContext } {
  const logger = createLogger({ level: 'silent' });
  const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
  return { pools, engine: createSyncEngine({ config }), ctx: { connect: (profile, environment) => pools.connect(profile, environment) } };
}

/** What one run driven by runSync did. */
export interface EngineRun {
  plan: SyncPlan;
  /** Rows written by compare-then-copy buckets (re-syncs), deleted by them or by delete detection. */
  written: number;
  deleted: number;
  copied: number;
}

/**
 * One whole run of a pipeline on the engine, in the order the dataSync workflow takes: plan (with
 * compare allowed); compare-then-copy buckets or partition chunks; delete detection unless the
 * re-sync deleted in its own pass or the run was a first load; finish. Two at a time, like parallelism 2.
 */
export async function runSync(engine: SyncEngine, ctx: CallContext, pipeline: string, runId: string): Promise<EngineRun> {
  const plan = await engine.plan(ctx, { pipeline, runId, partitioned: true, compare: true });
  const run: EngineRun = { plan, written: 0, deleted: 0, copied: 0 };
  const twoAtATime = async <T>(items: T[], fn: (x: T) => Promise<void>) => {
    const queue = [...items];
    await Promise.all([0, 1].map(async () => { for (let x = queue.shift(); x !== undefined; x = queue.shift()) await fn(x); }));
  };
  if (plan.resync?.method === 'compare') {
    const { leafRows, digests, groupRows } = plan.resync;
    await twoAtATime(plan.resync.buckets.filter((b) => !b.done), async (b) => {
      const r = await engine.resyncBucket(ctx, { pipeline, runId, bucket: b.bucket, leafRows, digests, groupRows });
      run.written += r.rowsWritten;
      run.deleted += r.rowsDeleted;
      run.copied += r.rowsCopied;
    });
  } else {
    await twoAtATime(plan.partitions!.filter((x) => !x.done), async (part) => {
      for (let after = part.cursor, done = false; !done; ) ({ cursor: after, done } = await engine.chunk(ctx, { pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad }));
    });
    if (plan.deletes && plan.deletes !== 'ignore' && !plan.initialLoad) {
      const d = await engine.planDeletes(ctx, { pipeline, runId });
      await twoAtATime(d.buckets.filter((b) => !b.done), async (b) => {
        const r = await engine.deleteBucket(ctx, { pipeline, runId, bucket: b.bucket, leafRows: d.leafRows });
        run.deleted += r.rowsDeleted; // after the await: `+= await` would add to a stale sum
      });
    }
  }
  await engine.finish(ctx, { pipeline, runId });
  return run;
}

/** A verify of the pipeline on the engine: plan, then every bucket; mismatches summed, differences listed. */
export async function runVerify(engine: SyncEngine, ctx: CallContext, pipeline: string) {
  const plan = await engine.planVerify(ctx, { pipeline });
  const results: VerifyBucketResult[] = [];
  for (const range of plan.buckets) results.push(await engine.verifyBucket(ctx, { pipeline, mode: plan.mode, range, leafRows: plan.leafRows, runCursor: plan.runCursor }));
  const sum = (k: 'mismatches' | 'sourceRows' | 'targetRows') => results.reduce((n, r) => n + r[k], 0);
  return { plan, mismatches: sum('mismatches'), sourceRows: sum('sourceRows'), targetRows: sum('targetRows'), differences: results.flatMap((r) => r.differences) };
}
