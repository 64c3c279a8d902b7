import { createHash, createHmac, hkdfSync, type KeyObject } from 'node:crypto';
import { identityOfKey, signStatement } from '../auth/signedDecisions';
import { WorkflowIdReusePolicy, type Client, type WorkflowHandle } from '@temporalio/client';
import type { JobParamValue } from '../activities/types';
import { loadSealingKeys, loadSealPublicKey, seal } from '../auth/sealed';
import { branchEnvironmentName, type RunBranchRequest } from '../config/branches';
import type { Config } from '../config/schema';
import type { JobProgress, OperationalJobInput } from '../workflows';
import { approveUpdate, jobProgressQuery, rejectUpdate } from '../workflows/operationalJob';
import { LakebaseEnvironment, LakebaseJob, LakebaseProfile, LakebaseRowsWritten } from '../workflows/searchAttributes';
import { configMemo } from '../configSource';
import { startIndexed } from './indexedStart';

/**
 * The key that hashes job parameters into workflow ids: LAKEBASE_WORKFLOW_ID_KEY, else one derived
 * from the first payload key (LAKEBASE_SECRET_KEYS). Without either the hash is unkeyed, and anyone
 * who sees the id can test guesses of the parameters against it.
 */
export function workflowIdKey(env: NodeJS.ProcessEnv = process.env): Buffer | undefined {
  if (env.LAKEBASE_WORKFLOW_ID_KEY?.trim()) return Buffer.from(env.LAKEBASE_WORKFLOW_ID_KEY.trim(), 'utf8');
  const payloadKey = env.LAKEBASE_SECRET_KEYS || env.LAKEBASE_SECRET_KEYS_FILE ? loadSealingKeys(env)[0] : undefined;
  return payloadKey && Buffer.from(hkdfSync('sha256', payloadKey.key, Buffer.alloc(0), 'lakebase-worker workflow ids', 32));
}

/**
 * The idempotency key of a job run: the same job, environment and parameters give the same id,
 * so a second start while one runs is rejected (Temporal's default id-conflict policy). The
 * parameters enter as an HMAC under `key` (see workflowIdKey): ids are visible without the codec.
 */
export function jobWorkflowId(job: string, environment: string, params: Record<string, JobParamValue>, key: Buffer | undefined = workflowIdKey()): string {
  const canonical = JSON.stringify(Object.keys(params).sort().map((k) => [k, params[k]]));
  const digest = key ? createHmac('sha256', key).update(canonical).digest('hex') : createHash('sha256').update(canonical).digest('hex');
  return `job:${job}:${environment}:${digest.slice(0, 12)}`;
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
  /** The starter's Ed25519 key (its public half under `identities`): signs the start, so approver ≠ starter holds. */
  signingKey?: KeyObject;
}

/** Someone who signs: a configured identity and its private key. */
export interface Signer {
  by: string;
  key: KeyObject;
}

/** The configured identity a private key belongs to; an error naming the fix when none. */
export function signerOf(config: Config, key: KeyObject): Signer {
  const by = identityOfKey(key, config.identities);
  if (!by) throw new Error(`this key's public half is not under identities in the configuration (${Object.keys(config.identities).join(', ') || 'none configured'})`);
  return { by, key };
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
  const workflowId = `${jobWorkflowId(opts.job, where, opts.params)}${opts.dryRun ? `:dry-run:${Date.now()}` : ''}`;
  const signer = opts.signingKey && signerOf(opts.config, opts.signingKey);
  const signedStart = signer && signStatement({ v: 1, action: 'start', by: signer.by, job: opts.job, workflowId, at: Date.now() }, signer.key);
  return startIndexed<(i: OperationalJobInput) => Promise<JobProgress>>(
    client,
    'operationalJob',
    {
      taskQueue: opts.taskQueue,
      workflowId,
      args: [
        {
          ...(signedStart && { signedStart }),
          job: opts.job,
          params: opts.params,
          environment: opts.environment,
          dryRun: opts.dryRun,
          ...(b && { branch: b }),
          ...(opts.idpToken && { auth: { idpToken: seal(opts.idpToken, loadSealPublicKey(), { workflowId, scope: `job:${opts.job}` }) } }),
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

/** A decision signed for the run now current under `workflowId` (so it cannot be replayed onto another run). */
async function signedDecision(client: Client, workflowId: string, action: 'approve' | 'reject', signer: Signer, reason?: string) {
  const handle = client.workflow.getHandle(workflowId);
  const { runId, type } = await handle.describe();
  if (type !== 'operationalJob') throw new Error(`${workflowId} is a ${type}, not a job`);
  const { job } = await handle.query(jobProgressQuery);
  const signed = signStatement({ v: 1, action, by: signer.by, job, workflowId, runId, at: Date.now(), ...(reason && { reason }) }, signer.key);
  return { handle: client.workflow.getHandle(workflowId, runId), args: { by: signer.by, signed, ...(reason && { reason }) } };
}

/** Approves a job waiting for approval, as the identity the worker verifies from the signature. */
export async function approveJob(client: Client, workflowId: string, signer: Signer): Promise<{ approved: boolean }> {
  const { handle, args } = await signedDecision(client, workflowId, 'approve', signer);
  return handle.executeUpdate(approveUpdate, { args: [args] });
}

/** Rejects a job waiting for approval (it fails, writing nothing). */
export async function rejectJob(client: Client, workflowId: string, signer: Signer, reason?: string): Promise<void> {
  const { handle, args } = await signedDecision(client, workflowId, 'reject', signer, reason);
  await handle.executeUpdate(rejectUpdate, { args: [args] });
}
