import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startSync } from '../src/client';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const COLUMNS = ['id', 'name', 'amount', 'doc', 'at', 'maybe'];

describe('dataSync end to end (real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('e2e')]);
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(20,6), doc jsonb, at timestamptz, maybe boolean);
      INSERT INTO src SELECT g, 'row ' || g || CASE WHEN g % 10 = 0 THEN ' Ünïcødé' ELSE '' END,
        CASE WHEN g % 9 = 0 THEN NULL ELSE g * 1.000001 END, jsonb_build_object('g', g),
        '2026-01-01'::timestamptz + g * interval '1.5 seconds', CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END
      FROM generate_series(1, 5000) g;
      CREATE TABLE dst (LIKE src INCLUDING ALL);
      CREATE TABLE dst_flaky (LIKE src INCLUDING ALL);
      CREATE SEQUENCE flaky_attempts;
      -- Fails the chunk holding id 2345 once, after earlier rows of that chunk were inserted.
      -- A sequence is not rolled back, so the second attempt passes.
      CREATE FUNCTION fail_once() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.id = 2345 AND nextval('flaky_attempts') = 1 THEN
          RAISE EXCEPTION 'injected serialization failure' USING ERRCODE = '40001';
        END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER fail_once BEFORE INSERT ON dst_flaky FOR EACH ROW EXECUTE FUNCTION fail_once();
    `);
  });

  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  const pipeline = (target: string, extra: Record<string, unknown> = {}) => ({
    source: { profile: 'local', environment: 'test', table: 'public.src' },
    target: { profile: 'local', environment: 'test', table: target },
    key: ['id'],
    batchRows: 700,
    ...extra,
  });

  async function withWorker<R>(fn: (taskQueue: string) => Promise<R>): Promise<R> {
    const taskQueue = uniqueQueue('e2e');
    const config = testConfig(db, {
      'src-to-dst': pipeline('public.dst'),
      flaky: pipeline('public.dst_flaky'),
      'bad-column': pipeline('public.dst', { transform: { columns: { amount: 'amount * no_such_col' } } }),
    });
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    return w.runUntil(() => fn(taskQueue));
  }

  test('syncs every row exactly, reports progress, and a re-run writes nothing', async () => {
    await withWorker(async (taskQueue) => {
      const handle = await startSync(env.client, { pipeline: 'src-to-dst', taskQueue });
      assert.match(handle.workflowId, /^sync:src-to-dst:\d{4}-\d\d-\d\dT/);
      const result = await handle.result();
      assert.equal(result.done, true);
      assert.equal(result.rowsCopied, 5000);
      assert.equal(result.rowsWritten, 5000);
      // Partitions of ~5000/8 rows, each one or two chunks of at most 700.
      assert.ok(result.chunks >= Math.ceil(5000 / 700), `${result.chunks} chunks`);
      assert.ok(result.partitions && result.partitions.total > 1 && result.partitions.done === result.partitions.total, JSON.stringify(result.partitions));
      assert.deepEqual(
        await relationChecksum(db.client, 'dst', COLUMNS, ['id']),
        await relationChecksum(db.client, 'src', COLUMNS, ['id']),
      );
      const progress = await handle.query<{ cursor: string[] }>('progress');
      assert.deepEqual(progress.cursor, ['5000']);

      const rerun = await (await startSync(env.client, { pipeline: 'src-to-dst', taskQueue, workflowId: `${handle.workflowId}-rerun` })).result();
      // Upsert without a cursor: the re-sync compares first, and identical tables move and write nothing.
      assert.equal(rerun.resync?.method, 'compare', rerun.resync?.reason);
      assert.equal(rerun.rowsCopied, 0, 'equal digests copy nothing');
      assert.equal(rerun.rowsWritten, 0, 'unchanged rows are not rewritten');
    });
  });

  test('a chunk that fails midway is rolled back and retried without duplicating rows', async () => {
    await withWorker(async (taskQueue) => {
      const handle = await startSync(env.client, { pipeline: 'flaky', taskQueue });
      const result = await handle.result();
      assert.equal(result.rowsWritten, 5000);
      assert.deepEqual(
        await relationChecksum(db.client, 'dst_flaky', COLUMNS, ['id']),
        await relationChecksum(db.client, 'src', COLUMNS, ['id']),
      );
      const { rows } = await db.client.query(`SELECT last_value FROM flaky_attempts`);
      assert.equal(Number(rows[0].last_value), 2, 'the failing chunk ran twice');
      const history = await handle.fetchHistory();
      const attempts = (history.events ?? [])
        .map((e) => e.activityTaskStartedEventAttributes?.attempt)
        .filter((a): a is number => typeof a === 'number');
      assert.ok(attempts.includes(2), `a second attempt of the failed write is recorded (attempts: ${attempts.join(',')})`);
    });
  });

  test('a bad column fails the workflow after exactly one attempt, naming the column', async () => {
    await withWorker(async (taskQueue) => {
      const handle = await startSync(env.client, { pipeline: 'bad-column', taskQueue });
      const err = await handle.result().then(
        () => assert.fail('the workflow should fail'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ActivityFailure);
      assert.equal(err.cause.retryState, RetryState.NON_RETRYABLE_FAILURE);
      const app = err.cause.cause;
      assert.ok(app instanceof ApplicationFailure);
      assert.equal(app.type, 'LakebaseSqlError');
      assert.match(app.message, /column "no_such_col" does not exist/);
      const history = await handle.fetchHistory();
      const events = history.events ?? [];
      const scheduled = events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => e.activityTaskScheduledEventAttributes!.activityType!.name);
      assert.deepEqual(scheduled, ['planSync'], 'the bad expression is caught while planning, before any state changes');
      const attempts = events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
      assert.deepEqual(attempts, [1], 'planSync ran exactly once');
    });
  });
});
