import { Client, Connection, WorkflowIdReusePolicy, type WorkflowHandle } from '@temporalio/client';
import type { TemporalConfig } from './config/schema';
import { loadSealingKeys, seal } from './auth/sealed';
import type { DataSyncInput, SyncProgress } from './workflows';
import { progressQuery, reloginUpdate } from './workflows/dataSync';

export async function connectClient(temporal: TemporalConfig): Promise<Client> {
  const connection = await Connection.connect({ address: temporal.address });
  return new Client({ connection, namespace: temporal.namespace });
}

/** `sync:<pipeline>:<time>` — an id that says what runs (design.md §7). */
export function syncWorkflowId(pipeline: string, at = new Date()): string {
  return `sync:${pipeline}:${at.toISOString()}`;
}

export interface StartSyncOptions {
  pipeline: string;
  taskQueue: string;
  workflowId?: string;
  /** Shown in the Temporal UI next to the workflow. */
  summary?: string;
  /** For login-idp profiles: the IdP token of the user the sync runs for; sealed before it leaves this process. */
  idpToken?: string;
}

export async function startSync(client: Client, opts: StartSyncOptions): Promise<WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>> {
  return client.workflow.start('dataSync', {
    taskQueue: opts.taskQueue,
    workflowId: opts.workflowId ?? syncWorkflowId(opts.pipeline),
    args: [{ pipeline: opts.pipeline, ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealingKeys()) } }) } satisfies DataSyncInput],
    workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY,
    staticSummary: opts.summary ?? `Sync pipeline **${opts.pipeline}**`,
  });
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
