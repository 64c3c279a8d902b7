import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { NativeConnection, Worker } from '@temporalio/worker';
import { dataConverterFor, connectWhileUnreachable, registerSearchAttributes, temporalConnectionOptions } from './temporalConnection';
import { ConfigError } from './config/load';
import { createActivities, type ActivityDeps, type JobFunction, type RowTransform } from './activities';
import { createCredentialProvider, type CredentialProvider } from './auth/credentials';
import { loadSealPrivateKeys, type SealPrivateKey } from './auth/sealed';
import type { Config } from './config/schema';
import { createPoolRegistry, type PoolRegistry } from './db/pools';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { createOpsServer, type Readiness } from './ops';
import { activeTracing } from './telemetry/tracingSwitch';
import { activityInterceptors, workerSinks } from './telemetry/workerTelemetry';
import { installRuntimeLogger } from './runtimeLogger';
import { defaultBuildId, workflowBundle } from './workflowBundle';
import type { ConfigSource } from './configSource';

// Kept importable from here (tests, the CLI's `bundle` command): the worker's entry points.
export { installRuntimeLogger } from './runtimeLogger';
export { bundleHash, cachedBundlePath, defaultBuildId, workflowBundle, writeWorkflowBundle } from './workflowBundle';

export interface DepsOptions {
  config: Config;
  logger: Logger;
  rowTransforms?: Record<string, RowTransform>;
  jobFunctions?: Record<string, JobFunction>;
  /** Defaults to a fresh provider with its own process-wide token cache. */
  credentials?: CredentialProvider;
  /** Private seal keys that open users' IdP tokens; defaults to LAKEBASE_SEAL_PRIVATE_KEYS(_FILE). */
  sealingKeys?: SealPrivateKey[];
  metrics?: Metrics;
}

/** Everything the activities need, built once per worker process. */
export function buildDeps(opts: DepsOptions): ActivityDeps & { metrics: Metrics } {
  const metrics = opts.metrics ?? createMetrics();
  const credentials = opts.credentials ?? createCredentialProvider({ config: opts.config, logger: opts.logger, metrics });
  return {
    metrics,
    config: opts.config,
    credentials,
    pools: createPoolRegistry({ config: opts.config, logger: opts.logger, credentials, metrics }),
    sealingKeys: opts.sealingKeys ?? loadSealPrivateKeys(),
    rowTransforms: opts.rowTransforms,
    jobFunctions: opts.jobFunctions,
  };
}

export interface LakebaseWorkerOptions extends DepsOptions {
  connection: NativeConnection;
  /** Overrides `config.temporal.taskQueue` (tests use one queue each). */
  taskQueue?: string;
  /** How long running activities get to finish on shutdown before they are cancelled. */
  shutdownGraceTime?: string;
  maxConcurrentActivityTaskExecutions?: number;
  /** The config file the worker loaded: its fingerprint goes into the worker's identity (see workerIdentity). */
  configSource?: ConfigSource;
}

/**
 * `<pid>@<host> <file>@<fingerprint>`: the SDK's default identity plus the config the worker runs.
 * Temporal records the identity on every task a worker takes (the UI's history shows it) and lists
 * it among the task queue's pollers, so a client can tell which config the workers run.
 */
export function workerIdentity(source: ConfigSource): string {
  return `${process.pid}@${os.hostname()} ${path.basename(source.path)}@${source.fingerprint}`;
}

export interface LakebaseWorker {
  worker: Worker;
  pools: PoolRegistry;
  credentials: CredentialProvider;
  metrics: Metrics;
  /** Ready = the worker polls Temporal and every database pool in use answers `select 1`. */
  ready(): Promise<Readiness>;
  /** Runs until shutdown (SIGINT/SIGTERM or worker.shutdown()), then closes the pools. */
  run(): Promise<void>;
  /** Runs while `fn` runs, then shuts down gracefully and closes the pools. */
  runUntil<R>(fn: () => Promise<R>): Promise<R>;
}

/** How long an activity's heartbeat (and so a cancellation waiting for its answer) may be held back. */
const HEARTBEAT_THROTTLE = '2 seconds';

