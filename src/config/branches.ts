import { lookupEnvironment, lookupJob } from './lookup';
import type { Config, EnvironmentConfig } from './schema';

/** What `job run --branch` asks for (carried in the workflow input). */
export interface RunBranchRequest {
  /** Branch id within the environment's project. */
  name: string;
  /** Create it from the environment's branch (its parent) for this run; fails if the name is taken. */
  create?: boolean;
  /** Delete the created branch when the run ends, whether it succeeded, failed or was cancelled. */
  deleteAfter?: boolean;
  /** Expiry sent with the created branch, e.g. "2h" (a safety net if the delete never happens). */
  ttl?: string;
}

/** Branch ids as Create Branch documents them: 1–63 characters, a lowercase letter first, then lowercase letters, digits and -. */
export const BRANCH_ID = /^[a-z][a-z0-9-]{0,62}$/;

/**
 * Problems with a branch request, each naming the option at fault (the CLI shows them before
 * connecting; the worker checks the same).
 */
export function branchRequestProblems(config: Config, job: string, environment: string | undefined, b: { name?: string; create?: boolean; deleteAfter?: boolean; ttl?: string }): string[] {
  const problems: string[] = [];
  if (!b.name) {
    if (b.create) problems.push('--create-branch: name the branch to create with --branch NAME');
    if (b.deleteAfter) problems.push('--delete-branch-after: only a branch created for the run is deleted; add --branch NAME --create-branch');
    if (b.ttl) problems.push('--branch-ttl: only a branch created for the run gets an expiry; add --branch NAME --create-branch');
    return problems;
  }
  if (!BRANCH_ID.test(b.name)) problems.push(`--branch: "${b.name}" is not a branch id: 1–63 characters, a lowercase letter first, then lowercase letters, digits and -`);
  if (b.deleteAfter && !b.create) problems.push('--delete-branch-after: only a branch created for the run is deleted (an existing branch is never removed); add --create-branch');
  if (b.ttl && !b.create) problems.push('--branch-ttl: only a branch created for the run gets an expiry; add --create-branch');
  if (b.ttl !== undefined && ttlSeconds(b.ttl) === undefined) problems.push(`--branch-ttl: expected a duration like 2h, 90m or 1d, got "${b.ttl}"`);
  let env: EnvironmentConfig | undefined;
  let envName = environment;
  try {
    const j = lookupJob(config, job);
    envName ??= j.environment;
    env = lookupEnvironment(config, j.profile, envName);
  } catch {
    return problems; // the job or environment errors are reported by their own checks
  }
  if (!env.project || !env.branch || !env.endpoint)
    problems.push(`--branch: environment "${envName}" names a host, not a Lakebase Autoscaling project/branch/endpoint; branches exist only there`);
  else if (b.create && b.name === env.branch) problems.push(`--branch: "${b.name}" is environment ${envName}'s own branch (the parent); name a new branch to create from it`);
  return problems;
}

/** "2h", "90m", "1d", "3600s" or "30 minutes" → seconds. */
export function ttlSeconds(text: string): number | undefined {
  const m = /^(\d+)\s*(s|m|h|d|seconds?|minutes?|hours?|days?)$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = m[2]![0] as 's' | 'm' | 'h' | 'd';
  const secs = n * { s: 1, m: 60, h: 3600, d: 86_400 }[unit];
  return secs > 0 ? secs : undefined;
}

/** The environment name a branch run connects as: its own pools, host lookup and credential. */
export function branchEnvironmentName(environment: string, branch: string): string {
  return `${environment}@${branch}`;
}

/**
 * Registers `<environment>@<branch>`: the environment with its branch and endpoint replaced, so
 * the pools, the host lookup (Get Endpoint) and the database credential all address the branch's
 * own compute. Pools and the credential cache are keyed by environment name, so nothing of the
 * parent's is reused. Idempotent; every worker that runs a step of the job registers it itself.
 */
export function ensureBranchEnvironment(config: Config, profile: string, environment: string, branch: { name: string; endpoint: string }): string {
  const name = branchEnvironmentName(environment, branch.name);
  const prof = config.profiles[profile];
  const base = lookupEnvironment(config, profile, environment);
  if (!prof!.environments[name]) {
    const endpoint = `projects/${base.project}/branches/${branch.name}/endpoints/${branch.endpoint}`;
    prof!.environments[name] = {
      ...base,
      branch: branch.name,
      endpoint: branch.endpoint,
      // An explicit autoscaling credential named the parent's endpoint; a branch run asks for its own.
      ...(base.credential?.type === 'autoscaling' && { credential: { ...base.credential, endpoint } }),
    };
  }
  return name;
}
