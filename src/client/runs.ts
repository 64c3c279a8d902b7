import type { Client } from '@temporalio/client';
import type { JobProgress, SyncProgress } from '../workflows';
import { LakebaseEnvironment, LakebaseJob, LakebasePipeline, LakebaseProfile, LakebaseRowsWritten } from '../workflows/searchAttributes';
import { CONFIG_MEMO } from '../configSource';
import { jobProgress } from './jobs';
import { configDriftMessage, failureText, formatActivityFailure, lastActivityFailure, noWorkerMessage, workflowPollers } from './runHealth';
import { syncProgress } from './sync';

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
  taskQueue: string;
  tags: [string, string][];
  /** The config file the run was started with (its memo, src/configSource.ts CONFIG_MEMO). */
  config?: string;
  sync?: SyncProgress;
  job?: JobProgress;
  /** A running run started with another config than the polling workers run. */
  drift?: string;
  /** No worker polls the run's task queue: its progress cannot be asked (nor will it move). */
  noWorker?: string;
  /** A running run: the failure of the activity it is retrying. */
  lastFailure?: string;
  /** A closed run that did not complete: why. */
  failure?: string;
}

/** State, search attributes and progress of one sync or job workflow; without a worker, what can be told without one. */
export async function runStatus(client: Client, workflowId: string, configFile?: string): Promise<RunStatus> {
  const handle = client.workflow.getHandle(workflowId);
  const desc = await handle.describe();
  const attrs = desc.typedSearchAttributes;
  const tags = [LakebasePipeline, LakebaseJob, LakebaseProfile, LakebaseEnvironment, LakebaseRowsWritten]
    .map((k) => [k.name, attrs.get(k)] as const)
    .filter((e): e is readonly [string, string | number] => e[1] !== undefined)
    .map(([k, v]): [string, string] => [k, String(v)]);
  const memo = desc.memo?.[CONFIG_MEMO] as { path?: unknown; fingerprint?: unknown } | undefined;
  const fingerprint = typeof memo?.fingerprint === 'string' ? memo.fingerprint : undefined;
  const config = typeof memo?.path === 'string' ? `${memo.path}${fingerprint ? ` (${fingerprint})` : ''}` : undefined;
  const status = desc.status.name;
  // Queries, even of a closed run, are answered by a worker: without one they only time out.
  const pollers = await workflowPollers(client, desc.taskQueue).catch(() => null);
  const noWorker = pollers && pollers.length === 0 ? noWorkerMessage(desc.taskQueue, configFile) : undefined;
  const drift = status === 'RUNNING' && pollers ? configDriftMessage(pollers, desc.taskQueue, fingerprint, 'the config this run was started with') : undefined;
  const out: RunStatus = { workflowId, status, type: desc.type, taskQueue: desc.taskQueue, tags, ...(config && { config }), ...(noWorker && { noWorker }), ...(drift && { drift }) };
  if (!noWorker) {
    if (desc.type === 'dataSync') out.sync = await syncProgress(client, workflowId);
    if (desc.type === 'operationalJob') out.job = await jobProgress(client, workflowId);
  }
  if (status === 'RUNNING') {
    const last = await lastActivityFailure(handle).catch(() => null);
    if (last) out.lastFailure = formatActivityFailure(last);
  } else if (status !== 'COMPLETED' && status !== 'CONTINUED_AS_NEW') {
    out.failure = await handle.result().then(() => undefined, (err: unknown) => failureText(err));
  }
  return out;
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
