import { createHash } from 'node:crypto';
import {
  ApplicationFailure,
  Client,
  Connection,
  ScheduleOverlapPolicy,
  WorkflowFailedError,
  type ScheduleDescription,
  WorkflowIdReusePolicy,
  type WorkflowHandle,
  type Workflow,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import type { JobParamValue } from './activities/types';
import { loadSealingKeys, seal } from './auth/sealed';
import { pipelineInEnvironment } from './config/lookup';
import { branchEnvironmentName, type RunBranchRequest } from './config/branches';
import type { Config, TemporalConfig } from './config/schema';
import type { ConnectionReport } from './db/diagnose';
import { dataConverterFor, explainTemporalConnectError, temporalConnectionOptions } from './temporalConnection';
import { registerSearchAttributes } from './temporalConnection';
import { activeTracing } from './telemetry/tracingSwitch';
import { OpenTelemetryWorkflowClientInterceptor } from '@temporalio/interceptors-opentelemetry/lib/client';
import type { DataSyncInput, JobProgress, OperationalJobInput, SyncProgress, VerifySyncInput } from './workflows';
import type { VerifyReport } from './activities/types';
import { progressQuery, reloginUpdate } from './workflows/dataSync';
import { approveUpdate, jobProgressQuery, rejectSignal } from './workflows/operationalJob';
import { LakebaseEnvironment, LakebaseJob, LakebasePipeline, LakebaseProfile, LakebaseRowsWritten } from './workflows/searchAttributes';

export { createSyncSchedule, describeSchedule, listSchedules } from './schedules';

/** Connects to the configured Temporal; an unreachable server is an error naming the address and what to do. */
export async function connectClient(t: TemporalConfig): Promise<Client> {
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...temporalConnectionOptions(t), connectTimeout: 5_000 });
  } catch (err) {
    throw await explainTemporalConnectError(t.address, err);
  }
  return new Client({
    connection,
    namespace: t.namespace,
    dataConverter: dataConverterFor(t),
    // With tracing on, a workflow start opens the trace and carries it into the workflow.
    ...(activeTracing() && { interceptors: { workflow: [new OpenTelemetryWorkflowClientInterceptor()] } }),
  });
}

/** Every message of an error and its causes, for matching server answers the SDK wraps (it puts them in `cause`). */
function messageChain(err: unknown): string {
  const parts: string[] = [];
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) parts.push(e.message, String((e as { details?: unknown }).details ?? ''));
  return parts.join(' | ');
}

/** The server's answers to a start naming search attributes the namespace does not have (wordings of several server versions). */
export const UNREGISTERED_SEARCH_ATTRIBUTE = /no mapping defined for search attribute|search attribute .* is not defined|not a valid search attribute/i;

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
    if (!UNREGISTERED_SEARCH_ATTRIBUTE.test(messageChain(err))) throw err;
    process.emitWarning(
      `Lakebase search attributes are not registered on this Temporal namespace (${options.workflowId}: started without them); run \`lakebase-worker setup\` or start a worker (it registers them where the namespace allows) so the UI can filter on them.`,
    );
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
  /** Only validate and describe what the sync would do (progress.dryRun); nothing is claimed or created. */
  dryRun?: boolean;
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
      workflowId: opts.workflowId ?? (opts.dryRun ? 'dry-run:' : '') + syncWorkflowId(opts.environment ? `${opts.pipeline}@${opts.environment}` : opts.pipeline),
      args: [
        {
          pipeline: opts.pipeline,
          environment: opts.environment,
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }),
          ...(opts.dryRun && { dryRun: true }),
        },
      ],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
      staticSummary:
        opts.summary ??
        `${opts.dryRun ? 'Dry run of sync' : 'Sync'} ` +
          (p ? `**${opts.pipeline}** (${p.mode}) ${p.source.table ?? 'query'} → ${p.target.table} on ${p.target.profile}/${p.target.environment}` : `pipeline **${opts.pipeline}**`),
      staticDetails: details,
    },
    attributes,
  );
}

export interface StartVerifyOptions {
  pipeline: string;
  taskQueue: string;
  config?: Config;
  environment?: string;
  mode?: 'counts' | 'checksums';
  idpToken?: string;
}