export async function createLakebaseWorker(opts: LakebaseWorkerOptions): Promise<LakebaseWorker> {
  const { config } = opts;
  const deps = buildDeps(opts);
  const { pools } = deps;
  const activities = createActivities(deps);
  const deployment = config.worker.deployment;
  const worker = await Worker.create({
    connection: opts.connection,
    namespace: config.temporal.namespace,
    taskQueue: opts.taskQueue ?? config.temporal.taskQueue,
    ...(opts.configSource && { identity: workerIdentity(opts.configSource) }),
    workflowBundle: await workflowBundle(Boolean(config.temporal.encryptPayloads)),
    dataConverter: dataConverterFor(config.temporal),
    activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? config.worker.shutdownGraceTime,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? config.worker.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.worker.maxConcurrentWorkflowTasks,
    // A cancellation (cdc stop, a cancelled sync) reaches an activity only in a heartbeat's answer,
    // and the SDK sends heartbeats as seldom as 0.8 × the heartbeat timeout (24 s for the cdc
    // stream): every cdc stop took ~21 s. Two seconds bounds that wait for a heartbeat RPC per
    // running activity every two seconds at most.
    maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    defaultHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
    interceptors: { activity: activityInterceptors() },
    sinks: workerSinks(deps.metrics, activeTracing()),
    // Workflow types choose PINNED or AUTO_UPGRADE themselves (src/workflows/index.ts); the default
    // covers any other.
    ...(deployment && {
      workerDeploymentOptions: {
        version: { deploymentName: deployment.name, buildId: deployment.buildId ?? defaultBuildId() },
        useWorkerVersioning: true,
        defaultVersioningBehavior: 'AUTO_UPGRADE' as const,
      },
    }),
  });
  deps.metrics.observe({ pools: () => pools.stats(), polling: () => worker.getState() === 'RUNNING' });
  return {
    worker,
    pools,
    credentials: deps.credentials,
    metrics: deps.metrics,
    async ready() {
      const state = worker.getState();
      if (state !== 'RUNNING') return { ok: false, detail: `worker is ${state}` };
      const checks = await pools.ping(2_000);
      const bad = checks.filter((c) => !c.ok);
      return bad.length
        ? { ok: false, detail: `database not answering: ${bad.map((c) => `${c.pool} (${c.error})`).join(', ')}` }
        : { ok: true, detail: `worker RUNNING; ${checks.length} database pool(s) answer` };
    },
    async run() {
      try {
        await worker.run();
      } finally {
        await pools.end();
      }
    },
    async runUntil(fn) {
      try {
        return await worker.runUntil(fn);
      } finally {
        await pools.end();
      }
    },
  };
}

/** `lakebase-worker worker`: connect to Temporal from config and run until a signal. */
export async function runWorker(
  config: Config,
  logger: Logger,
  extensions: { rowTransforms?: Record<string, RowTransform>; jobFunctions?: Record<string, JobFunction> } = {},
  /** The file the config came from: its path and fingerprint go into the startup log. */
  source?: ConfigSource,
): Promise<void> {
  if (Object.keys(config.profiles).length === 0) {
    throw new ConfigError(['profiles: none configured, so the worker has no database to work on; add one (see examples/lakebase.yaml)']);
  }
  // The ops server binds before anything polls: a port taken (a second worker on this host) is an
  // error at start, not a crash after this worker has taken tasks.
  const metrics = createMetrics();
  let lw: LakebaseWorker | undefined;
  const ops = config.worker.opsPort ? await listenOps(config.worker.opsPort, metrics, () => lw?.ready() ?? Promise.resolve({ ok: false, detail: 'starting' })) : undefined;
  if (ops) logger.info({ port: config.worker.opsPort }, 'metrics on /metrics, health on /healthz and /readyz');
  installRuntimeLogger(logger, config.worker.sdkMetricsAddress);
  let connection: NativeConnection;
  try {
    const options = temporalConnectionOptions(config.temporal);
    connection = await connectWhileUnreachable(config.temporal.address, () => NativeConnection.connect(options), {
      waitMs: config.worker.temporalWaitSeconds * 1000,
      onWaiting: (reason, leftMs) =>
        logger.warn({ address: config.temporal.address, reason, retryingForSeconds: Math.ceil(leftMs / 1000) }, 'Temporal does not answer yet; retrying (worker.temporalWaitSeconds)'),
    });
  } catch (err) {
    ops?.close();
    throw err;
  }
  try {
    await registerSearchAttributes(connection.operatorService, config.temporal.namespace).then(
      (added) => added.length && logger.info({ added }, 'registered search attributes on the namespace'),
      (err: Error) =>
        logger.warn(
          { namespace: config.temporal.namespace, reason: err.message },
          'cannot register search attributes on this namespace (syncs and jobs start without them; register them with `lakebase-worker setup` or in Temporal Cloud)',
        ),
    );
    const w = await createLakebaseWorker({ config, logger, connection, metrics, ...extensions, ...(source && { configSource: source }) });
    lw = w;
    const version = w.worker.options.workerDeploymentOptions?.version;
    logger.info(
      {
        taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace, address: config.temporal.address,
        ...(source && { config: source.path, configFingerprint: source.fingerprint, identity: w.worker.options.identity }),
        pipelines: Object.keys(config.pipelines), jobs: Object.keys(config.jobs),
        ...(version && { deployment: version.deploymentName, buildId: version.buildId }),
      },
      'worker started',
    );
    try {
      await w.run(); // the SDK shuts down gracefully on SIGINT/SIGTERM
    } finally {
      ops?.close();
    }
    logger.info('worker stopped');
  } finally {
    ops?.close();
    await connection.close();
  }
}

/** Starts the metrics/health server and resolves once it listens; a taken port rejects with what to do. */
function listenOps(port: number, metrics: Metrics, ready: () => Promise<Readiness>): Promise<Server> {
  const server = createOpsServer({ metrics, ready });
  return new Promise((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new ConfigError([`worker.opsPort: port ${port} is already in use (another worker on this host?); set worker.opsPort to a free port, or to 0 to switch the metrics and health server off`])
          : new Error(`worker.opsPort: cannot listen on port ${port}: ${err.message}`, { cause: err }),
      ),
    );
    server.listen(port, () => resolve(server));
  });
}
