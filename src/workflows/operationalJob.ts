import {
  ActivityCancellationType,
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  patched,
  proxyActivities,
  setCurrentDetails,
  sleep,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration, RetryPolicy } from '@temporalio/common';
import type { Activities } from '../activities';
import type { JobAuth, JobParamValue, JobPlan, RunBranchRequest, RunBranchTarget, StepOutput } from '../activities/types';
import { NON_RETRYABLE, NON_RETRYABLE_FAILURES, RETRYABLE_FAILURES } from '../failureTypes';
import { LakebaseEnvironment, LakebaseJob, LakebaseProfile, LakebaseRowsWritten } from './searchAttributes';


const { planJob } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

// Each unit runs with its own step's timeout and retry policy (executeWithOptions below).
const { runJobUnit } = proxyActivities<Activities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '10 seconds' });

// Branch operations are long-running on Lakebase's side; the activity polls and heartbeats.
const { prepareRunBranch } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  retry: { initialInterval: '2 seconds', maximumInterval: '1 minute', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE },
});

// Cleanup outlives worker restarts (it is a scheduled activity) and transient API failures: retried for up to a day.
const { deleteRunBranch } = proxyActivities<Activities>({
  startToCloseTimeout: '15 minutes',
  heartbeatTimeout: '1 minute',
  scheduleToCloseTimeout: '1 day',
  retry: { initialInterval: '5 seconds', maximumInterval: '5 minutes', nonRetryableErrorTypes: NON_RETRYABLE },
});

/** A failure's type as the workflow sees it (ActivityFailure → ApplicationFailure). */
function failureType(err: unknown): string | undefined {
  const cause = err instanceof ActivityFailure ? err.cause : err;
  return cause instanceof ApplicationFailure ? cause.type ?? undefined : undefined;
}

// Nothing of the branch's was made (or it is someone else's): nothing to clean up.
const NOTHING_CREATED = new Set<string>([NON_RETRYABLE_FAILURES.branchExists, NON_RETRYABLE_FAILURES.branchNotFound, NON_RETRYABLE_FAILURES.branchPermission, NON_RETRYABLE_FAILURES.config]);

/** Workflow-level tries of a unit whose login met a still-waking compute (each try already waited computeWakeTimeoutMs). */
const COMPUTE_WAKE_TRIES = 5;

export interface OperationalJobInput {
  job: string;
  params: Record<string, JobParamValue>;
  /** Overrides the job's configured environment (e.g. staging). */
  environment?: string;
  /** Validate and EXPLAIN; run nothing. */
  dryRun?: boolean;
  /** How long an approval may take before the job gives up. Default 24 hours. */
  approvalTimeout?: string;
  auth?: JobAuth;
  /** Run on a Lakebase branch (`job run --branch`), created from the environment's branch and deleted after, when asked. */
  branch?: RunBranchRequest;
}

export type JobStatus = 'planning' | 'awaiting approval' | 'running' | 'done' | 'rejected' | 'dry run';

export interface JobProgress {
  job: string;
  environment?: string;
  status: JobStatus;
  /** Steps finished so far, with row counts and small read results. */
  steps: StepOutput[];
  currentStep?: string;
  rowsWritten: number;
  approvedBy?: string;
  plan?: JobPlan;
  /** A branch run: the branch, whether this run made it, and what became of it. */
  branch?: { name: string; endpoint?: string; created: boolean; expireTime?: string; deleted?: boolean; deleteError?: string };
  /** Set while a step waits for a scale-to-zero compute that is still waking. */
  computeWaking?: { step: string; tries: number; message: string };
}

export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');
export const approveUpdate = defineUpdate<{ approved: boolean }, [{ by: string }]>('approve');
export const approveSignal = defineSignal<[{ by: string }]>('approve');
export const rejectSignal = defineSignal<[{ by: string; reason?: string }]>('reject');

