import {
  continueAsNew,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { SqlText } from '../activities/types';

// Listed here (not imported) because workflow code must not load the db layer.
const NON_RETRYABLE = ['LakebaseSqlError', 'LakebaseDataError', 'LakebaseConstraintError', 'LakebaseConfigError'];

const { planSync } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

const { readBatch, transformBatch, writeBatch } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '1 minute', nonRetryableErrorTypes: NON_RETRYABLE },
});

export interface SyncProgress {
  pipeline: string;
  /** Key of the last row committed to the target; the sync resumes after it. */
  lastKey: SqlText[] | null;
  rowsRead: number;
  rowsWritten: number;
  batches: number;
  /** Runs of this workflow so far (continue-as-new keeps the history small). */
  run: number;
  done: boolean;
}

export interface DataSyncInput {
  pipeline: string;
  /** Set by continue-as-new; users leave it out. */
  resume?: SyncProgress;
}

export const progressQuery = defineQuery<SyncProgress>('progress');

/** History size (bytes) after which a run hands over to a fresh one; rows pass through history here. */
const HISTORY_BYTES_LIMIT = 8 * 1024 * 1024;

export async function dataSync(input: DataSyncInput): Promise<SyncProgress> {
  const progress: SyncProgress = input.resume
    ? { ...input.resume, run: input.resume.run + 1 }
    : { pipeline: input.pipeline, lastKey: null, rowsRead: 0, rowsWritten: 0, batches: 0, run: 1, done: false };
  setHandler(progressQuery, () => progress);

  const plan = await planSync({ pipeline: input.pipeline });
  const describe = () =>
    `${plan.source.relation} → ${plan.target.table} (${plan.mode}): ${progress.batches} batches, ` +
    `${progress.rowsRead} rows read, ${progress.rowsWritten} written${progress.done ? ', done' : ''}`;
  setCurrentDetails(describe());

  for (;;) {
    const batch = await readBatch({ pipeline: input.pipeline, after: progress.lastKey, limit: plan.batchRows });
    if (batch.rows.length === 0) break;
    const out = plan.rowTransform ? await transformBatch({ pipeline: input.pipeline, batch }) : batch;
    const { rowsWritten } = await writeBatch({ pipeline: input.pipeline, batch: out });
    progress.lastKey = batch.lastKey;
    progress.rowsRead += batch.rows.length;
    progress.rowsWritten += rowsWritten;
    progress.batches += 1;
    setCurrentDetails(describe());
    // A short page can also mean the byte budget cut it, so only an empty page ends the sync.
    const info = workflowInfo();
    if (info.continueAsNewSuggested || info.historySize > HISTORY_BYTES_LIMIT) {
      await continueAsNew<typeof dataSync>({ pipeline: input.pipeline, resume: progress });
    }
  }
  progress.done = true;
  setCurrentDetails(describe());
  return progress;
}
