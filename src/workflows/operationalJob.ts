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
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Duration, RetryPolicy } from '@temporalio/common';
import type { Activities } from '../activities';
import type { SignedStatement } from '../auth/signedDecisions';
import type { JobAuth, JobParamValue, JobPlan, JobUnit, RunBranchRequest, RunBranchTarget, StepOutput } from '../activities/types';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import { deleteRunBranch, failureType, nonRetryableTypes, planJob, prepareRunBranch, runJobUnit, wakeBackoff, wakingCompute } from './activityCalls';
import { LakebaseEnvironment, LakebaseJob, LakebaseProfile, LakebaseRowsWritten } from './searchAttributes';

// Nothing of the branch's was made (or it is someone else's): nothing to clean up.
const NOTHING_CREATED = new Set<string>([NON_RETRYABLE_FAILURES.branchExists, NON_RETRYABLE_FAILURES.branchNotFound, NON_RETRYABLE_FAILURES.branchPermission, NON_RETRYABLE_FAILURES.config]);

/**
 * Runs started from here on take decisions only as signed updates while awaiting approval, checked
 * by the worker (verifyJobDecision); the approve/reject signals are ignored.
 */
export const JOB_SIGNED_APPROVAL_PATCH = 'signed-approvals-while-awaiting';

// A decision is checked once: a bad signature does not get better by retrying.
const { verifyJobDecision } = proxyActivities<Pick<Activities, 'verifyJobDecision'>>({ startToCloseTimeout: '30 seconds', retry: { maximumAttempts: 3, nonRetryableErrorTypes: [NON_RETRYABLE_FAILURES.jobNotApproved, NON_RETRYABLE_FAILURES.config] } });

/** Runs started from here on hold a read step with `into` (it creates a table) for approval. */
export const JOB_READ_INTO_GATED_PATCH = 'read-into-waits-for-approval';

/** Runs started from here on wait for a waking compute in the workflow (see runUnit). */
export const JOB_COMPUTE_WAKING_PATCH = 'compute-waking-in-current-details';

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
  /** The start, signed with the starter's identity key (approval jobs: approver ≠ starter). */
  signedStart?: SignedStatement;
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
  /** The identity that signed the start, as the worker verified it. */
  startedBy?: string;
  plan?: JobPlan;
  /** A branch run: the branch, whether this run made it, and what became of it. */
  branch?: { name: string; endpoint?: string; created: boolean; expireTime?: string; deleted?: boolean; deleteError?: string };
  /** Set while a step waits for a scale-to-zero compute that is still waking. */
  computeWaking?: { step: string; tries: number; message: string };
}

export const jobProgressQuery = defineQuery<JobProgress>('jobProgress');
export interface JobDecisionArgs {
  /** Shown only; the decision counts as the identity `signed` proves (runs since JOB_SIGNED_APPROVAL_PATCH). */
  by: string;
  signed?: SignedStatement;
  reason?: string;
}
export const approveUpdate = defineUpdate<{ approved: boolean }, [JobDecisionArgs]>('approve');
export const rejectUpdate = defineUpdate<{ approved: boolean }, [JobDecisionArgs]>('reject');
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

type Decision = { approved: boolean; by: string; reason?: string };

/** The job's query, and the approve / reject handlers; returns the decision so far. */
function acceptDecisions(progress: JobProgress, input: OperationalJobInput): () => Decision | undefined {
  let decision: Decision | undefined;
  setHandler(jobProgressQuery, () => progress);
  if (patched(JOB_SIGNED_APPROVAL_PATCH)) {
    const validator = (args: JobDecisionArgs) => {
      if (progress.status !== 'awaiting approval') throw new Error(`job is ${progress.status}, not awaiting approval`);
      if (!args?.signed) throw new Error('a decision must be signed: job approve|reject --key-file <your Ed25519 key>');
    };
    const decide = (approved: boolean) => async (args: JobDecisionArgs): Promise<{ approved: boolean }> => {
      const { by } = await verifyJobDecision({ job: input.job, decision: approved ? 'approve' : 'reject', signed: args.signed!, startedBy: progress.startedBy });
      // Checked again after the check: another decision may have been taken meanwhile.
      if (progress.status !== 'awaiting approval' && decision === undefined) throw ApplicationFailure.nonRetryable(`job is ${progress.status}, not awaiting approval`);
      decision ??= { approved, by, ...(args.reason && { reason: args.reason }) };
      return { approved: decision.approved };
    };
    setHandler(approveUpdate, decide(true), { validator });
    setHandler(rejectUpdate, decide(false), { validator });
    return () => decision;
  }
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
  return () => decision;
}

