// SIGTERM drains a worker: it stops polling (readiness goes to 503 at once, so Kubernetes takes it
// out of rotation), the activity it is running finishes within worker.shutdownGraceTime, and only
// then does the process exit 0. The sync then finishes on another worker without redoing that step.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import pg from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

let env: TestWorkflowEnvironment;
let db: TestDatabase;
before(async () => {
  env = await startTemporal();
  db = await createTestDatabase('drain');
  await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 2000) g');
});
after(async () => {
  await db?.close();
  await env?.teardown();
});

test('SIGTERM: readiness drops at once, the running activity finishes within the grace period, then the process exits 0', async () => {
  const taskQueue = uniqueQueue('drain');
  const port = await freePort();
  const raw = {
    temporal: { address: env.address, taskQueue },
    profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
    pipelines: { orders: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, key: ['id'] } },
    worker: { opsPort: port, shutdownGraceTime: '30 seconds' },
  };
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-drain-')), 'lakebase.yaml');
  await writeFile(file, YAML.stringify(raw));
  const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, LOG_LEVEL: 'error' },
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const ready = async () => (await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined))?.status;
  try {
    for (let i = 0; (await ready()) !== 200; i++) {
      assert.ok(i < 600, 'the worker became ready');
      await sleep(100);
    }
    // Hold the source table: the sync's first activity blocks on the lock, inside the worker.
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    await locker.query('BEGIN; LOCK TABLE src IN ACCESS EXCLUSIVE MODE');
    const handle = await env.client.workflow.start('dataSync', { taskQueue, workflowId: `sync:orders:${Date.now()}`, args: [{ pipeline: 'orders' }] });
    for (let i = 0; ; i++) {
      const { rows } = await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name = 'lakebase-worker' AND wait_event_type = 'Lock'`, [db.name]);
      if (rows[0].n > 0) break;
      assert.ok(i < 600, 'an activity of the worker waits on the lock');
      await sleep(100);
    }

    const signalled = Date.now();
    child.kill('SIGTERM');
    await sleep(1000);
    assert.equal(child.exitCode, null, 'the worker drains instead of exiting');
    assert.equal(await ready(), 503, '/readyz answers 503 while draining');
    await locker.query('COMMIT');
    await locker.end();
    assert.equal(await exited, 0, 'a drained worker exits 0');
    assert.ok(Date.now() - signalled < 30_000, 'within the grace period');

    // Another worker finishes the sync; the step the drained worker ran is not redone.
    const config = parseConfig(raw, {});
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'error' }), connection: env.nativeConnection, taskQueue });
    await worker.runUntil(() => handle.result());
    const { events } = await handle.fetchHistory();
    const attempts = (events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
    assert.ok(attempts.length > 0 && attempts.every((a) => a === 1), `no activity retried (attempts ${attempts.join(',')})`);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst')).rows[0].n, 2000);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
});
