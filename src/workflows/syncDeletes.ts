import { patched, setCurrentDetails } from '@temporalio/workflow';
import type { SyncPlan } from '../activities/types';
import { nonRetryableTypes, stepActivities, streamingActivities } from './activityCalls';
import { inLanes } from './lanes';
import { plannedFingerprint, recordBucketWrites, type SyncRun } from './syncRun';

/** Runs of pipelines with `deletes` look for target rows whose key left the source before finishing. */
export const DELETES_PATCH = 'sync-deletes';

/** Deletes step: buckets of the key space compared, target rows whose key left the source deleted (or marked). */
export async function detectDeletes(run: SyncRun, plan: SyncPlan): Promise<void> {
  // An upsert's first load puts exactly the source's rows in place: nothing to delete; a
  // compare-then-copy re-sync deleted in its own pass.
  if (plan.resync?.method === 'compare') return;
  if (!(plan.deletes && plan.deletes !== 'ignore' && !plan.initialLoad && patched(DELETES_PATCH))) return;
  const { pipeline, environment, runId, progress } = run;
  const nonRetryable = nonRetryableTypes(run.wakeVisible);
  const { planDeletes } = stepActivities(nonRetryable);
  const found = await run.call(() => planDeletes({ pipeline, environment, runId, auth: run.identity.auth, ...plannedFingerprint(run.plan) }));
  const deletes = (progress.deletes = {
    buckets: found.buckets.length,
    done: found.buckets.filter((b) => b.done).length,
    rowsDeleted: found.buckets.reduce((n, b) => n + b.rowsDeleted, 0),
  });
  setCurrentDetails(run.describe());
  const { deleteBucket } = streamingActivities(run.heartbeatTimeout, nonRetryable);
  await inLanes(
    found.buckets.filter((b) => !b.done),
    plan.parallelism ?? 1,
    async (b) => {
      const r = await run.call(() => deleteBucket({ pipeline, environment, runId, auth: run.identity.auth, bucket: b.bucket, leafRows: found.leafRows, ...plannedFingerprint(found) }));
      deletes.done += 1;
      deletes.rowsDeleted += r.rowsDeleted;
      progress.rowsWritten += r.rowsDeleted;
      recordBucketWrites(run);
    },
  );
}
