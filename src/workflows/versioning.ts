// Worker Versioning: how each workflow type behaves when the worker runs as a build of a worker
// deployment (worker.deployment). Short runs stay on the build that started them, so they never
// meet new code halfway; long syncs, groups and cdc streams move to the current build at their next workflow
// task, which is safe because workflow changes go behind patched() and the replay suite checks
// recorded histories against the new code. Without worker.deployment nothing is declared: the
// server refuses a versioning behaviour from a worker that is not versioned.
import type { VersioningBehavior } from '@temporalio/common';
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';
import { cdcSnapshot } from './cdcSnapshot';
import { cdcStream } from './cdcStream';
import { dataSync } from './dataSync';
import { operationalJob } from './operationalJob';
import { syncGroup } from './syncGroup';
import { testConnection } from './testConnection';
import { verifySync } from './verify';

export const VERSIONING_BEHAVIOR = {
  operationalJob: 'PINNED',
  verifySync: 'PINNED',
  testConnection: 'PINNED',
  dataSync: 'AUTO_UPGRADE',
  syncGroup: 'AUTO_UPGRADE',
  cdcStream: 'AUTO_UPGRADE',
  cdcSnapshot: 'AUTO_UPGRADE',
} as const satisfies Record<string, VersioningBehavior>;

/** Read as each run starts: a deployment name is present only when the worker polls as a deployment version (an
 * unversioned worker still reports its build id). */
const behaviour = (b: VersioningBehavior) => () => (workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: b } : {});

setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.operationalJob), operationalJob);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.verifySync), verifySync);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.testConnection), testConnection);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.dataSync), dataSync);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.syncGroup), syncGroup);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.cdcStream), cdcStream);
setWorkflowOptions(behaviour(VERSIONING_BEHAVIOR.cdcSnapshot), cdcSnapshot);
