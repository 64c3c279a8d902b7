import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The worker's own Prometheus metrics (the Temporal SDK's runtime metrics have their own endpoint). */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lakebase_worker_' });
  return {
    registry,
    rowsCopied: new Counter({ name: 'lakebase_rows_read_total', help: 'Rows read from sources', labelNames: ['pipeline'], registers: [registry] }),
    rowsWritten: new Counter({ name: 'lakebase_rows_written_total', help: 'Rows inserted, changed or deleted in targets', labelNames: ['pipeline'], registers: [registry] }),
    chunkSeconds: new Histogram({
      name: 'lakebase_chunk_duration_seconds',
      help: 'Duration of sync chunks (COPY + merge + commit)',
      labelNames: ['pipeline'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
      registers: [registry],
    }),
    verifyMismatches: new Counter({
      name: 'lakebase_verify_mismatches_total',
      help: 'Rows (or keyless ranges) found different between source and target by verify',
      labelNames: ['pipeline'],
      registers: [registry],
    }),
    tokenRequests: new Counter({ name: 'lakebase_token_requests_total', help: 'Token requests to Databricks (cache misses and refreshes)', labelNames: ['profile'], registers: [registry] }),
    authFailures: new Counter({ name: 'lakebase_auth_failures_total', help: 'Failed token requests by failure type', labelNames: ['type'], registers: [registry] }),
    cdcRowsApplied: new Counter({ name: 'lakebase_cdc_rows_applied_total', help: 'Target rows written by cdc streams (after collapsing repeated changes to a key)', labelNames: ['slot'], registers: [registry] }),
    cdcLagBytes: new Gauge({ name: 'lakebase_cdc_lag_bytes', help: 'Source WAL not yet applied to the targets of a cdc slot', labelNames: ['slot'], registers: [registry] }),
    cdcLagSeconds: new Gauge({ name: 'lakebase_cdc_lag_seconds', help: 'Age of the source commit last applied while changes are outstanding (0 when caught up)', labelNames: ['slot'], registers: [registry] }),
    cdcRetainedWalBytes: new Gauge({ name: 'lakebase_cdc_retained_wal_bytes', help: 'WAL the source keeps for a cdc replication slot (pg_replication_slots restart_lsn)', labelNames: ['slot'], registers: [registry] }),
    jobSteps: new Counter({ name: 'lakebase_job_steps_total', help: 'Job steps run, by outcome', labelNames: ['job', 'outcome'], registers: [registry] }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
