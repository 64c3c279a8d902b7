import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { VerifyReport } from '../src/activities/types';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import type { VerifySyncInput } from '../src/workflows';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

// Bucket activities (verify, delete detection) heartbeat on a timer while their digest queries run.
// The timer must beat within the heartbeat timeout the workflow asks for, or a live bucket is timed
// out and retried while its first attempt still runs (seen with a fixed 5 s timer and a 5 s timeout).

describe('bucket activities heartbeat within a short heartbeat timeout (real dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('heartbeat')]);
    // Every read of the source view past id 500 sleeps 2.5 s once: a verify bucket's digest reads it, so it runs ≥ 2.5 s
    // (its sub-bucket bounds, an integer key's extent, are two index probes that stop short of id 500).
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, v text);
      INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 1000) g;
      CREATE TABLE dst AS SELECT * FROM src; ALTER TABLE dst ADD PRIMARY KEY (id);
      CREATE VIEW src_slow AS SELECT * FROM src WHERE id <> 500 OR pg_sleep(2.5) IS NOT NULL;
    `);
  });

  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  test('a verify bucket slower than a 1 s heartbeat timeout runs once and passes', async () => {
    const taskQueue = uniqueQueue('heartbeat');
    const local = (table: string) => ({ profile: 'local', environment: 'test', table });
    const config = testConfig(db, { slow: { source: local('src_slow'), target: local('dst'), mode: 'upsert', key: ['id'] } }, taskQueue);
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    await worker.runUntil(async () => {
      const h = (await env.client.workflow.start('verifySync', {
        taskQueue,
        workflowId: `verify:slow:${Date.now()}`,
        args: [{ pipeline: 'slow', mode: 'counts', heartbeatTimeout: '1 second' }],
      })) as WorkflowHandle<(i: VerifySyncInput) => Promise<VerifyReport>>;
      const t0 = Date.now();
      // Without beats in time every attempt is timed out and retried, and the verify never ends: fail instead of waiting.
      let timer: NodeJS.Timeout | undefined;
      const report = await Promise.race([
        h.result(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            void h.terminate('no result within 60 s').catch(() => undefined);
            reject(new Error('verify did not finish within 60 s: its bucket was timed out and retried over and over'));
          }, 60_000);
        }),
      ]).finally(() => clearTimeout(timer));
      assert.ok(Date.now() - t0 >= 2500, 'the bucket was slower than the heartbeat timeout');
      assert.deepEqual([report.ok, report.sourceRows], [true, 1000]);
      const events = (await h.fetchHistory()).events ?? [];
      const attempts = events.flatMap((e) => (e.activityTaskStartedEventAttributes ? [e.activityTaskStartedEventAttributes.attempt ?? 1] : []));
      assert.deepEqual(attempts, [1, 1], 'planVerify and the one verifyBucket ran once each; no heartbeat timeout');
    });
  });
});
