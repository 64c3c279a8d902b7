import type pg from 'pg';
import { bindJobParams } from '../config/jobParams';
import type { Config, JobConfig, JobStepConfig } from '../config/schema';
import { lookupEnvironment, lookupJob } from '../config/lookup';
import { ensureBranchEnvironment } from '../config/branches';
import { cancelBackend, explainStatement, materialize, queryText, readText } from '../db/jobSql';
import { withTransaction } from '../db/transaction';
import { compileNamedParams } from '../db/namedParams';
import type { PoolRegistry } from '../db/pools';
import type { SealPrivateKey } from '../auth/sealed';
import type { Metrics } from '../metrics';
import { activityContext } from './context';
import { runActivity } from './adapter';
import { configFailure, toActivityFailure } from './failures';
import { sessionOf } from './sync';
import { ApplicationFailure } from '@temporalio/common';
import { SignatureError, verifyStatement, type Statement } from '../auth/signedDecisions';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import type { JobPlan, JobUnit, PlanJobInput, RunBranchTarget, RunJobUnitInput, StepOutput, VerifyJobDecisionInput } from './types';

/** A signed start older or newer than this against the run's start is refused (it may be a replay). */
const START_SIGNATURE_WINDOW_MS = 5 * 60_000;

/** A TypeScript job step registered with the worker: gets parameters, earlier outputs and a query function. */
export type JobFunction = (ctx: {
  params: Record<string, string | null>;
  outputs: Record<string, Record<string, string | null>>;
  query: (sql: string, values?: unknown[]) => Promise<Record<string, unknown>[]>;
}) => Promise<Record<string, string | null> | void>;

export interface JobDeps {
  config: Config;
  pools: PoolRegistry;
  sealingKeys: SealPrivateKey[];
  jobFunctions?: Record<string, JobFunction>;
  metrics?: Metrics;
}

const INLINE_ROWS = 100;

function bind(sql: string, params: Record<string, string | null>, outputs: Record<string, Record<string, string | null>>, step: string): { text: string; values: (string | null)[] } {
  const { text, names } = compileNamedParams(sql);
  const values = names.map((n) => {
    if (n.includes('.')) {
      const [s, col] = n.split('.') as [string, string];
      const out = outputs[s];
      if (!out) throw configFailure(`step "${step}": :${n} refers to step "${s}", which has not run before it or returned no row`);
      if (!(col in out)) throw configFailure(`step "${step}": :${n}: step "${s}" returned no column "${col}"; it has ${Object.keys(out).join(', ')}`);
      return out[col] ?? null;
    }
    if (!(n in params)) throw configFailure(`step "${step}": :${n} is not a parameter of this job; declare it under params`);
    return params[n] ?? null;
  });
  return { text, values };
}

