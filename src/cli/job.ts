// `job run | approve | reject | cancel`
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { jobsClient, runsClient, temporalClient } from './lazy';
import { bindJobParams, parseParamArgs } from '../config/jobParams';
import { ConfigError } from '../config/load';
import type { Config } from '../config/schema';
import { branchRequestProblems } from '../config/branches';
import { pollUntilStopped } from '../progress';
import { formatJobResult, print, printNotice, printStarted } from './output';
import { privateKeyFrom } from '../auth/signedDecisions';
import { collect, configPath, idpTokenFrom, loadConfig, requireNamed, withClient, withConfigOption, type ConfigOption } from './shared';

interface BranchOptions {
  branch?: string;
  createBranch?: boolean;
  deleteBranchAfter?: boolean;
  branchTtl?: string;
}

const KEY_HELP = 'your Ed25519 private key (PEM; its public half under identities): signs the start or decision, so the worker knows who asked (default $LAKEBASE_IDENTITY_KEY_FILE)';

/** The signing key from --key-file or LAKEBASE_IDENTITY_KEY_FILE, if any. */
function signingKey(file: string | undefined): KeyObject | undefined {
  const path = file ?? process.env.LAKEBASE_IDENTITY_KEY_FILE;
  if (!path) return undefined;
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError([`--key-file: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`]);
  }
  try {
    return privateKeyFrom(pem, `--key-file ${path}`);
  } catch (err) {
    throw new ConfigError([(err as Error).message]);
  }
}

function signerFor(config: Config, key: KeyObject) {
  try {
    return jobsClient().signerOf(config, key);
  } catch (err) {
    throw new ConfigError([`--key-file: ${(err as Error).message}`]);
  }
}