/**
 * A triggered job: parameterised SQL steps, transaction groups committed atomically, an optional
 * approval gate. With `branch`, the steps run on a Lakebase branch (made for the run when asked,
 * and deleted after it, also when a step fails or the job is cancelled).
 */
export async function operationalJob(input: OperationalJobInput): Promise<JobProgress> {
  const progress: JobProgress = { job: input.job, status: 'planning', steps: [], rowsWritten: 0 };
  // Runs without a branch keep exactly the command sequence of earlier releases.
  if (!input.branch) return runJob(input, progress);
  const request = input.branch;
  progress.branch = { name: request.name, created: false };
  const target = { job: input.job, environment: input.environment, auth: input.auth };
  const cleanup = async () => {
    setCurrentDetails(`job **${input.job}**: deleting branch ${request.name}`);
    try {
      // Runs even when the job was cancelled.
      await CancellationScope.nonCancellable(() => deleteRunBranch({ ...target, branch: request.name }));
      progress.branch!.deleted = true;
    } catch (err) {
      // The job's own outcome stands; the branch's expiry (spec.ttl) removes it later.
      progress.branch!.deleted = false;
      progress.branch!.deleteError = (err instanceof ActivityFailure && err.cause ? err.cause : (err as Error)).message;
    }
  };
  setCurrentDetails(`job **${input.job}**: ${request.create ? `creating branch ${request.name}` : `looking up branch ${request.name}`}`);
  let info;
  try {
    info = await prepareRunBranch({ ...target, branch: request });
  } catch (err) {
    // A create may have succeeded before the failure (e.g. retries exhausted while polling it).
    if (request.create && request.deleteAfter && !NOTHING_CREATED.has(failureType(err) ?? '')) await cleanup();
    throw err;
  }
  Object.assign(progress.branch, { endpoint: info.endpoint, created: info.created, expireTime: info.expireTime });
  try {
    return await runJob(input, progress, { name: info.branch, endpoint: info.endpoint });
  } finally {
    if (info.created && request.deleteAfter) await cleanup();
  }
}

