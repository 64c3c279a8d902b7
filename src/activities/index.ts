import { createBranchActivities } from './branches';
import { createCdcActivities } from './cdc';
import { createJobActivities, type JobFunction } from './jobs';
import { createSyncActivities, type SyncDeps } from './sync';
import { createTestConnectionActivities } from './testConnection';
import { createTokenActivities } from './token';

export type ActivityDeps = SyncDeps & { jobFunctions?: Record<string, JobFunction> };

/** All activities, built from the worker's dependencies (config, pools, credentials, transforms). */
export function createActivities(deps: ActivityDeps) {
  return { ...createTokenActivities(deps), ...createSyncActivities(deps), ...createJobActivities(deps), ...createBranchActivities(deps), ...createCdcActivities(deps), ...createTestConnectionActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { RowTransform } from './sync';
export type { JobFunction } from './jobs';