export function registerJob(program: Command): void {
  const job = program.command('job').description('triggered operational jobs (parameterised SQL steps)');

  withConfigOption(
    job
      .command('run')
      .alias('start')
      .description('run a job and wait for its result (exit 1 when it fails; a job awaiting approval says how to approve it); the same job and parameters cannot run twice at once')
      .requiredOption('-j, --job <name>', 'job name from the configuration')
      .option('-p, --param <name=value>', 'a parameter (repeatable)', collect, [] as string[])
      .option('-e, --env <environment>', "override the job's environment, e.g. staging")
      .option('--branch <name>', "run on this Lakebase Autoscaling branch of the environment's project instead of the environment's branch")
      .option('--create-branch', "create --branch from the environment's branch (a copy of its data) for this run; fails if the name is taken")
      .option('--delete-branch-after', 'delete the created branch when the run ends, also when a step fails or the job is cancelled')
      .option('--branch-ttl <duration>', 'expiry of the created branch, e.g. 2h or 1d (default 7 days): a safety net if it is never deleted')
      .option('--dry-run', 'validate parameters and print the plan with EXPLAIN for read/write steps; write nothing')
      .option('--idp-token-file <file>', 'login-idp profiles: the IdP token of the user the job runs for')
      .option('--key-file <file>', KEY_HELP)
      .option('-w, --wait', 'wait for the job and print its result (the default)')
      .option('--no-wait', 'start the job, print its workflow id and exit without the result'),
  ).action((opts: ConfigOption & { job: string; param: string[]; env?: string; dryRun?: boolean; idpTokenFile?: string; keyFile?: string; wait?: boolean } & BranchOptions) => {
    // Fail fast, before connecting, with the same rules the worker applies.
    const config = loadConfig(opts);
    const j = requireNamed(config.jobs, opts.job, '--job', 'job');
    const branchProblems = branchRequestProblems(config, opts.job, opts.env, { name: opts.branch, create: opts.createBranch, deleteAfter: opts.deleteBranchAfter, ttl: opts.branchTtl });
    if (branchProblems.length) throw new ConfigError(branchProblems);
    const branch = opts.branch ? { name: opts.branch, create: opts.createBranch, deleteAfter: opts.deleteBranchAfter, ttl: opts.branchTtl } : undefined;
    const params = parseParamArgs(opts.param);
    bindJobParams(opts.job, j, params);
    const idpToken = idpTokenFrom(opts);
    const key = signingKey(opts.keyFile);
    if (j.approval && !j.allowSelfApproval && !key && !opts.dryRun)
      throw new ConfigError([`job "${opts.job}" needs approval by someone other than whoever starts it: give --key-file (or LAKEBASE_IDENTITY_KEY_FILE) with your Ed25519 key, whose public half is under identities`]);
    if (key) signerFor(config, key);
    return withClient(config, async (client) => {
      const handle = await jobsClient().startJob(client, { job: opts.job, params, environment: opts.env, dryRun: opts.dryRun, taskQueue: config.temporal.taskQueue, config, idpToken, branch, signingKey: key, configFile: configPath(opts) }).catch((err: unknown) => {
        if (err instanceof temporalClient().WorkflowExecutionAlreadyStartedError)
          throw new ConfigError([`job "${opts.job}" with these parameters is already running as ${err.workflowId}; wait for it or cancel it (job cancel ${err.workflowId})`]);
        throw err;
      });
      const health = require('../client/runHealth') as typeof import('../client/runHealth');
      printStarted(handle.workflowId, health.temporalUiUrl(config.temporal.address, config.temporal.namespace, handle.workflowId));
      if (opts.wait === false && !opts.dryRun) return;
      // While waiting, say once when the job stops for approval (it may wait for hours).
      const id = handle.workflowId;
      let told = false;
      const stop = pollUntilStopped(
        (signal) => client.withAbortSignal(signal, () => jobsClient().jobProgress(client, id)),
        (p) => {
          if (p.status !== 'awaiting approval' || told) return;
          told = true;
          print(`${id}: awaiting approval — lakebase-worker job approve ${id} --key-file <approver key> (or job reject ${id} --key-file … --reason …); waiting`);
        },
        Number(process.env.LAKEBASE_PROGRESS_INTERVAL_MS) || 5_000,
      );
      // No worker, or a step retrying: said within seconds (src/client/runHealth.ts).
      const watch = { taskQueue: config.temporal.taskQueue, configFile: configPath(opts), workflowId: id, say: printNotice };
      formatJobResult(opts.job, await health.waitWatched(client, watch, () => handle.result()).finally(stop)).forEach((l) => print(l));
    });
  });

  const decisions: ['approve' | 'reject' | 'cancel', string][] = [
    ['approve', 'approve a job waiting before its write steps'],
    ['reject', 'reject a job waiting for approval (it fails, writing nothing)'],
    ['cancel', 'cancel a running job; the running step is rolled back'],
  ];
  for (const [name, description] of decisions) {
    withConfigOption(
      job
        .command(name)
        .description(description)
        .argument('<workflowId>', 'e.g. job:refresh-aggregates:prod:1a2b3c4d5e6f')
        .option('--key-file <file>', name === 'cancel' ? 'not needed to cancel' : KEY_HELP)
        .option('--reason <text>', 'why (reject)'),
    ).action((id: string, opts: ConfigOption & { keyFile?: string; reason?: string }) => {
      const config = loadConfig(opts);
      // Who decides is whoever holds the key: a name typed on the command line proves nothing.
      const key = name === 'cancel' ? undefined : signingKey(opts.keyFile);
      if (name !== 'cancel' && !key) throw new ConfigError([`job ${name}: give --key-file (or LAKEBASE_IDENTITY_KEY_FILE) with your Ed25519 key, whose public half is under identities; the worker checks the signature`]);
      const signer = key && signerFor(config, key);
      return withClient(config, async (client) => {
        if (name === 'approve') print((await jobsClient().approveJob(client, id, signer!)).approved ? `${id}: approved by ${signer!.by}` : `${id}: not approved (it was rejected first)`);
        if (name === 'reject') {
          await jobsClient().rejectJob(client, id, signer!, opts.reason);
          print(`${id}: rejected by ${signer!.by}`);
        }
        if (name === 'cancel') {
          await runsClient().cancelWorkflow(client, id);
          print(`${id}: cancellation requested`);
        }
      });
    });
  }
}