async function runJob(input: OperationalJobInput, progress: JobProgress, branch?: RunBranchTarget): Promise<JobProgress> {
  const decision = acceptDecisions(progress, input);
  const signedStart = input.signedStart && { signedStart: input.signedStart, runStartedAt: workflowInfo().runStartTime.getTime() };
  const plan = await planJob({ job: input.job, params: input.params, environment: input.environment, dryRun: input.dryRun, auth: input.auth, ...(branch && { branch }), ...signedStart });
  progress.plan = plan;
  if (plan.startedBy) progress.startedBy = plan.startedBy;
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

  let firstWrite = plan.units.findIndex((u) => u.steps.some((s) => s.kind !== 'read'));
  // A read kept `into` a table creates (and drops) one: it waits for approval like a write. Asked
  // only when it moves the gate, so other runs keep their command sequence.
  const firstInto = plan.units.findIndex((u) => u.steps.some((s) => s.into));
  if (plan.approval && firstInto !== -1 && (firstWrite === -1 || firstInto < firstWrite) && patched(JOB_READ_INTO_GATED_PATCH)) firstWrite = firstInto;
  for (const [i, unit] of plan.units.entries()) {
    if (plan.approval && i === firstWrite) {
      progress.status = 'awaiting approval';
      progress.currentStep = undefined;
      setCurrentDetails(`Paused, awaiting approval before ${unit.steps.map((s) => s.name).join(', ')} — ${details()}`);
      const decided = await condition(() => decision() !== undefined, input.approvalTimeout ?? '24 hours');
      const d = decision();
      if (!decided || !d!.approved) {
        progress.status = 'rejected';
        setCurrentDetails(details());
        throw ApplicationFailure.nonRetryable(
          decided ? `job ${input.job} rejected by ${d!.by}${d!.reason ? `: ${d!.reason}` : ''}` : `no approval within ${input.approvalTimeout ?? '24 hours'}`,
          NON_RETRYABLE_FAILURES.jobNotApproved,
        );
      }
      progress.approvedBy = d!.by;
    }
    progress.status = 'running';
    progress.currentStep = unit.steps.map((s) => s.name).join(' + ');
    setCurrentDetails(details());
    const results = await runUnit(input, progress, plan, unit, details, branch);
    progress.steps.push(...results);
    progress.rowsWritten += results.filter((r) => r.kind !== 'read').reduce((n, r) => n + r.rowCount, 0);
    if (indexed) upsertSearchAttributes([{ key: LakebaseRowsWritten, value: progress.rowsWritten }]);
  }
  progress.status = 'done';
  progress.currentStep = undefined;
  setCurrentDetails(details());
  return progress;
}

/**
 * One unit (a step, or a transaction group) with its first step's timeout and retry policy. A
 * login that meets a still-waking compute fails the unit before any statement ran, so trying it
 * again is safe. The workflow does that itself (instead of the server's retry) to say so in its
 * current details; runs started before this existed keep the server's retry.
 */
async function runUnit(input: OperationalJobInput, progress: JobProgress, plan: JobPlan, unit: JobUnit, details: () => string, branch?: RunBranchTarget): Promise<StepOutput[]> {
  const first = unit.steps[0]!;
  const step = progress.currentStep!;
  const outputs = Object.fromEntries(progress.steps.filter((s) => s.rows?.[0]).map((s) => [s.name, s.rows![0]!]));
  const wakeVisible = patched(JOB_COMPUTE_WAKING_PATCH);
  const execute = () =>
    runJobUnit.executeWithOptions(
      {
        startToCloseTimeout: first.timeout as Duration,
        // A short heartbeat timeout also delivers a cancellation within seconds.
        heartbeatTimeout: '10 seconds',
        // A cancelled job completes only once its running step has rolled back.
        cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
        retry: { ...first.retry, nonRetryableErrorTypes: nonRetryableTypes(wakeVisible) } as RetryPolicy,
        summary: unit.transaction ? `transaction ${unit.transaction}: ${step}` : `step ${step}`,
      },
      [{ job: input.job, environment: plan.environment, params: plan.params, steps: unit.steps.map((s) => s.name), transaction: unit.transaction, outputs, auth: input.auth, ...(branch && { branch }) }],
    );
  for (let tries = 1; ; tries++) {
    try {
      const results = await execute();
      progress.computeWaking = undefined;
      return results;
    } catch (err) {
      const waking = wakeVisible ? wakingCompute(err, tries) : undefined;
      if (!waking) throw err;
      progress.computeWaking = { step, tries, message: waking.message };
      setCurrentDetails(`${waking.headline} before ${step} — ${details()}\n\n${waking.message}`);
      await wakeBackoff(tries);
      setCurrentDetails(details());
    }
  }
}
