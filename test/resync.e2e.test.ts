import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { relationChecksum } from '../src/db/checksum';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import type { DataSyncInput, SyncProgress } from '../src/workflows';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

// Compare-then-copy through the dataSync workflow: a re-sync of a populated target without a
// cursor runs buckets instead of chunks, says so in its progress and current details, and
// converges; `resync: merge` keeps the plain re-read of every row.

const COLS = ['id', 'name', 'amount'];

describe('compare-then-copy re-sync through Temporal (real dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let config: Config;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('resync_e2e')]);
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(12,2));
      INSERT INTO src SELECT g, 'n' || g, g * 1.5 FROM generate_series(1, 30000) g;
      CREATE TABLE dst (LIKE src INCLUDING ALL);
      CREATE TABLE dst_merge (LIKE src INCLUDING ALL);
    `);
    const p = (target: string, extra: Record<string, unknown> = {}) => ({
      source: { profile: 'local', environment: 'test', table: 'src' },
      target: { profile: 'local', environment: 'test', table: target },
      mode: 'upsert',
      key: ['id'],
      deletes: 'hard',
      batchRows: 2000,
      ...extra,
    });
    config = parseConfig(
      {
        temporal: { address: env.address, taskQueue: 'unused' },
        profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
        pipelines: { compared: p('dst'), merged: p('dst_merge', { resync: 'merge' }) },
      },
      {},
    );
  });

  after(async () => {
    await env?.teardown();
    await db?.close();
  });

  async function sync(q: string, pipeline: string): Promise<{ progress: SyncProgress; details: string; activities: string[] }> {
    const h = (await env.client.workflow.start('dataSync', { taskQueue: q, workflowId: `sync:${pipeline}:${Date.now()}`, args: [{ pipeline }] })) as WorkflowHandle<
      (i: DataSyncInput) => Promise<SyncProgress>
    >;
    const progress = await h.result();
    const details = ((await h.query('__temporal_workflow_metadata')) as { currentDetails?: string }).currentDetails ?? '';
    const events = (await h.fetchHistory()).events ?? [];
    const activities = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name ?? '?'] : []));
    return { progress, details, activities };
  }

  const equal = async (target: string) => assert.deepEqual(await relationChecksum(db.client, target, COLS, ['id']), await relationChecksum(db.client, 'src', COLS, ['id']));

  test('a populated target is compared first: only changed rows are written, gone keys deleted, no chunk runs', async () => {
    const taskQueue = uniqueQueue('resync');
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    await w.runUntil(async () => {
      const first = await sync(taskQueue, 'compared');
      assert.equal(first.progress.resync, undefined, 'a first load is not a re-sync');
      assert.equal(first.progress.rowsWritten, 30000);
      await db.client.query(`UPDATE src SET name = name || '*' WHERE id BETWEEN 10001 AND 10150; DELETE FROM src WHERE id BETWEEN 20001 AND 20010`);
      const second = await sync(taskQueue, 'compared');
      const r = second.progress.resync!;
      assert.equal(r.method, 'compare', r.reason);
      assert.match(r.reason, /rows .* differ in the sampled bucket/);
      assert.deepEqual([r.done, r.rowsWritten, r.rowsDeleted], [r.buckets, 150, 10]);
      assert.equal(second.progress.rowsWritten, 160);
      assert.ok(!second.activities.includes('syncChunk') && !second.activities.includes('deleteBucket'), second.activities.join(', '));
      assert.ok(second.activities.filter((a) => a === 'resyncBucket').length === r.buckets);
      assert.match(second.details, new RegExp(`compare-then-copy: bucket ${r.buckets}/${r.buckets}, 150 written, 10 removed — done`));
      await equal('dst');
      const third = await sync(taskQueue, 'compared');
      assert.deepEqual([third.progress.resync?.method, third.progress.rowsWritten], ['compare', 0], 'identical tables write nothing');
    });
  });

  test('resync: merge re-reads every row in chunks, as before', async () => {
    const taskQueue = uniqueQueue('merge');
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    await w.runUntil(async () => {
      await sync(taskQueue, 'merged');
      await db.client.query(`UPDATE src SET amount = amount + 1 WHERE id BETWEEN 1 AND 20`);
      const again = await sync(taskQueue, 'merged');
      assert.equal(again.progress.resync, undefined);
      assert.ok(again.activities.includes('syncChunk'));
      assert.equal(again.progress.rowsWritten, 20);
      await equal('dst_merge');
    });
  });
});
