import { createHash } from 'node:crypto';
import {
  Client,
  Connection,
  WorkflowIdReusePolicy,
  type WorkflowHandle,
  type Workflow,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import type { JobParamValue } from './activities/types';
import { loadSealingKeys, seal } from './auth/sealed';
import { pipelineInEnvironment } from './config/lookup';
import type { Config, TemporalConfig } from './config/schema';
import { dataConverterFor, temporalConnectionOptions } from './temporalConnection';
import type { DataSyncInput, JobProgress, OperationalJobInput, SyncProgress } from './workflows';
import { progressQuery, reloginUpdate } from './workflows/dataSync';
import { approveUpdate, jobProgressQuery } from './workflows/operationalJob';
import { LakebaseEnvironment, LakebaseJob, LakebasePipeline, LakebaseProfile, LakebaseRowsWritten } from './workflows/searchAttributes';

export async function connectClient(temporal: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect(temporalConnectionOptions(temporal));
  return new Client({ connection, namespace: temporal.namespace, dataConverter: dataConverterFor(temporal) });
}

/** `sync:<pipeline>:<time>` — an id that says what runs (design.md §7). */
export function syncWorkflowId(pipeline: string, at = new Date()): string {
  return `sync:${pipeline}:${at.toISOString()}`;
}

/**
 * Starts a workflow with our search attributes; on a cluster where they are not registered yet,
 * starts it without them and says how to register them (the UI then cannot filter on them).
 */
async function startIndexed<T extends Workflow>(
  client: Client,
  type: string,
  options: Omit<WorkflowStartOptions<T>, 'typedSearchAttributes'>,
  attributes: SearchAttributePair[],
): Promise<WorkflowHandle<T>> {
  try {
    return await client.workflow.start<T>(type, { ...options, typedSearchAttributes: new TypedSearchAttributes(attributes) } as WorkflowStartOptions<T>);
  } catch (err) {
    if (!/search attribute .* is not defined|not a valid search attribute/i.test((err as Error).message)) throw err;
    process.emitWarning('Lakebase search attributes are not registered on this Temporal namespace; run `lakebase-worker setup` so the UI can filter on them.');
    return client.workflow.start<T>(type, options as WorkflowStartOptions<T>);
  }
}

export interface StartSyncOptions {
  pipeline: string;
  taskQueue: string;
  workflowId?: string;
  /** Shown in the Temporal UI next to the workflow. */
  summary?: string;
  /** For login-idp profiles: the IdP token of the user the sync runs for; sealed before it leaves this process. */
  idpToken?: string;
  /** When given, the sync is tagged with its profile and environment and described in the UI. */
  config?: Config;
  /** Run both sides against this environment (e.g. staging) instead of the configured ones. */
  environment?: string;
}

export async function startSync(client: Client, opts: StartSyncOptions): Promise<WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>> {
  const configured = opts.config?.pipelines[opts.pipeline];
  const p = configured && pipelineInEnvironment(configured, opts.environment);
  const attributes: SearchAttributePair[] = [{ key: LakebasePipeline, value: opts.pipeline }];
  if (p) attributes.push({ key: LakebaseProfile, value: p.target.profile }, { key: LakebaseEnvironment, value: p.target.environment }, { key: LakebaseRowsWritten, value: 0 });
  const details = p
    ? [
        `**Pipeline** \`${opts.pipeline}\` — mode **${p.mode}**`,
        '',
        '| | profile | environment | table |',
        '|---|---|---|---|',
        `| source | ${p.source.profile} | ${p.source.environment} | ${p.source.table ?? '(query)'} |`,
        `| target | ${p.target.profile} | ${p.target.environment} | ${p.target.table} |`,
        '',
        `key: ${p.key.join(', ')}${p.cursor ? ` · cursor: ${p.cursor}` : ''} · chunk: ${p.batchRows} rows`,
      ].join('\n')
    : undefined;
  return startIndexed<(i: DataSyncInput) => Promise<SyncProgress>>(
    client,
    'dataSync',
    {
      taskQueue: opts.taskQueue,
      workflowId: opts.workflowId ?? syncWorkflowId(opts.environment ? `${opts.pipeline}@${opts.environment}` : opts.pipeline),
      args: [{ pipeline: opts.pipeline, environment: opts.environment, ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }) }],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      staticSummary: opts.summary ?? (p ? `Sync **${opts.pipeline}** (${p.mode}) ${p.source.table ?? 'query'} → ${p.target.table} on ${p.target.profile}/${p.target.environment}` : `Sync pipeline **${opts.pipeline}**`),
      staticDetails: details,
    },
    attributes,
  );
}

export async function syncProgress(client: Client, workflowId: string): Promise<SyncProgress> {
  return client.workflow.getHandle(workflowId).query(progressQuery);
}

/** Hands a fresh IdP token (sealed) to a sync waiting for re-login after TOKEN_EXPIRED. */
export async function relogin(client: Client, workflowId: string, idpToken: string): Promise<{ accepted: boolean }> {
  return client.workflow.getHandle(workflowId).executeUpdate(reloginUpdate, { args: [seal(idpToken, loadSealingKeys())] });
}

/** Starts a multi-table sync: one child dataSync per pipeline of the group. */
export async function startSyncGroup(client: Client, opts: { group: string; taskQueue: string }) {
  return client.workflow.start('syncGroup', {
    taskQueue: opts.taskQueue,
    workflowId: `sync-group:${opts.group}:${new Date().toISOString()}`,
    args: [{ group: opts.group }],
    staticSummary: `Sync group **${opts.group}**`,
  });
}

/**
 * The idempotency key of a job run: the same job, environment and parameters give the same id,
 * so a second start while one runs is rejected (Temporal's default id-conflict policy).
 */
export function jobWorkflowId(job: string, environment: string, params: Record<string, JobParamValue>): string {
  const canonical = JSON.stringify(Object.keys(params).sort().map((k) => [k, params[k]]));
  return `job:${job}:${environment}:${createHash('sha256').update(canonical).digest('hex').slice(0, 12)}`;
}

export interface StartJobOptions {
  job: string;
  params: Record<string, JobParamValue>;
  taskQueue: string;
  config: Config;
  environment?: string;
  dryRun?: boolean;
  idpToken?: string;
}

export async function startJob(client: Client, opts: StartJobOptions): Promise<WorkflowHandle<(i: OperationalJobInput) => Promise<JobProgress>>> {
  const job = opts.config.jobs[opts.job];
  if (!job) throw new Error(`unknown job "${opts.job}"; configured jobs: ${Object.keys(opts.config.jobs).join(', ') || '(none)'}`);
  const environment = opts.environment ?? job.environment;
  const paramText = Object.entries(opts.params).map(([k, v]) => `${k}=${v}`).join(', ');
  const details = [
    `**Job** \`${opts.job}\`${job.description ? ` — ${job.description}` : ''}`,
    '',
    `profile **${job.profile}** · environment **${environment}**${opts.dryRun ? ' · **dry run**' : ''}${job.approval ? ' · approval required' : ''}`,
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
      workflowId: `${jobWorkflowId(opts.job, environment, opts.params)}${opts.dryRun ? `:dry-run:${Date.now()}` : ''}`,
      args: [
        {
          job: opts.job,
          params: opts.params,
          environment: opts.environment,
          dryRun: opts.dryRun,
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }),
        },
      ],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      staticSummary: `${opts.dryRun ? 'Dry run of job' : 'Job'} **${opts.job}**${paramText ? ` (${paramText})` : ''} on ${job.profile}/${environment}`,
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
