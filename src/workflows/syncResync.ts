import { setCurrentDetails } from '@temporalio/workflow';
import type { ResyncPlan } from '../activities/types';
import { nonRetryableTypes, streamingActivities } from './activityCalls';
import { inLanes } from './lanes';
import { plannedFingerprint, recordBucketWrites, type SyncRun } from './syncRun';

/**
 * Compare-then-copy step (the plan chose it, SyncPlan.resync): each bucket compares source and
 * target, copies and merges what differs and deletes (deletes: hard) in one transaction with its
 * done flag, `parallelism` at a time. It replaces the copy and deletes steps of such a run.
 */
export async function resyncBuckets(run: SyncRun, resync: ResyncPlan, parallelism: number): Promise<void> {
  const { pipeline, environment, runId, progress } = run;
  const r = progress.resync!;
  const { resyncBucket } = streamingActivities(run.heartbeatTimeout, nonRetryableTypes(run.wakeVisible));
  setCurrentDetails(run.describe());
  await inLanes(
    resync.buckets.filter((b) => !b.done),
    parallelism,
    async (b) => {
      const done = await run.call(() =>
        resyncBucket({
          pipeline, environment, runId, auth: run.identity.auth, bucket: b.bucket, leafRows: resync.leafRows, digests: resync.digests, groupRows: resync.groupRows, ...plannedFingerprint(run.plan),
        }),
      );
      r.done += 1;
      r.rowsCopied += done.rowsCopied;
      r.rowsWritten += done.rowsWritten;
      r.rowsDeleted += done.rowsDeleted;
      progress.rowsCopied += done.rowsCopied;
      progress.rowsWritten += done.rowsWritten + done.rowsDeleted;
      recordBucketWrites(run);
    },
  );
}
