import type { Client, WorkflowHandle } from '@temporalio/client';
import type { SearchAttributePair } from '@temporalio/common';
import type { VerifyReport } from '../activities/types';
import { loadSealPublicKey, seal } from '../auth/sealed';
import { pipelineInEnvironment } from '../config/lookup';
import type { Config } from '../config/schema';
import type { VerifySyncInput } from '../workflows';
import { LakebaseEnvironment, LakebasePipeline, LakebaseProfile } from '../workflows/searchAttributes';
import { configMemo } from '../configSource';
import { startIndexed } from './indexedStart';

export interface StartVerifyOptions {
  /** The config file the command read: recorded in the run's memo (which file and version started it). */
  configFile?: string;
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
  const workflowId = `verify:${name}:${new Date().toISOString()}`;
  return startIndexed<(i: VerifySyncInput) => Promise<VerifyReport>>(
    client,
    'verifySync',
    {
      taskQueue: opts.taskQueue,
      workflowId,
      args: [
        {
          pipeline: opts.pipeline,
          environment: opts.environment,
          ...(opts.mode && { mode: opts.mode }),
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealPublicKey(), { workflowId, scope: `pipeline:${opts.pipeline}` }) } }),
        },
      ],
      ...configMemo(opts.configFile),
      staticSummary: p ? `Verify **${opts.pipeline}**: ${p.source.table ?? 'query'} against ${p.target.table} on ${p.target.profile}/${p.target.environment}` : `Verify pipeline **${opts.pipeline}**`,
    },
    attributes,
  );
}
