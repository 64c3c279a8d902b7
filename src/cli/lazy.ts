// Modules a command needs only once it runs. Imported with the CLI they would cost every call —
// `--help` included — the Temporal SDK's start-up (0.3–0.5 s each for client and worker) and more.
/* eslint-disable @typescript-eslint/no-require-imports */
export const connectionClient = () => require('../client/connection') as typeof import('../client/connection');
export const syncClient = () => require('../client/sync') as typeof import('../client/sync');
export const verifyClient = () => require('../client/verify') as typeof import('../client/verify');
export const jobsClient = () => require('../client/jobs') as typeof import('../client/jobs');
export const runsClient = () => require('../client/runs') as typeof import('../client/runs');
export const schedulesClient = () => require('../client/schedules') as typeof import('../client/schedules');
export const workerApi = () => require('../worker') as typeof import('../worker');
export const bundleApi = () => require('../workflowBundle') as typeof import('../workflowBundle');
export const temporalClient = () => require('@temporalio/client') as typeof import('@temporalio/client');
export const temporalConnection = () => require('../temporalConnection') as typeof import('../temporalConnection');
export const demo = () => require('../demo') as typeof import('../demo');
export const emulator = () => require('../emulator') as typeof import('../emulator');
export const diagnose = () => require('../db/diagnose') as typeof import('../db/diagnose');
export const credentials = () => require('../auth/credentials') as typeof import('../auth/credentials');
export const codec = () => ({
  ...(require('../codec/server') as typeof import('../codec/server')),
  ...(require('../codec/encryption') as typeof import('../codec/encryption')),
  ...(require('../auth/sealed') as typeof import('../auth/sealed')),
});
