import { ApplicationFailure, defineQuery, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { JobAuth, VerifyBucketResult, VerifyPlan, VerifyReport } from '../activities/types';
import { NON_RETRYABLE, NON_RETRYABLE_FAILURES } from '../failureTypes';
import { stepActivities, streamingActivities } from './activityCalls';
import { plannedFingerprint } from './syncRun';
import { inLanes } from './lanes';
import { describeVerify } from './verifyReport';
import { count } from '../humanize';

export interface VerifyProgress {
  pipeline: string;
  mode: VerifyPlan['mode'] | 'planning';
  buckets: number;
  bucketsDone: number;
  sourceRows: number;
  targetRows: number;
  mismatches: number;
  /** Differences explained by rows after the last sync's cursor, or kept by deletes: ignore. */
  tolerated: number;
}

export interface RunVerifyOptions {
  pipeline: string;
  environment?: string;
  auth?: JobAuth;
  mode?: VerifyPlan['mode'];
  heartbeatTimeout: string;
  /** Failure types the workflow handles itself (dataSync adds LakebaseComputeWaking); default NON_RETRYABLE. */
  nonRetryable?: string[];
  /** Wraps each activity call (dataSync passes its re-login handling). */
  call?: <T>(step: () => Promise<T>) => Promise<T>;
  onProgress: (progress: VerifyProgress) => void;
}

/** Differences named in a report (and its failure message). */
const NAMED = 10;

/** Plans a verify and compares its buckets (up to the pipeline's parallelism at once); fails as LakebaseVerifyFailed on a difference. */
export async function runVerify(opts: RunVerifyOptions): Promise<VerifyReport> {
  const call = opts.call ?? (<T>(step: () => Promise<T>) => step());
  const { pipeline, environment, auth } = opts;
  const progress: VerifyProgress = { pipeline, mode: 'planning', buckets: 0, bucketsDone: 0, sourceRows: 0, targetRows: 0, mismatches: 0, tolerated: 0 };
  opts.onProgress(progress);
  const { planVerify } = stepActivities(opts.nonRetryable ?? NON_RETRYABLE);
  const plan = await call(() => planVerify({ pipeline, environment, auth, ...(opts.mode && { mode: opts.mode }) }));
  Object.assign(progress, { mode: plan.mode, buckets: plan.buckets.length });
  opts.onProgress(progress);
  const { verifyBucket } = streamingActivities(opts.heartbeatTimeout, opts.nonRetryable);
  const results: VerifyBucketResult[] = new Array(plan.buckets.length);
  await inLanes(
    plan.buckets.map((range, i) => ({ range, i })),
    plan.parallelism,
    async ({ range, i }) => {
      const r = await call(() => verifyBucket({ pipeline, environment, auth, mode: plan.mode, range, leafRows: plan.leafRows, runCursor: plan.runCursor, ...plannedFingerprint(plan) }));
      results[i] = r;
      progress.bucketsDone += 1;
      progress.sourceRows += r.sourceRows;
      progress.targetRows += r.targetRows;
      progress.mismatches += r.mismatches;
      progress.tolerated += r.tolerated;
      opts.onProgress(progress);
    },
  );
  const failing = results.filter((r) => r.mismatches > 0);
  const report: VerifyReport = {
    pipeline,
    mode: plan.mode,
    ok: failing.length === 0,
    buckets: plan.buckets.length,
    sourceRows: progress.sourceRows,
    targetRows: progress.targetRows,
    mismatches: progress.mismatches,
    tolerated: progress.tolerated,
    differences: failing.flatMap((r) => r.differences.map((d) => ({ ...d, bucket: r.range }))).slice(0, NAMED),
    // Named on passing and failing runs alike: a difference not counted is still one the reader should see.
    excused: results.flatMap((r) => r.excused ?? []).slice(0, NAMED),
    ranges: failing.flatMap((r) => r.ranges).slice(0, NAMED),
    ...(plan.at && { at: plan.at }),
  };
  if (!report.ok)
    throw ApplicationFailure.create({ type: NON_RETRYABLE_FAILURES.verifyFailed, nonRetryable: true, message: describeVerify(report, plan.key), details: [report] });
  return report;
}

export interface VerifySyncInput {
  pipeline: string;
  /** Compare this environment of the pipeline's profiles (e.g. staging) instead of the configured ones. */
  environment?: string;
  /** For login-idp profiles: the sealed IdP token of the user the verify runs for. */
  auth?: JobAuth;
  /** Defaults to the pipeline's verify setting (checksums when it is none). */
  mode?: VerifyPlan['mode'];
  heartbeatTimeout?: string;
}

export const verifyProgressQuery = defineQuery<VerifyProgress>('verifyProgress');

/** `lakebase-worker verify`: the compare a sync runs after itself, on its own. */
export async function verifySync(input: VerifySyncInput): Promise<VerifyReport> {
  let current: VerifyProgress | undefined;
  setHandler(verifyProgressQuery, () => current!);
  return runVerify({
    ...input,
    heartbeatTimeout: input.heartbeatTimeout ?? '1 minute',
    onProgress: (p) => {
      current = p;
      setCurrentDetails(
        `verify ${p.pipeline} (${p.mode}): bucket ${p.bucketsDone}/${p.buckets}, ${p.sourceRows.toLocaleString('en')} source rows compared, ${count(p.mismatches, 'difference')}`,
      );
    },
  });
}
