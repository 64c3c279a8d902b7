import {
  ActivityCancellationType,
  ApplicationFailure,
  condition,
  defineQuery,
  defineSignal,
  defineUpdate,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration, RetryPolicy } from '@temporalio/common';
import type { Activities } from '../activities';
import type { JobAuth, JobParamValue, JobPlan, StepOutput } from '../activities/types';
import { NON_RETRYABLE, NON_RETRYABLE_FAILURES } from './failureTypes';
import { LakebaseEnvironment, LakebaseJob, LakebaseProfile, LakebaseRowsWritten } from './searchAttributes';


const { planJob } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

// Each unit runs with its own step's timeout and retry policy (executeWithOptions below).
const { runJobUnit } = proxyActivities<Activities>({ startToCloseTimeout: '10 minutes', heartbeatTimeout: '10 seconds' });

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
}

export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');
export const approveUpdate = defineUpdate<{ approved: boolean }, [{ by: string }]>('approve');
export const approveSignal = defineSignal<[{ by: string }]>('approve');
export const rejectSignal = defineSignal<[{ by: string; reason?: string }]>('reject');

/** A triggered job: parameterised SQL steps, transaction groups committed atomically, an optional approval gate. */
export async function operationalJob(input: OperationalJobInput): Promise<JobProgress> {
  const progress: JobProgress = { job: input.job, status: 'planning', steps: [], rowsWritten: 0 };
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

  const plan = await planJob({ job: input.job, params: input.params, environment: input.environment, dryRun: input.dryRun, auth: input.auth });
  progress.plan = plan;
  progress.environment = plan.environment;
  // Only when the start registered our search attributes (an unknown one would fail the workflow task).
  const indexed = workflowInfo().typedSearchAttributes.get(LakebaseJob) !== undefined;
  if (indexed) upsertSearchAttributes([{ key: LakebaseProfile, value: plan.profile }, { key: LakebaseEnvironment, value: plan.environment }]);
  const total = plan.units.reduce((n, u) => n + u.steps.length, 0);
  const details = () =>
    `job **${input.job}** on ${plan.profile}/${plan.environment}: ${progress.status}` +
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
    const results = await runJobUnit.executeWithOptions(
      {
        startToCloseTimeout: first.timeout as Duration,
        // A short heartbeat timeout also delivers a cancellation within seconds.
        heartbeatTimeout: '10 seconds',
        // A cancelled job completes only once its running step has rolled back.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry: { ...first.retry, nonRetryableErrorTypes: NON_RETRYABLE } as RetryPolicy,
        summary: unit.transaction ? `transaction ${unit.transaction}: ${progress.currentStep}` : `step ${progress.currentStep}`,
      },
      [{ job: input.job, environment: plan.environment, params: plan.params, steps: unit.steps.map((s) => s.name), transaction: unit.transaction, outputs, auth: input.auth }],
    );
    progress.steps.push(...results);
    progress.rowsWritten += results.filter((r) => r.kind !== 'read').reduce((n, r) => n + r.rowCount, 0);
    if (indexed) upsertSearchAttributes([{ key: LakebaseRowsWritten, value: progress.rowsWritten }]);
  }
  progress.status = 'done';
  progress.currentStep = undefined;
  setCurrentDetails(details());
  return progress;
}