async function runJob(input: OperationalJobInput, progress: JobProgress, branch?: RunBranchTarget): Promise<JobProgress> {
  let decision: { approved: boolean; by: string; reason?: string } | undefined;
  setHandler(jobProgressQuery, () => progress);
  setHandler(approveSignal, ({ by }) => void (decision ??= { approved: true, by }));
  setHandler(rejectSignal, ({ by, reason }) => void (decision ??= { approved: false, by, reason }));
  setHandler(
    approveUpdate,
    ({ by }): { approved: boolean } => {
      const d = decision ?? { approved: true, by };
      decision = d;
      return { approved: d.approved };
    },
    {
      validator: (_by) => {
        if (progress.status !== 'awaiting approval') throw new Error(`job is ${progress.status}, not awaiting approval`);
      },
    },
  );

  const plan = await planJob({ job: input.job, params: input.params, environment: input.environment, dryRun: input.dryRun, auth: input.auth, ...(branch && { branch }) });
  progress.plan = plan;
  progress.environment = plan.environment;
  // Only when the start registered our search attributes (an unknown one would fail the workflow task).
  const indexed = workflowInfo().typedSearchAttributes.get(LakebaseJob) !== undefined;
  if (indexed) upsertSearchAttributes([{ key: LakebaseProfile, value: plan.profile }, { key: LakebaseEnvironment, value: plan.environment }]);
  const total = plan.units.reduce((n, u) => n + u.steps.length, 0);
  const on = `${plan.profile}/${plan.environment}${branch ? ` (branch ${branch.name})` : ''}`;
  const details = () =>
    `job **${input.job}** on ${on}: ${progress.status}` +
    (progress.currentStep ? `, step ${progress.steps.length + 1}/${total} (${progress.currentStep})` : '') +
    `, ${progress.steps.length}/${total} steps done, ${progress.rowsWritten} rows written`;

  if (input.dryRun) {
    progress.status = 'dry run';
    setCurrentDetails(`dry run of ${input.job}: parameters valid, ${total} steps planned, nothing written`);
    return progress;
  }

  const firstWrite = plan.units.findIndex((u) => u.steps.some((s) => s.kind !== 'read'));
  for (const [i, unit] of plan.units.entries()) {
    if (plan.approval && i === firstWrite) {
      progress.status = 'awaiting approval';
      progress.currentStep = undefined;
      setCurrentDetails(`Paused, awaiting approval before ${unit.steps.map((s) => s.name).join(', ')} — ${details()}`);
      const decided = await condition(() => decision !== undefined, input.approvalTimeout ?? '24 hours');
      if (!decided || !decision!.approved) {
        progress.status = 'rejected';
        setCurrentDetails(details());
        throw ApplicationFailure.nonRetryable(
          decided ? `job ${input.job} rejected by ${decision!.by}${decision!.reason ? `: ${decision!.reason}` : ''}` : `no approval within ${input.approvalTimeout ?? '24 hours'}`,
          NON_RETRYABLE_FAILURES.jobNotApproved,
        );
      }
      progress.approvedBy = decision!.by;
    }
    progress.status = 'running';
    progress.currentStep = unit.steps.map((s) => s.name).join(' + ');
    setCurrentDetails(details());
    const first = unit.steps[0]!;
    const outputs = Object.fromEntries(progress.steps.filter((s) => s.rows?.[0]).map((s) => [s.name, s.rows![0]!]));
    // A login that meets a still-waking compute fails the unit before any statement ran, so trying
    // it again is safe. The workflow does that itself (instead of the server's retry) to say so in
    // its current details; runs started before this existed keep the server's retry.
    const wakeVisible = patched('compute-waking-in-current-details');
    const execute = () =>
      runJobUnit.executeWithOptions(
        {
          startToCloseTimeout: first.timeout as Duration,
          // A short heartbeat timeout also delivers a cancellation within seconds.
          heartbeatTimeout: '10 seconds',
          // A cancelled job completes only once its running step has rolled back.
          cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
          retry: { ...first.retry, nonRetryableErrorTypes: wakeVisible ? [...NON_RETRYABLE, RETRYABLE_FAILURES.computeWaking] : NON_RETRYABLE } as RetryPolicy,
          summary: unit.transaction ? `transaction ${unit.transaction}: ${progress.currentStep}` : `step ${progress.currentStep}`,
        },
        [{ job: input.job, environment: plan.environment, params: plan.params, steps: unit.steps.map((s) => s.name), transaction: unit.transaction, outputs, auth: input.auth, ...(branch && { branch }) }],
      );
    let results: StepOutput[];
    for (let tries = 1; ; tries++) {
      try {
        results = await execute();
        break;
      } catch (err) {
        if (!wakeVisible || failureType(err) !== RETRYABLE_FAILURES.computeWaking || tries >= COMPUTE_WAKE_TRIES) throw err;
        const message = (err as ActivityFailure).cause?.message ?? '';
        progress.computeWaking = { step: progress.currentStep, tries, message };
        setCurrentDetails(`Waiting for the compute to wake (${RETRYABLE_FAILURES.computeWaking}, try ${tries} of ${COMPUTE_WAKE_TRIES}) before ${progress.currentStep} — ${details()}\n\n${message}`);
        await sleep(Math.min(5_000 * 2 ** (tries - 1), 60_000));
        setCurrentDetails(details());
      }
    }
    progress.computeWaking = undefined;
    progress.steps.push(...results);
    progress.rowsWritten += results.filter((r) => r.kind !== 'read').reduce((n, r) => n + r.rowCount, 0);
    if (indexed) upsertSearchAttributes([{ key: LakebaseRowsWritten, value: progress.rowsWritten }]);
  }
  progress.status = 'done';
  progress.currentStep = undefined;
  setCurrentDetails(details());
  return progress;
}
