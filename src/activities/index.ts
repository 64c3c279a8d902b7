import { createSyncActivities, type SyncDeps } from './sync';
import { createTokenActivities } from './token';

export type ActivityDeps = SyncDeps;

/** All activities, built from the worker's dependencies (config, pools, credentials, transforms). */
export function createActivities(deps: ActivityDeps) {
  return { ...createTokenActivities(deps), ...createSyncActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { RowTransform } from './sync';
