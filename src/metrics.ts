import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** What the gauges read at scrape time; the worker fills it in once its parts exist. */
export interface MetricSources {
  /** Connection counts per (profile, environment) (src/db/pools.ts stats()). */
  pools?: () => { profile: string; environment: string; open: number; idle: number; waiting: number; max: number }[];
  /** True while the worker polls its task queue. */
  polling?: () => boolean;
}

/**
 * The worker's own Prometheus metrics (the Temporal SDK's runtime metrics have their own endpoint).
 * deploy/grafana and deploy/prometheus/alerts.yaml name these; test/observability.test.ts checks
 * every name they use is exported here.
 */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'lakebase_worker_' });
  const sources: MetricSources = {};
  return {
    registry,
    /** Wires the scrape-time gauges to the worker's pools and state. */
    observe(s: MetricSources) {
      Object.assign(sources, s);
    },
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
    loginRefusals: new Counter({
      name: 'lakebase_login_refusals_total',
      help: 'Database logins refused (28P01/28000: token expired or revoked, role missing)',
      labelNames: ['profile', 'environment'],
      registers: [registry],
    }),
    cdcRowsApplied: new Counter({ name: 'lakebase_cdc_rows_applied_total', help: 'Target rows written by cdc streams (after collapsing repeated changes to a key)', labelNames: ['slot'], registers: [registry] }),
    cdcLagBytes: new Gauge({ name: 'lakebase_cdc_lag_bytes', help: 'Source WAL not yet applied to the targets of a cdc slot', labelNames: ['slot'], registers: [registry] }),
    cdcLagSeconds: new Gauge({ name: 'lakebase_cdc_lag_seconds', help: 'Age of the source commit last applied while changes are outstanding (0 when caught up)', labelNames: ['slot'], registers: [registry] }),
    cdcRetainedWalBytes: new Gauge({ name: 'lakebase_cdc_retained_wal_bytes', help: 'WAL the source keeps for a cdc replication slot (pg_replication_slots restart_lsn)', labelNames: ['slot'], registers: [registry] }),
    cdcSlotWalStatus: new Gauge({ name: 'lakebase_cdc_slot_wal_status', help: "1 for the cdc slot's current pg_replication_slots.wal_status (reserved, extended, unreserved: about to be invalidated, lost: invalidated), 0 for the others", labelNames: ['slot', 'status'], registers: [registry] }),
    cdcPipelineParked: new Gauge({ name: 'lakebase_cdc_pipeline_parked', help: '1 while a cdc pipeline is parked (a change of it could not be applied; its slot streams on for the others), else 0', labelNames: ['pipeline'], registers: [registry] }),
    cdcSlotSafeWalBytes: new Gauge({ name: 'lakebase_cdc_slot_safe_wal_bytes', help: 'WAL the source may still write before max_slot_wal_keep_size invalidates the cdc slot (pg_replication_slots.safe_wal_size; absent without a limit)', labelNames: ['slot'], registers: [registry] }),
    jobSteps: new Counter({ name: 'lakebase_job_steps_total', help: 'Job steps run, by outcome', labelNames: ['job', 'outcome'], registers: [registry] }),
    workflowOutcomes: new Counter({
      name: 'lakebase_workflow_outcomes_total',
      help: 'Syncs, jobs, verify runs and groups that ended on this worker, by outcome and failure type',
      labelNames: ['workflow_type', 'name', 'outcome', 'failure_type'],
      registers: [registry],
    }),
    poolConnections: new Gauge({
      name: 'lakebase_pool_connections',
      help: 'Database connections of this worker per environment: open, idle, waiting callers',
      labelNames: ['profile', 'environment', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of sources.pools?.() ?? []) {
          this.set({ profile: p.profile, environment: p.environment, state: 'open' }, p.open);
          this.set({ profile: p.profile, environment: p.environment, state: 'idle' }, p.idle);
          this.set({ profile: p.profile, environment: p.environment, state: 'waiting' }, p.waiting);
        }
      },
    }),
    poolMaxConnections: new Gauge({
      name: 'lakebase_pool_max_connections',
      help: 'The connection budget per environment on this worker (maxConnections)',
      labelNames: ['profile', 'environment'],
      registers: [registry],
      collect() {
        this.reset();
        for (const p of sources.pools?.() ?? []) this.set({ profile: p.profile, environment: p.environment }, p.max);
      },
    }),
    workerPolling: new Gauge({
      name: 'lakebase_worker_polling',
      help: '1 while this worker polls its task queue, 0 while starting, draining or stopped',
      registers: [registry],
      collect() {
        this.set(sources.polling?.() ? 1 : 0);
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