/** `verify:<pipeline>:<time>`: the compare a sync with `verify` runs after itself, on its own. */
export async function startVerify(client: Client, opts: StartVerifyOptions): Promise<WorkflowHandle<(i: VerifySyncInput) => Promise<VerifyReport>>> {
  const configured = opts.config?.pipelines[opts.pipeline];
  const p = configured && pipelineInEnvironment(configured, opts.environment);
  const attributes: SearchAttributePair[] = [{ key: LakebasePipeline, value: opts.pipeline }];
  if (p) attributes.push({ key: LakebaseProfile, value: p.target.profile }, { key: LakebaseEnvironment, value: p.target.environment });
  const name = opts.environment ? `${opts.pipeline}@${opts.environment}` : opts.pipeline;
  return startIndexed<(i: VerifySyncInput) => Promise<VerifyReport>>(
    client,
    'verifySync',
    {
      taskQueue: opts.taskQueue,
      workflowId: `verify:${name}:${new Date().toISOString()}`,
      args: [
        {
          pipeline: opts.pipeline,
          environment: opts.environment,
          ...(opts.mode && { mode: opts.mode }),
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }),
        },
      ],
      staticSummary: p ? `Verify **${opts.pipeline}**: ${p.source.table ?? 'query'} against ${p.target.table} on ${p.target.profile}/${p.target.environment}` : `Verify pipeline **${opts.pipeline}**`,
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

/** Requests cancellation of a running sync or job. */
export async function cancelWorkflow(client: Client, workflowId: string): Promise<void> {
  await client.workflow.getHandle(workflowId).cancel();
}

/** How long a closed workflow ran, from the server's own start and close times (not the caller's clock). */
export async function workflowDuration(client: Client, workflowId: string): Promise<number | undefined> {
  const d = await client.workflow.getHandle(workflowId).describe();
  return d.closeTime ? (d.closeTime.getTime() - d.startTime.getTime()) / 1000 : undefined;
}

export interface RunStatus {
  workflowId: string;
  status: string;
  type: string;
  tags: [string, string][];
  sync?: SyncProgress;
  job?: JobProgress;
}

/** State, search attributes and progress of one sync or job workflow. */
export async function runStatus(client: Client, workflowId: string): Promise<RunStatus> {
  const desc = await client.workflow.getHandle(workflowId).describe();
  const attrs = desc.typedSearchAttributes;
  const tags = [LakebasePipeline, LakebaseJob, LakebaseProfile, LakebaseEnvironment, LakebaseRowsWritten]
    .map((k) => [k.name, attrs.get(k)] as const)
    .filter((e): e is readonly [string, string | number] => e[1] !== undefined)
    .map(([k, v]): [string, string] => [k, String(v)]);
  return {
    workflowId,
    status: desc.status.name,
    type: desc.type,
    tags,
    ...(desc.type === 'dataSync' && { sync: await syncProgress(client, workflowId) }),
    ...(desc.type === 'operationalJob' && { job: await jobProgress(client, workflowId) }),
  };
}

export interface RunFilter {
  pipeline?: string;
  job?: string;
  environment?: string;
  status?: string;
  limit: number;
}

/** Syncs and jobs, newest first: a visibility query on our search attributes. */
export async function listRuns(client: Client, f: RunFilter): Promise<{ startTime: Date; status: string; workflowId: string; rowsWritten?: number }[]> {
  const q = (k: string, v: string) => `${k} = '${v.replace(/'/g, "''")}'`;
  const where = [
    f.pipeline && q('LakebasePipeline', f.pipeline),
    f.job && q('LakebaseJob', f.job),
    f.environment && q('LakebaseEnvironment', f.environment),
    f.status && q('ExecutionStatus', f.status),
    !f.pipeline && !f.job && `WorkflowType IN ('dataSync', 'operationalJob', 'syncGroup')`,
  ].filter(Boolean);
  const out = [];
  for await (const w of client.workflow.list({ query: where.join(' AND ') })) {
    out.push({ startTime: w.startTime, status: w.status.name, workflowId: w.workflowId, rowsWritten: w.typedSearchAttributes.get(LakebaseRowsWritten) });
    if (out.length >= f.limit) break;
  }
  return out;
}

export type ScheduleAction = 'describe' | 'pause' | 'unpause' | 'trigger' | 'delete';

/** One action on a schedule; returns its description afterwards (undefined once deleted). */
export async function scheduleAction(client: Client, scheduleId: string, action: ScheduleAction): Promise<ScheduleDescription | undefined> {
  const h = client.schedule.getHandle(scheduleId);
  if (action === 'pause') await h.pause('paused from the CLI');
  if (action === 'unpause') await h.unpause('unpaused from the CLI');
  if (action === 'trigger') await h.trigger();
  if (action === 'delete') {
    await h.delete();
    return undefined;
  }
  return h.describe();
}

/** Runs a schedule for a past time range; every missed run is buffered (overlap policy applies). */
export async function backfillSchedule(client: Client, scheduleId: string, start: Date, end: Date): Promise<ScheduleDescription> {
  const h = client.schedule.getHandle(scheduleId);
  await h.backfill({ start, end, overlap: ScheduleOverlapPolicy.BUFFER_ALL });
  return h.describe();
}

/** Runs the `testConnection` workflow on a worker and returns its report (a failed check is a report too). */
export async function testConnectionViaWorker(
  client: Client,
  opts: { profile: string; environment: string; taskQueue: string; idpToken?: string },
): Promise<ConnectionReport> {
  const h = await client.workflow.start('testConnection', {
    taskQueue: opts.taskQueue,
    workflowId: `test-connection:${opts.profile}:${opts.environment}:${new Date().toISOString()}`,
    args: [{ profile: opts.profile, environment: opts.environment, ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }) }],
    staticSummary: `Test connection **${opts.profile}/${opts.environment}**`,
  });
  return (await h.result().catch((err: unknown) => {
    const details = err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure ? err.cause.details?.[0] : undefined;
    if (details) return details;
    throw err;
  })) as ConnectionReport;
}

/** `setup`: registers our search attributes on the client's namespace; returns the names added. */
export function setupSearchAttributes(client: Client): Promise<string[]> {
  return registerSearchAttributes(client.connection.operatorService, client.options.namespace);
}
