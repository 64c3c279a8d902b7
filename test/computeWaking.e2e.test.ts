import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { jobProgress, startJob, startSync, syncProgress } from '../src/client';
import { parseConfig } from '../src/config/load';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

describe('a job step or a sync meeting a waking compute says so in the workflow’s current details (emulator scale to zero, real Temporal dev server)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let emu: LakebaseEmulator;

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('wakejob')]);
    await db.client.query(`CREATE TABLE hits (n int); CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, 'v' || g FROM generate_series(1, 500) g; CREATE TABLE dst (LIKE src INCLUDING ALL)`);
    // Wakes 3 s after the first connection; each login waits at most 500 ms for it.
    emu = await new LakebaseEmulator({ upstream: ADMIN_URL, passwordRoles: [{ role: 'app', password: 'pw' }], scaleToZero: { wakeDelayMs: 3_000 } }).start();
  });
  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => emu?.stop(),
      () => db?.close(),
    ),
  );

  const configFor = (taskQueue: string) =>
    parseConfig({
      temporal: { taskQueue },
      profiles: {
        p: {
          auth: { method: 'password', password: 'pw' },
          environments: { test: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'app', ssl: { mode: 'disable' }, computeWakeTimeoutMs: 500 } },
        },
      },
      jobs: { hit: { profile: 'p', environment: 'test', steps: [{ name: 'insert', kind: 'write', sql: 'INSERT INTO hits VALUES (1)' }] } },
      pipelines: { copy: { source: { profile: 'p', environment: 'test', table: 'src' }, target: { profile: 'p', environment: 'test', table: 'dst' }, key: ['id'] } },
    }, {});

  /** Polls the workflow's progress until it reports a waking compute; returns that and the current details at that moment. */
  async function whileWaking<T>(handle: { query: (name: string) => Promise<unknown> }, waking: () => Promise<T | undefined>): Promise<{ seen: T | undefined; details: string }> {
    for (let i = 0; i < 100; i++) {
      const seen = await waking().catch(() => undefined);
      if (seen) return { seen, details: ((await handle.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '' };
      await sleep(100);
    }
    return { seen: undefined, details: '' };
  }

  test('LakebaseComputeWaking shows in current details and progress while the workflow waits, then the step runs once', async () => {
    const taskQueue = uniqueQueue('wakejob');
    const config = configFor(taskQueue);
    const { stop } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    try {
      const handle = await startJob(env.client, { job: 'hit', params: {}, taskQueue, config });
      const { seen, details } = await whileWaking(handle, async () => (await jobProgress(env.client, handle.workflowId)).computeWaking);
      assert.ok(seen, 'progress.computeWaking was set while the compute woke');
      assert.equal(seen?.step, 'insert');
      assert.match(details, /^Waiting for the compute to wake \(LakebaseComputeWaking, try 1 of 5\) before insert/);
      assert.match(details, /computeWakeTimeoutMs/);
      const r = await handle.result();
      assert.equal(r.status, 'done');
      assert.equal(r.computeWaking, undefined);
      assert.equal((await db.client.query('SELECT count(*)::int AS n FROM hits')).rows[0].n, 1);
      assert.ok(emu.compute.refusedWhileWaking >= 2);
    } finally {
      await stop();
    }
  });

  test('a sync waits for the waking compute in the workflow, shows it in current details and progress, then copies every row once', async () => {
    emu.suspendCompute();
    const taskQueue = uniqueQueue('wakesync');
    const config = configFor(taskQueue);
    const { stop } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    try {
      const handle = await startSync(env.client, { pipeline: 'copy', taskQueue, config });
      const { seen, details } = await whileWaking(handle, async () => (await syncProgress(env.client, handle.workflowId)).computeWaking);
      assert.ok(seen, 'progress.computeWaking was set while the compute woke');
      assert.match(details, /^Waiting for the compute to wake \(LakebaseComputeWaking, try 1 of 5\) — copy \(planning\)/);
      assert.match(details, /computeWakeTimeoutMs/);
      const r = await handle.result();
      assert.equal(r.computeWaking, undefined);
      assert.equal(r.rowsCopied, 500);
      assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst')).rows[0].n, 500);
    } finally {
      await stop();
    }
  });
});
