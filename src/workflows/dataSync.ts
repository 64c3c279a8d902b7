import { setCurrentDetails } from '@temporalio/workflow';
import { NON_RETRYABLE } from '../failureTypes';
import { idpTokenSignal, reloginUpdate } from './activityCalls';
import { copyInOrder, copyPartitions } from './syncCopy';
import { detectDeletes, DELETES_PATCH } from './syncDeletes';
import { finishRun, verifyRun, VERIFY_PATCH } from './syncFinish';
import { endDryRun, planRun, PARTITIONED_SYNC_PATCH, RESYNC_PATCH, warmTokens } from './syncPlan';
import { resyncBuckets } from './syncResync';
import { COMPUTE_WAKING_PATCH, progressQuery, startSyncRun, type DataSyncInput, type SyncProgress } from './syncRun';

export { NON_RETRYABLE, COMPUTE_WAKING_PATCH, DELETES_PATCH, PARTITIONED_SYNC_PATCH, RESYNC_PATCH, VERIFY_PATCH, idpTokenSignal, progressQuery, reloginUpdate };
export type { DataSyncInput, SyncProgress };

/**
 * One pipeline's sync, as named steps over one run state (src/workflows/syncRun.ts):
 * plan → copy (in partition lanes, or in key order; or compare-then-copy buckets) → deletes → finish → verify.
 * Continue-as-new (in the copy step) starts again at plan with the progress so far.
 */
export async function dataSync(input: DataSyncInput): Promise<SyncProgress> {
  const run = startSyncRun(input);
  const { plan, partitioned } = await planRun(run);
  if (input.dryRun) return endDryRun(run, plan);
  await warmTokens(run, plan);
  if (plan.resync?.method === 'compare') await resyncBuckets(run, plan.resync, plan.parallelism ?? 1);
  else if (partitioned && plan.partitions) await copyPartitions(run, plan.partitions, plan.parallelism ?? 1);
  else await copyInOrder(run);
  await detectDeletes(run, plan);
  await finishRun(run, partitioned);
  await verifyRun(run, plan);
  const { progress } = run;
  progress.done = true;
  progress.etaSeconds = 0;
  setCurrentDetails(run.describe());
  return progress;
}