export function createJobActivities({ config, pools, sealingKeys, jobFunctions = {}, metrics }: JobDeps) {
  function jobOf(name: string): JobConfig {
    try {
      return lookupJob(config, name);
    } catch (err) {
      throw toActivityFailure(err, `job ${name}`);
    }
  }

  function environmentFor(job: JobConfig, override?: string): string {
    const env = override ?? job.environment;
    try {
      lookupEnvironment(config, job.profile, env);
    } catch (err) {
      throw configFailure(`--env: ${(err as Error).message}`);
    }
    return env;
  }

  /** The environment a step connects as: the configured one, or `<env>@<branch>` for a branch run. */
  function connectAs(job: JobConfig, environment: string, branch?: RunBranchTarget): string {
    if (!branch) return environment;
    try {
      return ensureBranchEnvironment(config, job.profile, environment, branch);
    } catch (err) {
      throw toActivityFailure(err, `branch ${branch.name}`);
    }
  }

  function units(job: JobConfig): JobUnit[] {
    const out: JobUnit[] = [];
    for (const s of job.steps) {
      const step = { name: s.name, kind: s.kind, timeout: s.timeout, retry: s.retry, into: s.into };
      const last = out[out.length - 1];
      if (s.transaction && last?.transaction === s.transaction) last.steps.push(step);
      else out.push({ transaction: s.transaction, steps: [step] });
    }
    return out;
  }

  /** Validates parameters and lays out the steps; a dry run also EXPLAINs read and write steps, writing nothing. */
  function planJob(input: PlanJobInput): Promise<JobPlan> {
    return runActivity({ statement: `${input.dryRun ? 'dry run of ' : ''}job ${input.job}` }, () => plan(input));
  }

  /** The running workflow's id and run id, as the server gave them to this activity (never as a client wrote them). */
  function thisRun(): { workflowId: string; runId: string } {
    const info = activityContext()?.info.workflowExecution;
    if (!info) throw configFailure('signed job statements are checked only inside a workflow');
    return info;
  }

  function verified(signed: unknown, what: string): Statement {
    try {
      return verifyStatement(signed, config.identities);
    } catch (err) {
      if (err instanceof SignatureError) throw ApplicationFailure.create({ message: `${what} refused: ${err.message}`, type: NON_RETRYABLE_FAILURES.jobNotApproved, nonRetryable: true });
      throw err;
    }
  }

  /** Who started an approval job, proven by signature; undefined when unsigned and the job allows that. */
  function startedBy(name: string, job: JobConfig, input: PlanJobInput): string | undefined {
    if (!job.approval) return undefined;
    if (Object.keys(config.identities).length === 0)
      throw configFailure(`jobs.${name}.approval: no identities are configured, so no approval could be trusted; add identities: { <name>: { publicKey } } (Ed25519) for the people who approve`);
    if (!input.signedStart) {
      if (job.allowSelfApproval) return undefined;
      throw configFailure(`jobs.${name} needs approval by someone other than whoever starts it: start it with --key-file <your Ed25519 key> (its public half under identities)`);
    }
    const s = verified(input.signedStart, `the signed start of job ${name}`);
    const run = thisRun();
    const refuse = (why: string) => ApplicationFailure.create({ message: `the signed start of job ${name} refused: ${why}`, type: NON_RETRYABLE_FAILURES.jobNotApproved, nonRetryable: true });
    if (s.action !== 'start' || s.job !== name) throw refuse(`it starts ${s.action === 'start' ? `job ${s.job}` : 'nothing'}`);
    if (s.workflowId !== run.workflowId) throw refuse(`it was signed for workflow ${s.workflowId}`);
    if (input.runStartedAt === undefined || Math.abs(input.runStartedAt - s.at) > START_SIGNATURE_WINDOW_MS) throw refuse('it was not signed when this run started (a replayed start?)');
    return s.by;
  }

  /** An approve or reject: signed for this very run by an approver who is not the starter (unless the job allows it). */
  function verifyJobDecision(input: VerifyJobDecisionInput): Promise<{ by: string }> {
    return runActivity({ statement: `${input.decision} of job ${input.job}` }, async () => {
      const job = jobOf(input.job);
      const what = `the ${input.decision === 'approve' ? 'approval' : 'rejection'} of job ${input.job}`;
      const s = verified(input.signed, what);
      const run = thisRun();
      const refuse = (why: string) => ApplicationFailure.create({ message: `${what} refused: ${why}`, type: NON_RETRYABLE_FAILURES.jobNotApproved, nonRetryable: true });
      if (s.action !== input.decision || s.job !== input.job) throw refuse(`it was signed to ${s.action} job ${s.job}`);
      if (s.workflowId !== run.workflowId || s.runId !== run.runId) throw refuse('it was signed for another run');
      const self = input.startedBy !== undefined && s.by === input.startedBy;
      // The starter may always withdraw (reject) their own job; approving it takes someone else.
      if (input.decision === 'reject' && self) return { by: s.by };
      if (job.approvers && !job.approvers.includes(s.by)) throw refuse(`${s.by} is not among jobs.${input.job}.approvers (${job.approvers.join(', ')})`);
      if (self && !job.allowSelfApproval) throw refuse(`${s.by} started this job and may not approve it (jobs.${input.job}.allowSelfApproval is false)`);
      return { by: s.by };
    });
  }

  async function plan(input: PlanJobInput): Promise<JobPlan> {
    const { job: name, params, environment, dryRun, auth, branch } = input;
    const job = jobOf(name);
    const bound = bindJobParams(name, job, params);
    const env = environmentFor(job, environment);
    for (const s of job.steps) if (s.function && !jobFunctions[s.function]) throw configFailure(`jobs.${name}: step "${s.name}" uses function "${s.function}", which is not registered with this worker`);
    const plan: JobPlan = { job: name, description: job.description, profile: job.profile, environment: env, params: bound, units: units(job), approval: job.approval, ...(branch && { branch: branch.name }) };
    if (!dryRun) {
      const by = startedBy(name, job, input);
      if (by) plan.startedBy = by;
      return plan;
    }
    const client = await pools.connect(job.profile, connectAs(job, env, branch), sessionOf(auth, sealingKeys, `job:${name}`));
    try {
      plan.explain = await explainSteps(client, job, bound);
      client.release();
    } catch (err) {
      client.release(true);
      throw err;
    }
    return plan;
  }

  /** A dry run's EXPLAIN of every read and write step, in a transaction that only rolls back. */
  async function explainSteps(client: pg.PoolClient, job: JobConfig, bound: Record<string, string | null>): Promise<{ step: string; plan: string }[]> {
    const explain: { step: string; plan: string }[] = [];
    await withTransaction(
      client,
      async (tx) => {
        tx.rollbackOnly();
        for (const s of job.steps.filter((x) => (x.kind === 'read' || x.kind === 'write') && x.sql)) {
          // Outputs of earlier steps do not exist yet in a dry run: they are bound as NULL.
          const { text, names } = compileNamedParams(s.sql!);
          const values = names.map((n) => (n.includes('.') ? null : (bound[n] ?? null)));
          explain.push({ step: s.name, plan: await explainStatement(client, text, values) });
        }
      },
      'BEGIN READ ONLY',
    );
    return explain;
  }

  async function runStep(client: pg.PoolClient, jobName: string, s: JobStepConfig, input: RunJobUnitInput, outputs: Record<string, Record<string, string | null>>): Promise<StepOutput> {
    if (s.function) {
      const fn = jobFunctions[s.function]!;
      const result = await fn({
        params: input.params,
        outputs,
        query: async (sql, values) => (await queryText<Record<string, unknown>>(client, sql, values)).rows,
      });
      if (result) outputs[s.name] = result;
      return { name: s.name, kind: s.kind, rowCount: result ? 1 : 0, rows: result ? [result] : undefined };
    }
    const { text, values } = bind(s.sql!, input.params, outputs, s.name);
    if (s.kind === 'read' && s.into) {
      return { name: s.name, kind: s.kind, rowCount: await materialize(client, s.into, text, values) };
    }
    const res = s.kind === 'read' ? await readText(client, text, values) : await queryText(client, text, values);
    if (s.kind === 'read') {
      if (res.rows[0]) outputs[s.name] = res.rows[0];
      return { name: s.name, kind: s.kind, rowCount: res.rowCount ?? res.rows.length, rows: res.rows.slice(0, INLINE_ROWS), truncated: res.rows.length > INLINE_ROWS };
    }
    return { name: s.name, kind: s.kind, rowCount: res.rowCount ?? 0 };
  }

  /**
   * Runs consecutive steps on one connection; a transaction group commits all or nothing. Honours
   * cancellation: the connection is dropped, so PostgreSQL rolls back what was running.
   */
  async function runJobUnit(input: RunJobUnitInput): Promise<StepOutput[]> {
    let current = input.steps[0] ?? '?';
    // Reported as a cancellation (not a failure) once the signal fired, so the workflow ends CANCELLED.
    const label = () => ({
      statement: `job ${input.job}, step ${current}${input.transaction ? ` (transaction ${input.transaction} rolled back)` : ''}`,
      cancelled: { message: `job ${input.job} cancelled during step ${current}; it was rolled back`, when: 'signal' as const },
    });
    return runActivity(label, () => runUnit(input, (step) => (current = step)));
  }

  async function runUnit(input: RunJobUnitInput, reached: (step: string) => void): Promise<StepOutput[]> {
    const job = jobOf(input.job);
    const steps = input.steps.map((n) => {
      const s = job.steps.find((x) => x.name === n);
      if (!s) throw configFailure(`job "${input.job}" has no step "${n}" (the configuration changed while it ran?)`);
      return s;
    });
    const ctx = activityContext();
    const environment = connectAs(job, input.environment, input.branch);
    const client = await pools.connect(job.profile, environment, sessionOf(input.auth, sealingKeys, `job:${input.job}`));
    const beat = setInterval(() => ctx?.heartbeat(), 1_000);
    // Cancel the running statement server-side (a dropped socket would leave it running until it next writes).
    const backendPid = (client as unknown as { processID: number }).processID;
    const onCancel = () => void cancelBackend(pools.get(job.profile, environment, sessionOf(input.auth, sealingKeys, `job:${input.job}`)), backendPid).catch(() => undefined);
    ctx?.cancellationSignal.addEventListener('abort', onCancel);
    try {
      const outputs = { ...input.outputs };
      const results: StepOutput[] = [];
      const all = async () => {
        for (const s of steps) {
          reached(s.name);
          results.push(await runStep(client, input.job, s, input, outputs));
        }
      };
      // A transaction group commits all or nothing; single steps autocommit. Reads (without `into`)
      // run read-only: a "read" that deletes fails instead of writing before any approval.
      const readOnly = steps.every((s) => s.kind === 'read' && !s.into && !s.function);
      if (readOnly) await withTransaction(client, all, 'BEGIN READ ONLY');
      else if (input.transaction) await withTransaction(client, all);
      else await all();
      client.release();
      metrics?.jobSteps.inc({ job: input.job, outcome: 'ok' }, results.length);
      return results;
    } catch (err) {
      client.release(true);
      metrics?.jobSteps.inc({ job: input.job, outcome: 'failed' });
      throw err;
    } finally {
      clearInterval(beat);
      ctx?.cancellationSignal.removeEventListener('abort', onCancel);
    }
  }

  return { planJob, runJobUnit, verifyJobDecision };
}
