import { WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import { loadSealPublicKey, seal } from '../auth/sealed';
import { pipelineInEnvironment } from '../config/lookup';
import type { Config } from '../config/schema';
import type { DataSyncInput, SyncProgress } from '../workflows';
import { progressQuery, reloginUpdate } from '../workflows/dataSync';
import { LakebaseEnvironment, LakebasePipeline, LakebaseProfile, LakebaseRowsWritten } from '../workflows/searchAttributes';
import { configMemo } from '../configSource';
import { startIndexed } from './indexedStart';

/** `sync:<pipeline>:<time>` — an id that says what runs (docs/operations.md, "Watching it in the Temporal UI"). */
export function syncWorkflowId(pipeline: string, at = new Date()): string {
  return `sync:${pipeline}:${at.toISOString()}`;
}

export interface StartSyncOptions {
  /** The config file the command read: recorded in the run's memo (which file and version started it). */
  configFile?: string;
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
  const workflowId = opts.workflowId ?? (opts.dryRun ? 'dry-run:' : '') + syncWorkflowId(opts.environment ? `${opts.pipeline}@${opts.environment}` : opts.pipeline);
  return startIndexed<(i: DataSyncInput) => Promise<SyncProgress>>(
    client,
    'dataSync',
    {
      taskQueue: opts.taskQueue,
      workflowId,
      args: [
        {
          pipeline: opts.pipeline,
          environment: opts.environment,
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealPublicKey(), { workflowId, scope: `pipeline:${opts.pipeline}` }) } }),
          ...(opts.dryRun && { dryRun: true }),
        },
      ],
      ...configMemo(opts.configFile),
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

export async function syncProgress(client: Client, workflowId: string): Promise<SyncProgress> {
  return client.workflow.getHandle(workflowId).query(progressQuery);
}

/** Hands a fresh IdP token (sealed) to a sync waiting for re-login after TOKEN_EXPIRED. */
export async function relogin(client: Client, workflowId: string, idpToken: string): Promise<{ accepted: boolean }> {
  const handle = client.workflow.getHandle(workflowId);
  // Sealed for this sync only: its pipeline, as the sync itself reports it.
  const { pipeline } = await handle.query(progressQuery);
  return handle.executeUpdate(reloginUpdate, { args: [seal(idpToken, loadSealPublicKey(), { workflowId, scope: `pipeline:${pipeline}` })] });
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
