// The fixed seeds `npm test` runs (batch.test.ts, cdc.test.ts). Together they cover every mode,
// event kind and fault at least once (coverage.test.ts checks it). A seed that names a finding is
// a `todo` test until FINDINGS[finding].fixed is flipped (findings.ts). Within about 3 minutes on
// 2 cores (the two files run side by side); more seeds run as shrunk regressions (regressions/) and in
// long runs. Seeds found failing and kept elsewhere: 48 (cdc-toast-key-change), 13
// (cdc-stop-after-worker-kill): see regressions/.
import type { FixedSeed } from './suite';

export const BATCH_SEEDS: FixedSeed[] = [
  { seed: 1 }, // append, two re-runs (history kept)
  { seed: 9 }, // upsert with cursor, group run
  { seed: 32 }, // upsert, soft deletes
  { seed: 35 }, // full-refresh of a partitioned table
  { seed: 1468 }, // compare-then-copy re-sync, text key COLLATE "C" from a C database into a user's table on ICU en-US (i28, fixed)
  { seed: 3 }, // upsert merge under a Temporal restart and pg_terminate_backend
  { seed: 51 }, // upsert with cursor, worker SIGKILL mid-run
  { seed: 7, finding: 'batch-enum-label' }, // full-refresh after a new enum label
];

export const CDC_SEEDS: FixedSeed[] = [
  { seed: 118 }, // stop, changes while stopped, start
  { seed: 6 }, // stream under a restart of the source server
  { seed: 27 }, // stream under a Temporal dev-server restart
  { seed: 202, finding: 'cdc-join-while-streaming' }, // a second pipeline joins the running stream (fixed)
];
