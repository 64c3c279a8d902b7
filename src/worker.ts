import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NativeConnection, Runtime, Worker, bundleWorkflowCode, type WorkflowBundlePath } from '@temporalio/worker';
import { cacheDir } from './provision/temporal';
import { dataConverterFor, explainTemporalConnectError, FAILURE_CONVERTER_PATH, registerSearchAttributes, temporalConnectionOptions } from './temporalConnection';
import type { Server } from 'node:http';
import { ConfigError } from './config/load';
import type { LogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { createActivities, type ActivityDeps, type JobFunction, type RowTransform } from './activities';
import { createCredentialProvider, type CredentialProvider } from './auth/credentials';
import { loadSealingKeys, type SealingKey } from './auth/sealed';
import type { Config } from './config/schema';
import { createPoolRegistry, type PoolRegistry } from './db/pools';
import type { Logger } from './logger';
import { createMetrics, type Metrics } from './metrics';
import { createOpsServer, type Readiness } from './ops';
import { activeTracing } from './telemetry/tracingSwitch';
import { activityInterceptors, WORKFLOW_INTERCEPTOR_MODULES, workerSinks } from './telemetry/workerTelemetry';

/** Routes the SDK's and Core's logs into our pino logger (once per process, before any connection). */
export function installRuntimeLogger(logger: Logger, sdkMetricsAddress?: string): void {
  const child = logger.child({ component: 'temporal' });
  const level = (l: LogLevel) => (l === 'TRACE' ? 'trace' : l === 'DEBUG' ? 'debug' : l === 'WARN' ? 'warn' : l === 'ERROR' ? 'error' : 'info');
  const temporalLogger: TemporalLogger = {
    log: (l: LogLevel, message: string, meta?: LogMetadata) => child[level(l)](meta ?? {}, message),
    trace: (m, meta) => child.trace(meta ?? {}, m),
    debug: (m, meta) => child.debug(meta ?? {}, m),
    info: (m, meta) => child.info(meta ?? {}, m),
    warn: (m, meta) => child.warn(meta ?? {}, m),
    error: (m, meta) => child.error(meta ?? {}, m),
  };
  Runtime.install({
    logger: temporalLogger,
    telemetryOptions: {
      logging: { forward: {}, filter: 'WARN' },
      ...(sdkMetricsAddress && { metrics: { prometheus: { bindAddress: sdkMetricsAddress } } }),
    },
  });
}

const WORKFLOWS_DIR = path.join(__dirname, 'workflows');

/**
 * Identifies the workflow code: its sources, the types they import, the interceptors bundled with
 * them and the SDK version. Paths enter relative to this file, so two checkouts or images of the
 * same code share the hash (and the default Worker Versioning build id).
 */
export function bundleHash(): string {
  const h = createHash('sha256');
  // .ts from the sources, .js from dist/ (the compiled CLI).
  const files = [
    ...readdirSync(WORKFLOWS_DIR).map((f) => path.join(WORKFLOWS_DIR, f)),
    path.join(__dirname, 'activities', `types${path.extname(__filename)}`),
    ...WORKFLOW_INTERCEPTOR_MODULES,
  ].sort();
  for (const f of files) h.update(path.relative(__dirname, f)).update(readFileSync(f));
  for (const pkg of ['@temporalio/workflow', '@temporalio/interceptors-opentelemetry']) h.update((require(`${pkg}/package.json`) as { version: string }).version);
  return h.digest('hex').slice(0, 16);
}

/** Worker Versioning's default build id: the package version plus the workflow code's hash. */
export function defaultBuildId(): string {
  return `${(require('../package.json') as { version: string }).version}-${bundleHash()}`;
}

/**
 * Bundles the workflow code into `file` (webpack). The CLI's `bundle` command runs this in its own
 * process. `encodeFailures` bakes in the failure converter that encrypts messages and stacks (for
 * `temporal.encryptPayloads`); workflow-side failures are encoded inside the bundle.
 */
export async function writeWorkflowBundle(file: string, encodeFailures = false): Promise<void> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('./workflows'),
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    logger: quietBundlerLogger,
    ...(encodeFailures && { failureConverterPath: FAILURE_CONVERTER_PATH }),
  });
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(`${file}.${process.pid}.tmp`, code);
  renameSync(`${file}.${process.pid}.tmp`, file);
}

/** Where this code version's bundle lives in the cache (one file per failure-converter variant). */
export function cachedBundlePath(encodeFailures = false): string {
  const variant = encodeFailures ? `-encoded-failures-${createHash('sha256').update(readFileSync(FAILURE_CONVERTER_PATH)).digest('hex').slice(0, 8)}` : '';
  return path.join(cacheDir(), 'workflow-bundles', `workflows-${bundleHash()}${variant}.js`);
}

const bundles = new Map<boolean, Promise<WorkflowBundlePath>>();
/**
 * Workflow code, bundled once per code version into the cache directory. Bundling runs in a child
 * process: webpack's memory (~100 MB) then never enters the long-lived worker.
 */
export function workflowBundle(encodeFailures = false): Promise<WorkflowBundlePath> {
  let bundle = bundles.get(encodeFailures);
  if (!bundle) {
    bundle = (async () => {
      const file = cachedBundlePath(encodeFailures);
      if (!existsSync(file)) {
        const cli = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
        const built = await new Promise<boolean>((resolve) => {
          // The child bundles the same code this process runs (the cache key is computed from it): the
          // sources when we run from them, dist/ when we run compiled, whatever changed since.
          const env = { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: path.extname(__filename) === '.ts' ? '1' : '0' };
          execFile(process.execPath, [cli, 'bundle', '--out', file, ...(encodeFailures ? ['--encode-failures'] : [])], { env }, (err) => resolve(!err));
        });
        if (!built) await writeWorkflowBundle(file, encodeFailures); // e.g. no permission to spawn: do it here
      }
      return { codePath: file };
    })();
    bundles.set(encodeFailures, bundle);
  }
  return bundle;
}
const quietBundlerLogger: TemporalLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (m, meta) => console.warn(m, meta ?? ''),
  error: (m, meta) => console.error(m, meta ?? ''),
};

export interface DepsOptions {
  config: Config;
  logger: Logger;
  rowTransforms?: Record<string, RowTransform>;
  jobFunctions?: Record<string, JobFunction>;
  /** Defaults to a fresh provider with its own process-wide token cache. */
  credentials?: CredentialProvider;
  /** Defaults to LAKEBASE_SECRET_KEYS / LAKEBASE_SECRET_KEYS_FILE. */
  sealingKeys?: SealingKey[];
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
    sealingKeys: opts.sealingKeys ?? loadSealingKeys(),
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
    workflowBundle: await workflowBundle(Boolean(config.temporal.encryptPayloads)),
    dataConverter: dataConverterFor(config.temporal),
    activities,
    shutdownGraceTime: opts.shutdownGraceTime ?? config.worker.shutdownGraceTime,
    maxConcurrentActivityTaskExecutions: opts.maxConcurrentActivityTaskExecutions ?? config.worker.maxConcurrentActivities,
    maxConcurrentWorkflowTaskExecutions: config.worker.maxConcurrentWorkflowTasks,
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
    connection = await NativeConnection.connect(temporalConnectionOptions(config.temporal)).catch(async (err: unknown) => {
      throw await explainTemporalConnectError(config.temporal.address, err);
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
    const w = await createLakebaseWorker({ config, logger, connection, metrics, ...extensions });
    lw = w;
    logger.info({ taskQueue: config.temporal.taskQueue, namespace: config.temporal.namespace, address: config.temporal.address }, 'worker started');
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
