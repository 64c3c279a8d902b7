import { ApplicationFailure } from '@temporalio/common';
import type { CredentialProvider } from '../auth/credentials';
import type { SealPrivateKey } from '../auth/sealed';
import { createPostgresApi, isReadWrite, PostgresApiError, READ_WRITE, waitForOperation, type PostgresApi } from '../auth/postgresApi';
import { branchRequestProblems, ttlSeconds } from '../config/branches';
import { lookupEnvironment, lookupJob } from '../config/lookup';
import type { Config } from '../config/schema';
import { NON_RETRYABLE_FAILURES } from '../failureTypes';
import { runActivity } from './adapter';
import { activityContext } from './context';
import { configFailure, toActivityFailure } from './failures';
import { sessionOf } from './sync';
import type { DeleteRunBranchInput, PrepareRunBranchInput, RunBranchInfo } from './types';

export interface BranchDeps {
  config: Config;
  credentials: CredentialProvider;
  sealingKeys: SealPrivateKey[];
  /** How long to wait for a branch (or endpoint) operation to finish. Default 10 minutes. */
  branchOperationTimeoutMs?: number;
}

/** Kept unless a run asks otherwise: long enough for an approval wait (24 h by default) and a look at the result. */
const DEFAULT_TTL_SECONDS = 7 * 86_400;

/**
 * Branch runs: a job tried on a copy of its environment's branch. The branch is created from the
 * environment's branch (its parent) and addressed through its own read-write endpoint; the
 * workflow deletes it afterwards when asked.
 */
