import type { Client } from '@temporalio/client';
import type { JobProgress, SyncProgress } from '../workflows';
import { LakebaseEnvironment, LakebaseJob, LakebasePipeline, LakebaseProfile, LakebaseRowsWritten } from '../workflows/searchAttributes';
import { jobProgress } from './jobs';
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
