import { createSyncActivities, type SyncDeps } from './sync';

export type ActivityDeps = SyncDeps;

/** All activities, built from the worker's dependencies (config, pools, registered transforms). */
export function createActivities(deps: ActivityDeps) {
  return { ...createSyncActivities(deps) };
}

export type Activities = ReturnType<typeof createActivities>;
export type { RowTransform } from './sync';