export function createBranchActivities({ config, credentials, sealingKeys, branchOperationTimeoutMs = 10 * 60_000 }: BranchDeps) {
  function target(input: { job: string; environment?: string }) {
    let job, envName: string, env;
    try {
      job = lookupJob(config, input.job);
      envName = input.environment ?? job.environment;
      env = lookupEnvironment(config, job.profile, envName);
    } catch (err) {
      throw toActivityFailure(err, `job ${input.job}`);
    }
    if (!env.project || !env.branch || !env.endpoint)
      throw configFailure(`--branch: environment "${envName}" names a host, not a Lakebase Autoscaling project/branch/endpoint; branches exist only there`);
    return { profile: job.profile, envName, project: env.project, parentId: env.branch, endpointId: env.endpoint };
  }

  async function apiFor(profile: string, envName: string, auth: PrepareRunBranchInput['auth'], job: string): Promise<PostgresApi> {
    const session = sessionOf(auth, sealingKeys, `job:${job}`);
    try {
      const { workspaceHost, bearer } = await credentials.workspace(profile, session);
      return createPostgresApi(workspaceHost, bearer);
    } catch (err) {
      credentials.invalidate(profile, envName, session);
      throw toActivityFailure(err, `profile ${profile}`);
    }
  }

  const beat = (detail: Record<string, unknown>) => activityContext()?.heartbeat(detail);

  /** Waits until the branch is READY (a created branch may still be INIT when its operation is done). */
  async function untilReady(api: PostgresApi, name: string): Promise<void> {
    const started = Date.now();
    for (let delay = 200; ; delay = Math.min(delay * 2, 5_000)) {
      const b = await api.getBranch(name);
      const state = b?.status?.current_state;
      if (b && (state === undefined || state === 'READY')) return;
      if (Date.now() - started > branchOperationTimeoutMs) throw new PostgresApiError(`branch ${name} is ${state ?? 'gone'} after ${branchOperationTimeoutMs} ms`, 504, 'DEADLINE_EXCEEDED');
      beat({ branch: name, state: state ?? 'missing' });
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /** The branch's read-write endpoint; a created branch without one gets one named like the environment's. */
  async function readWriteEndpoint(api: PostgresApi, branch: string, create: boolean, endpointId: string): Promise<string> {
    const rw = (await api.listEndpoints(branch)).find(isReadWrite);
    if (rw) return rw.name.split('/').pop()!;
    if (!create) throw new PostgresApiError(`branch ${branch} has no read-write endpoint (compute): add one in the Lakebase console`, 404, 'NOT_FOUND');
    const op = await api.createEndpoint(branch, endpointId, { endpoint_type: READ_WRITE });
    await waitForOperation(api, op, { timeoutMs: branchOperationTimeoutMs, onPoll: () => beat({ branch, endpoint: endpointId }) });
    return endpointId;
  }

  /**
   * Resolves the run's branch, creating it when asked. Idempotent across retries: Create Branch
   * takes no request id, so an attempt that meets the name taken adopts the branch only if it is
   * not the first attempt (an earlier attempt's create may have succeeded with its answer lost)
   * and the branch was made from this run's parent; on the first attempt a taken name is someone
   * else's branch, and the run fails rather than use (and later delete) it.
   */
  async function prepareRunBranch(input: PrepareRunBranchInput): Promise<RunBranchInfo> {
    const problems = branchRequestProblems(config, input.job, input.environment, input.branch);
    if (problems.length) throw configFailure(problems.join('; '));
    const t = target(input);
    const api = await apiFor(t.profile, t.envName, input.auth, input.job);
    const name = `projects/${t.project}/branches/${input.branch.name}`;
    const parent = `projects/${t.project}/branches/${t.parentId}`;
    const what = `branch ${name}`;
    const createOrFind = async (): Promise<RunBranchInfo> => {
      if (!input.branch.create) {
        if (!(await api.getBranch(name)))
          throw ApplicationFailure.create({
            type: NON_RETRYABLE_FAILURES.branchNotFound,
            nonRetryable: true,
            message: `--branch ${input.branch.name}: ${name} does not exist; add --create-branch to make it from ${parent} for this run`,
          });
        const endpoint = await readWriteEndpoint(api, name, false, t.endpointId);
        return { branch: input.branch.name, project: t.project, parent, endpoint, created: false };
      }
      // Fail fast, naming the environment, when the parent is missing (a create would answer 404 too, less clearly).
      if (!(await api.getBranch(parent)))
        throw ApplicationFailure.create({
          type: NON_RETRYABLE_FAILURES.branchNotFound,
          nonRetryable: true,
          message: `--create-branch: the parent branch ${parent} (environment ${t.envName}'s branch) does not exist; fix profiles.${t.profile}.environments.${t.envName}.branch or create that branch first`,
        });
      const ttl = input.branch.ttl !== undefined ? ttlSeconds(input.branch.ttl)! : DEFAULT_TTL_SECONDS;
      const attempt = activityContext()?.info.attempt ?? 1;
      let adopted = false;
      try {
        const op = await api.createBranch(t.project, input.branch.name, { source_branch: parent, ttl: `${ttl}s` });
        await waitForOperation(api, op, { timeoutMs: branchOperationTimeoutMs, onPoll: () => beat({ branch: name, creating: true }) });
      } catch (err) {
        const taken = err instanceof PostgresApiError && (err.status === 409 || err.errorCode === 'ALREADY_EXISTS' || err.errorCode === 'RESOURCE_ALREADY_EXISTS');
        if (!taken) throw err;
        const existing = await api.getBranch(name);
        const ours = attempt > 1 && existing?.status?.source_branch === parent;
        if (!ours)
          throw ApplicationFailure.create({
            type: NON_RETRYABLE_FAILURES.branchExists,
            nonRetryable: true,
            message: `--create-branch: ${name} already exists${existing?.create_time ? ` (created ${existing.create_time})` : ''} and was not made by this run; pick another --branch name, or drop --create-branch to run against it as it is`,
          });
        adopted = true;
        activityContext()?.log.info('branch already created by an earlier attempt of this run; using it', { branch: name, attempt });
      }
      await untilReady(api, name);
      const endpoint = await readWriteEndpoint(api, name, true, t.endpointId);
      const b = await api.getBranch(name);
      return { branch: input.branch.name, project: t.project, parent, endpoint, created: true, adopted, expireTime: b?.status?.expire_time };
    };
    return runActivity({ statement: what, branchProject: t.project }, async () => {
      try {
        return await createOrFind();
      } catch (err) {
        // A 401: the cached token is stale; the retry logs in afresh.
        if (err instanceof PostgresApiError && err.status === 401) credentials.invalidate(t.profile, t.envName, sessionOf(input.auth, sealingKeys, `job:${input.job}`));
        throw err;
      }
    });
  }

  /** Deletes a branch this run created; one that is already gone counts as deleted. Never the environment's own branch. */
  async function deleteRunBranch(input: DeleteRunBranchInput): Promise<{ deleted: boolean; alreadyGone: boolean }> {
    const t = target(input);
    if (input.branch === t.parentId) throw configFailure(`refusing to delete ${input.branch}: it is environment ${t.envName}'s own branch`);
    const api = await apiFor(t.profile, t.envName, input.auth, input.job);
    const name = `projects/${t.project}/branches/${input.branch}`;
    return runActivity({ statement: `deleting branch ${name}`, branchProject: t.project }, async () => {
      try {
        const op = await api.deleteBranch(name);
        if (!op) return { deleted: true, alreadyGone: true };
        await waitForOperation(api, op, { timeoutMs: branchOperationTimeoutMs, onPoll: () => beat({ branch: name, deleting: true }) });
        return { deleted: true, alreadyGone: false };
      } catch (err) {
        if (err instanceof PostgresApiError && err.status === 401) credentials.invalidate(t.profile, t.envName, sessionOf(input.auth, sealingKeys, `job:${input.job}`));
        throw err;
      }
    });
  }

  return { prepareRunBranch, deleteRunBranch };
}
