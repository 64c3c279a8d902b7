import { patched, setCurrentDetails } from '@temporalio/workflow';
import type { SyncPlan } from '../activities/types';
import { nonRetryableTypes, stepActivities } from './activityCalls';
import { plannedFingerprint, type SyncRun } from './syncRun';
import { runVerify } from './verify';

/** Runs of pipelines with `verify` compare source and target after finishing. */
export const VERIFY_PATCH = 'sync-verify';

/** Finish step: a full refresh swaps its loaded table in (one transaction); incremental runs keep their cursor. */
export async function finishRun(run: SyncRun, partitioned: boolean): Promise<void> {
  const { pipeline, environment, runId, progress } = run;
  const { finishSync } = stepActivities(nonRetryableTypes(run.wakeVisible));
  const finished = await run.call(() => finishSync({ pipeline, environment, runId, auth: run.identity.auth, ...plannedFingerprint(run.plan) }));
  if (finished.swap) progress.swap = finished.swap;
  if (partitioned && finished.cursor !== undefined) progress.cursor = finished.cursor;
}

/** Verify step (pipelines with `verify`): source and target compared; a difference fails the run as LakebaseVerifyFailed. */
export async function verifyRun(run: SyncRun, plan: SyncPlan): Promise<void> {
  if (!(plan.verify && plan.verify !== 'none' && patched(VERIFY_PATCH))) return;
  const { progress } = run;
  setCurrentDetails(run.describe());
  const report = await runVerify({
    pipeline: run.pipeline,
    environment: run.environment,
    auth: run.identity.auth,
    mode: plan.verify,
    heartbeatTimeout: run.heartbeatTimeout,
    nonRetryable: nonRetryableTypes(run.wakeVisible),
    call: run.call,
    onProgress: (v) => {
      progress.verify = { ...v };
      setCurrentDetails(run.describe());
    },
  });
  progress.verify = { ...progress.verify!, report };
}
