// The fixed seeds `npm test` runs (batch.test.ts, cdc.test.ts). Together they cover every mode,
// event kind and fault at least once (coverage.test.ts checks it). A seed that names a finding is
// a `todo` test until FINDINGS[finding].fixed is flipped (findings.ts).
import type { FixedSeed } from './suite';

export const BATCH_SEEDS: FixedSeed[] = [
  { seed: 1 }, // append, two re-runs (history kept)
  { seed: 9 }, // upsert with cursor, group run
  { seed: 52 }, // upsert merging every row (resync: merge)
  { seed: 32 }, // upsert, soft deletes
  { seed: 35 }, // full-refresh of a partitioned table
  { seed: 1468 }, // compare-then-copy re-sync, text key COLLATE "C" from a C database into a user's table on ICU en-US (i28, fixed)
  { seed: 3 }, // upsert merge under a Temporal restart and pg_terminate_backend
  { seed: 22 }, // append under pg_terminate_backend
  { seed: 51 }, // upsert with cursor, worker SIGKILL mid-run
  { seed: 18 }, // soft deletes under a Temporal restart and pg_terminate_backend, group runs
  { seed: 7, finding: 'batch-enum-label' }, // full-refresh after a new enum label
];

export const CDC_SEEDS: FixedSeed[] = [
  { seed: 118 }, // stop, changes while stopped, start
  { seed: 6 }, // stream under a restart of the source server
  { seed: 27 }, // stream under a Temporal dev-server restart
  { seed: 216 }, // stop then start under pg_terminate_backend
  { seed: 48, finding: 'cdc-toast-key-change' }, // key changes leaving a TOASTed column unchanged
  { seed: 202, finding: 'cdc-join-while-streaming' }, // a second pipeline joins the running stream
  { seed: 13, finding: 'cdc-stop-after-worker-kill' }, // worker SIGKILL, then cdc stop
];
