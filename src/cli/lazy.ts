// Modules a command needs only once it runs. Imported with the CLI they would cost every call —
// `--help` included — the Temporal SDK's start-up (0.3–0.5 s each for client and worker) and more.
/* eslint-disable @typescript-eslint/no-require-imports */
export const clientApi = () => require('../client') as typeof import('../client');
export const workerApi = () => require('../worker') as typeof import('../worker');
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
