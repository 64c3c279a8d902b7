import { patched, setCurrentDetails } from '@temporalio/workflow';
import type { SyncPlan } from '../activities/types';
import { nonRetryableTypes, stepActivities } from './activityCalls';
import type { SyncProgress, SyncRun } from './syncRun';

/** Runs started from here on split the table into partitions that sync in parallel (sync engine v2). */
export const PARTITIONED_SYNC_PATCH = 'sync-engine-v2-partitions';
/**
 * Runs started from here on let the plan choose compare-then-copy for a populated target without
 * a cursor (SyncPlan.resync): buckets compared and written instead of chunks and delete detection.
 */
export const RESYNC_PATCH = 'sync-compare-then-copy';

/** Plan step: what this run copies, from where (a continued run picks up its own state). Sets `run.plan`. */
export async function planRun(run: SyncRun): Promise<{ plan: SyncPlan; partitioned: boolean }> {
  const { input, progress, pipeline, environment, runId } = run;
  const { planSync } = stepActivities(nonRetryableTypes(run.wakeVisible));
  const partitioned = patched(PARTITIONED_SYNC_PATCH);
  const compare = partitioned && !input.dryRun && patched(RESYNC_PATCH);
  const plan = (run.plan = await run.call(() =>
    planSync({
      pipeline, environment, runId, auth: run.identity.auth, continuing: input.resume !== undefined,
      // A continued run checks the config is still the one its first run planned under.
      ...(input.resume?.fingerprint && { fingerprint: input.resume.fingerprint }),
      ...(partitioned && { partitioned: true }), ...(input.dryRun && { dryRun: true }), ...(compare && { compare: true }),
    }),
  ));
  if (plan.resync && !progress.resync) {
    const { method, reason, probe, buckets } = plan.resync;
    progress.resync = { method, reason, probe, buckets: buckets.length, done: buckets.filter((b) => b.done).length, rowsCopied: 0, rowsWritten: 0, rowsDeleted: 0 };
  }
  progress.mode = plan.mode;
  if (plan.fingerprint && !progress.fingerprint) progress.fingerprint = plan.fingerprint;
  if (plan.targetShape && !input.resume) progress.targetShape = plan.targetShape;
  if (!input.dryRun && !input.resume) {
    progress.cursor = plan.startCursor;
    progress.resumed = plan.resumed;
    progress.estimatedRows = plan.estimatedRows;
    progress.initialLoad = plan.initialLoad;
  }
  return { plan, partitioned };
}

/** A dry run (`sync start --dry-run`) ends after the plan, which changed nothing. */
export function endDryRun(run: SyncRun, plan: SyncPlan): SyncProgress {
  const { progress } = run;
  progress.dryRun = plan.dryRun;
  progress.estimatedRows = plan.estimatedRows;
  progress.done = true;
  setCurrentDetails(`Dry run of ${run.pipeline}, nothing changed:\n${(plan.dryRun?.actions ?? []).map((a) => `- ${a}`).join('\n')}`);
  return progress;
}

/** Warms the worker's token cache once per side; chunk activities then log in without token requests. */
export async function warmTokens(run: SyncRun, plan: SyncPlan): Promise<void> {
  const { acquireLakebaseToken } = stepActivities(nonRetryableTypes(run.wakeVisible));
  const sides = [plan.source, plan.target].filter((s, i, all) => all.findIndex((o) => o.profile === s.profile && o.environment === s.environment) === i);
  run.progress.tokens = await run.call(() => Promise.all(sides.map((s) => acquireLakebaseToken({ profile: s.profile, environment: s.environment, auth: run.identity.auth }))));
  // Verified by the exchange: a later re-login must be this person (checked by the worker).
  if (run.identity.auth) run.identity.person ??= run.identity.auth.sameAs ?? run.progress.tokens[0]?.identity;
  setCurrentDetails(run.describe());
}
