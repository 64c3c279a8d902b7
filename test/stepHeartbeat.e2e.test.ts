// A worker killed while it runs a step (here planSync, blocked on a lock of the target it creates
// the refresh table LIKE; finishSync's swap is the same case):
// the step heartbeats through the adapter (activities/adapter.ts), so it times out on its
// heartbeat and runs again on another worker, instead of holding the run for its 10-minute
// start-to-close. Found by the generative suite: a re-sync stalled after a worker SIGKILL in finishSync.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { CLI } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

let env: TestWorkflowEnvironment;
let db: TestDatabase;
before(async () => {
  env = await startTemporal();
  db = await createTestDatabase('stepbeat');
  await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 2000) g');
});
after(async () => {
  await db?.close();
  await env?.teardown();
});

test('a worker SIGKILLed in a step (planSync, waiting on a lock): the step times out on its heartbeat and another worker finishes the sync', async () => {
  const taskQueue = uniqueQueue('stepbeat');
  const raw = {
    temporal: { address: env.address, taskQueue },
    profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
    pipelines: { orders: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, key: ['id'], mode: 'full-refresh' } },
    worker: { opsPort: 0 },
  };
  const config = parseConfig(raw, {});
  const logger = createLogger({ level: 'error' });
  // A first run creates dst, so the second one has a table to wait for.
  const first = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
  await first.runUntil(() => env.client.workflow.execute('dataSync', { taskQueue, workflowId: `sync:orders:first:${Date.now()}`, args: [{ pipeline: 'orders' }] }));

  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-stepbeat-')), 'lakebase.yaml');
  await writeFile(file, YAML.stringify(raw));
  const child: ChildProcess = spawn(process.execPath, [CLI, 'worker', '--config', file], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, LOG_LEVEL: 'error', LAKEBASE_WORKER_FROM_SOURCE: '1' } });
  const locker = new pg.Client({ connectionString: db.url });
  await locker.connect();
  try {
    await locker.query('BEGIN; LOCK TABLE dst IN ACCESS EXCLUSIVE MODE');
    const handle = await env.client.workflow.start('dataSync', { taskQueue, workflowId: `sync:orders:${Date.now()}`, args: [{ pipeline: 'orders' }] });
    for (let i = 0; ; i++) {
      const d = await handle.describe();
      const step = (d.raw.pendingActivities ?? []).find((a) => a.activityType?.name === 'planSync');
      const { rows } = await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lakebase-worker' AND wait_event_type = 'Lock'`, [db.name]);
      if (step?.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED && rows[0].n > 0) break;
      if (i >= 600) {
        const all = (await db.client.query(`SELECT application_name, state, wait_event_type, left(query, 120) AS q FROM pg_stat_activity WHERE datname = $1`, [db.name])).rows;
        assert.fail(`planSync runs and waits on the lock; pending: ${JSON.stringify((d.raw.pendingActivities ?? []).map((a) => [a.activityType?.name, a.state, a.attempt]))}; backends: ${JSON.stringify(all)}`);
      }
      await sleep(100);
    }
    // Alive, the step outlasts its heartbeat timeout (30 s): the adapter's beats keep the attempt.
    await sleep(40_000);
    const alive = (await handle.describe()).raw.pendingActivities?.find((a) => a.activityType?.name === 'planSync');
    assert.equal(alive?.attempt, 1, 'a live step waiting longer than its heartbeat timeout keeps its first attempt');
    child.kill('SIGKILL');
    await locker.query('COMMIT');

    const second = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    // Well inside a step's 10-minute start-to-close: only a heartbeat timeout ends the dead attempt this soon.
    const result = await second.runUntil(() => Promise.race([handle.result(), sleep(180_000, undefined, { ref: false }).then(() => 'still running after 3 minutes')]));
    assert.notEqual(result, 'still running after 3 minutes');
    const { events } = await handle.fetchHistory();
    const started = (events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!);
    const retried = started.filter((a) => (a.attempt ?? 1) > 1);
    assert.equal(retried.length, 1, `one step retried (attempts ${started.map((a) => a.attempt).join(',')})`);
    assert.equal(retried[0]!.lastFailure?.timeoutFailureInfo?.timeoutType, temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT, 'the dead attempt ended on its heartbeat timeout');
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst')).rows[0].n, 2000);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await locker.end().catch(() => undefined);
  }
});
