import { createHash } from 'node:crypto';
import { WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import type { JobParamValue } from '../activities/types';
import { loadSealingKeys, seal } from '../auth/sealed';
import { branchEnvironmentName, type RunBranchRequest } from '../config/branches';
import type { Config } from '../config/schema';
import type { JobProgress, OperationalJobInput } from '../workflows';
import { approveUpdate, jobProgressQuery, rejectSignal } from '../workflows/operationalJob';
import { LakebaseEnvironment, LakebaseJob, LakebaseProfile, LakebaseRowsWritten } from '../workflows/searchAttributes';
import { configMemo } from '../configSource';
import { startIndexed } from './indexedStart';

/**
 * The idempotency key of a job run: the same job, environment and parameters give the same id,
 * so a second start while one runs is rejected (Temporal's default id-conflict policy).
 */
export function jobWorkflowId(job: string, environment: string, params: Record<string, JobParamValue>): string {
  const canonical = JSON.stringify(Object.keys(params).sort().map((k) => [k, params[k]]));
  return `job:${job}:${environment}:${createHash('sha256').update(canonical).digest('hex').slice(0, 12)}`;
}

export interface StartJobOptions {
  /** The config file the command read: recorded in the run's memo (which file and version started it). */
  configFile?: string;
  job: string;
  params: Record<string, JobParamValue>;
  taskQueue: string;
  config: Config;
  environment?: string;
  dryRun?: boolean;
  idpToken?: string;
  /** Run on a Lakebase branch of the environment (`--branch`), optionally created for the run and deleted after. */
  branch?: RunBranchRequest;
}

export async function startJob(client: Client, opts: StartJobOptions): Promise<WorkflowHandle<(i: OperationalJobInput) => Promise<JobProgress>>> {
  const job = opts.config.jobs[opts.job];
  if (!job) throw new Error(`unknown job "${opts.job}"; configured jobs: ${Object.keys(opts.config.jobs).join(', ') || '(none)'}`);
  const environment = opts.environment ?? job.environment;
  const b = opts.branch;
  // A branch run is its own run: it may go on while the same job runs on the environment itself.
  const where = b ? branchEnvironmentName(environment, b.name) : environment;
  const branchText = b ? ` · branch **${b.name}**${b.create ? ' (created for the run' + (b.deleteAfter ? ', deleted after)' : ')') : ''}` : '';
  const paramText = Object.entries(opts.params).map(([k, v]) => `${k}=${v}`).join(', ');
  const details = [
    `**Job** \`${opts.job}\`${job.description ? ` — ${job.description}` : ''}`,
    '',
    `profile **${job.profile}** · environment **${environment}**${branchText}${opts.dryRun ? ' · **dry run**' : ''}${job.approval ? ' · approval required' : ''}`,
    '',
    '| parameter | value |',
    '|---|---|',
    ...Object.entries(opts.params).map(([k, v]) => `| ${k} | ${String(v)} |`),
    '',
    `steps: ${job.steps.map((s) => `${s.name} (${s.kind}${s.transaction ? `, tx ${s.transaction}` : ''})`).join(' → ')}`,
  ].join('\n');
  return startIndexed<(i: OperationalJobInput) => Promise<JobProgress>>(
    client,
    'operationalJob',
    {
      taskQueue: opts.taskQueue,
      workflowId: `${jobWorkflowId(opts.job, where, opts.params)}${opts.dryRun ? `:dry-run:${Date.now()}` : ''}`,
      args: [
        {
          job: opts.job,
          params: opts.params,
          environment: opts.environment,
          dryRun: opts.dryRun,
          ...(b && { branch: b }),
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }),
        },
      ],
      ...configMemo(opts.configFile),
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      staticSummary: `${opts.dryRun ? 'Dry run of job' : 'Job'} **${opts.job}**${paramText ? ` (${paramText})` : ''} on ${job.profile}/${where}`,
      staticDetails: details,
    },
    [
      { key: LakebaseJob, value: opts.job },
      { key: LakebaseProfile, value: job.profile },
      { key: LakebaseEnvironment, value: environment },
      { key: LakebaseRowsWritten, value: 0 },
    ],
  );
}

export async function jobProgress(client: Client, workflowId: string): Promise<JobProgress> {
  return client.workflow.getHandle(workflowId).query(jobProgressQuery);
}

export async function approveJob(client: Client, workflowId: string, by: string): Promise<{ approved: boolean }> {
  return client.workflow.getHandle(workflowId).executeUpdate(approveUpdate, { args: [{ by }] });
}

/** Rejects a job waiting for approval (it fails, writing nothing). */
export async function rejectJob(client: Client, workflowId: string, by: string, reason?: string): Promise<void> {
  await client.workflow.getHandle(workflowId).signal(rejectSignal, { by, reason });
}
