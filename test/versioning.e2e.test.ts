// Worker Versioning on the dev server: two builds of the worker (A, then B) in one worker
// deployment. A job (PINNED) and a sync (AUTO_UPGRADE) start on A and wait on a table lock; B
// becomes current through the README's recipe (`temporal worker deployment set-current-version`);
// once the lock is gone the job finishes on A, the sync moves to B, and a new job runs on B.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { findTemporalCli, temporalExecutable } from '../src/provision/temporal';
import { defaultBuildId, installRuntimeLogger } from '../src/worker';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../src/workflows/searchAttributes';
import { VERSIONING_BEHAVIOR } from '../src/workflows/versioning';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, uniqueQueue } from './helpers/temporal';

const run = promisify(execFile);
// The dev server keeps Worker Deployments behind these flags (README, "Run it as a fleet").
const VERSIONING_FLAGS = ['--dynamic-config-value', 'system.enableDeploymentVersions=true', '--dynamic-config-value', 'frontend.workerVersioningWorkflowAPIs=true'];

let env: TestWorkflowEnvironment;
let db: TestDatabase;
let cli: string | undefined;
before(async () => {
  cli = await findTemporalCli();
  installRuntimeLogger(createLogger({ level: 'error' }));
  env = await TestWorkflowEnvironment.createLocal({
    server: { executable: await temporalExecutable(), extraArgs: VERSIONING_FLAGS, searchAttributes: LAKEBASE_SEARCH_ATTRIBUTES, log: { format: 'pretty', level: 'error' } },
  });
  db = await createTestDatabase('versioning');
  await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 1000) g');
});
after(async () => {
  await db?.close();
  await env?.teardown();
});

/** The build id that completed each workflow task of a run, in order. */
async function buildsOf(handle: WorkflowHandle): Promise<string[]> {
  const { events } = await handle.fetchHistory();
  return (events ?? []).flatMap((e) => (e.workflowTaskCompletedEventAttributes ? [e.workflowTaskCompletedEventAttributes.deploymentVersion?.buildId ?? ''] : []));
}

test('the default build id is the package version plus the workflow bundle hash', () => {
  assert.match(defaultBuildId(), /^\d+\.\d+\.\d+-[0-9a-f]{16}$/);
  assert.equal(defaultBuildId(), defaultBuildId(), 'same code, same id');
});

test('a pinned job stays on build A while new runs go to B once B is current; an auto-upgrading sync moves to B', async (t) => {
  if (!cli) return t.skip('no Temporal CLI to run `temporal worker deployment set-current-version` with');
  const taskQueue = uniqueQueue('versioning');
  const deploymentName = `lakebase-e2e-${Math.floor(Math.random() * 1e6)}`;
  const raw = (buildId: string) => ({
    temporal: { taskQueue },
    profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
    pipelines: { orders: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, key: ['id'] } },
    jobs: { count: { profile: 'local', environment: 'test', steps: [{ name: 'count', sql: 'SELECT count(*) FROM src' }] } },
    worker: { opsPort: 0, deployment: { name: deploymentName, buildId } },
  });
  const logger = createLogger({ level: 'error' });
  const setCurrent = async (buildId: string) => {
    // The version exists once its worker has polled: retry until the server knows it.
    for (let i = 0; ; i++) {
      try {
        await run(cli!, ['worker', 'deployment', 'set-current-version', '--address', env.address, '--namespace', 'default', '--deployment-name', deploymentName, '--build-id', buildId, '--yes']);
        return;
      } catch (err) {
        if (i > 100) throw err;
        await sleep(200);
      }
    }
  };
  const waiters = async () =>
    (await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, [db.name])).rows[0].n as number;

  const a = await runWorkerInBackground({ config: parseConfig(raw('A'), {}), logger, connection: env.nativeConnection, taskQueue });
  let b: Awaited<ReturnType<typeof runWorkerInBackground>> | undefined;
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  try {
    await setCurrent('A');
    await locker.query('BEGIN; LOCK TABLE src IN ACCESS EXCLUSIVE MODE');
    const job = await env.client.workflow.start('operationalJob', { taskQueue, workflowId: `job:count:${Date.now()}`, args: [{ job: 'count', params: {} }] });
    const sync = await env.client.workflow.start('dataSync', { taskQueue, workflowId: `sync:orders:${Date.now()}`, args: [{ pipeline: 'orders' }] });
    for (let i = 0; (await waiters()) < 2; i++) {
      assert.ok(i < 600, 'the job and the sync both wait on the lock, on build A');
      await sleep(100);
    }

    b = await runWorkerInBackground({ config: parseConfig(raw('B'), {}), logger, connection: env.nativeConnection, taskQueue });
    await setCurrent('B');
    await locker.query('COMMIT');
    await Promise.all([job.result(), sync.result()]);

    const jobBuilds = await buildsOf(job);
    assert.ok(jobBuilds.length >= 2 && jobBuilds.every((id) => id === 'A'), `the pinned job ran every task on A: ${jobBuilds.join(',')}`);
    const syncBuilds = await buildsOf(sync);
    assert.equal(syncBuilds[0], 'A', 'the sync started on A');
    assert.equal(syncBuilds.at(-1), 'B', `the auto-upgrading sync moved to B: ${syncBuilds.join(',')}`);
    const described = await job.describe();
    assert.equal(described.raw.workflowExecutionInfo?.versioningInfo?.behavior, 1 /* PINNED */);
    assert.equal(VERSIONING_BEHAVIOR.operationalJob, 'PINNED');

    const next = await env.client.workflow.start('operationalJob', { taskQueue, workflowId: `job:count:${Date.now()}`, args: [{ job: 'count', params: {} }] });
    await next.result();
    const nextBuilds = await buildsOf(next);
    assert.ok(nextBuilds.every((id) => id === 'B'), `a new run goes to the current build B: ${nextBuilds.join(',')}`);
  } finally {
    await locker.end().catch(() => undefined);
    await b?.stop();
    await a.stop();
  }
});
