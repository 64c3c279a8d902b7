import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { startSyncGroup } from '../src/client';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { createSyncSchedule } from '../src/schedules';
import { LakebasePipeline } from '../src/workflows/searchAttributes';
import { createLakebaseWorker } from '../src/worker';
import type { DataSyncInput, SyncGroupResult, SyncProgress } from '../src/workflows';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { cleanUp } from './helpers/cleanup';

const COLS = ['id', 'name', 'amount', 'updated_at', 'deleted_at'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('sync modes, resume and schedules (real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let rawConfig: Record<string, unknown>;
  let config: Config;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('modes')]);
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz NOT NULL, deleted_at timestamptz);
      CREATE INDEX ON src (updated_at, id);
      INSERT INTO src SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 second', NULL FROM generate_series(1, 20000) g;
      CREATE TABLE big (id int PRIMARY KEY, payload text);
      INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 200000) g;
      CREATE TABLE dst_full (LIKE src INCLUDING ALL);
      INSERT INTO dst_full VALUES (-1, 'stale row the refresh must remove', 0, now(), NULL);
      CREATE TABLE dst_append (LIKE src INCLUDING ALL);
      CREATE TABLE dst_upsert (LIKE src INCLUDING ALL);
      CREATE TABLE dst_can (LIKE src INCLUDING ALL);
      CREATE TABLE dst_can_parallel (LIKE src INCLUDING ALL);
      CREATE TABLE dst_sched (LIKE src INCLUDING ALL);
      CREATE TABLE dst_group_a (LIKE src INCLUDING ALL);
      CREATE TABLE dst_group_b (LIKE src INCLUDING ALL);
      CREATE TABLE dst_broken (id int PRIMARY KEY);  -- lacks the other columns
      CREATE TABLE dst_big (id int, payload text);   -- no key: a duplicated chunk would show
    `);
    const p = (target: string, extra: Record<string, unknown> = {}) => ({
      source: { profile: 'local', environment: 'test', table: 'src' },
      target: { profile: 'local', environment: 'test', table: target },
      key: ['id'],
      batchRows: 2000,
      ...extra,
    });
    rawConfig = {
      temporal: { address: env.address, taskQueue: 'unused' },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
      pipelines: {
        full: p('dst_full', { mode: 'full-refresh', batchRows: 1000 }),
        append: p('dst_append', { mode: 'append' }),
        upsert: p('dst_upsert', { mode: 'upsert', cursor: 'updated_at', softDeleteColumn: 'deleted_at' }),
        can: p('dst_can', { batchRows: 1500, parallelism: 1 }),
        'can-parallel': p('dst_can_parallel', { batchRows: 1500 }),
        sched: p('dst_sched'),
        'group-a': p('dst_group_a'),
        'group-b': p('dst_group_b'),
        broken: p('dst_broken', { schemaChanges: 'freeze' }),
        big: {
          source: { profile: 'local', environment: 'test', table: 'big' },
          target: { profile: 'local', environment: 'test', table: 'dst_big' },
          key: ['id'],
          mode: 'append',
          batchRows: 10000,
        },
      },
      syncGroups: { nightly: { pipelines: ['group-a', 'broken', 'group-b'], parallelism: 2 } },
    };
    config = parseConfig(rawConfig, {});
  });

  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  async function withWorker<R>(fn: (q: string) => Promise<R>): Promise<R> {
    const taskQueue = uniqueQueue('modes');
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    return w.runUntil(() => fn(taskQueue));
  }

  async function sync(q: string, pipeline: string, extra: Partial<DataSyncInput> = {}): Promise<SyncProgress> {
    const h = await env.client.workflow.start('dataSync', { taskQueue: q, workflowId: `sync:${pipeline}:${Date.now()}`, args: [{ pipeline, ...extra }] });
    return (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result();
  }

  const checksum = (rel: string) => relationChecksum(db.client, rel, COLS, ['id']);

  test('full-refresh replaces the target in one transaction: readers never see a partial table', async () => {
    const counts = new Set<number>();
    let watching = true;
    const reader = (async () => {
      const c = await import('pg').then((pg) => new pg.default.Client({ connectionString: db.url }));
      await c.connect();
      while (watching) {
        counts.add((await c.query('SELECT count(*)::int AS n FROM dst_full')).rows[0].n);
        await sleep(5);
      }
      await c.end();
    })();
    const result = await withWorker((q) => sync(q, 'full'));
    watching = false;
    await reader;
    assert.equal(result.rowsCopied, 20000);
    assert.deepEqual(await checksum('dst_full'), await checksum('src'));
    assert.deepEqual([...counts].filter((n) => n !== 1 && n !== 20000), [], `readers saw only the old (1) or new (20000) table: ${[...counts].join(',')}`);
    assert.equal((await db.client.query(`SELECT to_regclass('dst_full__lbw_refresh') AS t`)).rows[0].t, null, 'staging table dropped');
  });

  test('append is incremental: a second run copies only the new rows', async () => {
    await withWorker(async (q) => {
      const first = await sync(q, 'append');
      assert.equal(first.rowsCopied, 20000);
      await db.client.query(`INSERT INTO src SELECT g, 'n' || g, g * 1.5, '2026-06-01'::timestamptz + g * interval '1 second', NULL FROM generate_series(20001, 20500) g`);
      const second = await sync(q, 'append');
      assert.equal(second.rowsCopied, 500);
      assert.equal(second.rowsWritten, 500);
      assert.deepEqual(await checksum('dst_append'), await checksum('src'));
      const third = await sync(q, 'append');
      assert.equal(third.rowsCopied, 0, 're-running a finished sync copies and writes nothing');
    });
  });

  test('upsert by cursor picks up changed rows and applies soft deletes', async () => {
    await withWorker(async (q) => {
      await sync(q, 'upsert');
      await db.client.query(`UPDATE src SET name = name || ' (changed)', updated_at = '2027-01-01'::timestamptz + id * interval '1 ms' WHERE id % 1000 = 0`);
      await db.client.query(`UPDATE src SET deleted_at = now(), updated_at = '2027-02-01'::timestamptz + id * interval '1 ms' WHERE id IN (7, 77, 777)`);
      const second = await sync(q, 'upsert');
      assert.equal(second.rowsCopied, 20 + 3);
      assert.equal(second.rowsWritten, 20 + 3);
      const live = `(SELECT * FROM src WHERE deleted_at IS NULL)`;
      assert.deepEqual(await checksum('dst_upsert'), await checksum(live));
      assert.equal((await db.client.query(`SELECT count(*)::int AS n FROM dst_upsert WHERE id IN (7, 77, 777)`)).rows[0].n, 0);
      assert.equal((await sync(q, 'upsert')).rowsWritten, 0);
    });
  });

  test('continue-as-new with a tiny threshold keeps the cursor', async () => {
    const result = await withWorker((q) => sync(q, 'can', { chunksPerRun: 3 }));
    assert.ok(result.run >= 4, `ran ${result.run} runs`);
    assert.deepEqual(await checksum('dst_can'), await checksum('src'));
    assert.equal(result.rowsCopied, await db.client.query('SELECT count(*)::int AS n FROM src').then((r) => r.rows[0].n));
  });

  test('continue-as-new of a parallel run: chunks in flight finish first, every partition resumes from its own cursor', async () => {
    const result = await withWorker((q) => sync(q, 'can-parallel', { chunksPerRun: 3 }));
    assert.ok(result.run >= 2, `ran ${result.run} runs`);
    assert.ok(result.partitions && result.partitions.total > 1 && result.partitions.done === result.partitions.total, JSON.stringify(result.partitions));
    assert.deepEqual(await checksum('dst_can_parallel'), await checksum('src'));
    assert.equal(result.rowsCopied, await db.client.query('SELECT count(*)::int AS n FROM src').then((r) => r.rows[0].n));
  });

  test('a worker killed (SIGKILL) mid-sync: another worker finishes it; nothing lost, nothing duplicated', async () => {
    const taskQueue = uniqueQueue('kill');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-kill-'));
    const file = path.join(dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify({ ...rawConfig, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
    const child: ChildProcess = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    const exited = new Promise((r) => child.once('exit', r));
    const handle = await env.client.workflow.start('dataSync', {
      taskQueue,
      workflowId: `sync:big:${Date.now()}`,
      args: [{ pipeline: 'big', heartbeatTimeout: '3 seconds' } satisfies DataSyncInput],
    });
    // Kill it once a couple of chunks are in and another is under way.
    for (let p = await handle.query<SyncProgress>('progress').catch(() => undefined); !p || p.chunks < 2; p = await handle.query<SyncProgress>('progress').catch(() => undefined)) await sleep(50);
    child.kill('SIGKILL');
    await exited;
    const result = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue }).then((w) =>
      w.runUntil(() => (handle as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result()),
    );
    assert.equal(result.done, true);
    const cols = ['id', 'payload'];
    assert.deepEqual(await relationChecksum(db.client, 'dst_big', cols, ['id']), await relationChecksum(db.client, 'big', cols, ['id']));
    const dupes = (await db.client.query('SELECT count(*) - count(DISTINCT id) AS d FROM dst_big')).rows[0].d;
    assert.equal(Number(dupes), 0);
  });

  test('a multi-table group: the broken table fails alone and is reported; the others finish', async () => {
    await withWorker(async (q) => {
      const handle = await startSyncGroup(env.client, { group: 'nightly', taskQueue: q });
      const err = await handle.result().then(() => assert.fail('the group should report its failure'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      assert.ok(err.cause instanceof ApplicationFailure);
      assert.equal(err.cause.type, 'LakebaseSyncGroupFailed');
      assert.match(err.cause.message, /1 of 3 pipelines failed: broken \(LakebaseSchemaChanged: pipelines\.broken: the source's columns and the target's differ \(schemaChanges: freeze\): the target has no column "name" \(text\) that the source provides; the target has no column "amount"/);
      const report = err.cause.details?.[0] as SyncGroupResult;
      assert.deepEqual(report.succeeded.map((s) => s.pipeline).sort(), ['group-a', 'group-b']);
      assert.deepEqual(await checksum('dst_group_a'), await checksum('src'));
      assert.deepEqual(await checksum('dst_group_b'), await checksum('src'));
    });
  });

  test('a schedule fires on its own and runs a sync', async () => {
    await withWorker(async (q) => {
      const schedule = await createSyncSchedule(env.client, { pipeline: 'sched', taskQueue: q, every: '2s', scheduleId: `sched-${Date.now()}`, config });
      try {
        let started: string | undefined;
        for (let i = 0; i < 100 && !started; i++) {
          const d = await schedule.describe();
          const a = d.info.recentActions[0]?.action;
          started = a?.type === 'startWorkflow' ? a.workflow.workflowId : undefined;
          if (!started) await sleep(200);
        }
        assert.ok(started?.startsWith('sync:sched:scheduled'), `the schedule started ${started}`);
        await schedule.pause();
        const run = env.client.workflow.getHandle(started!);
        const result = (await run.result()) as SyncProgress;
        assert.equal((await run.describe()).typedSearchAttributes.get(LakebasePipeline), 'sched', 'scheduled runs are filterable by pipeline');
        assert.equal(result.done, true);
        assert.deepEqual(await checksum('dst_sched'), await checksum('src'));
        const d = await schedule.describe();
        assert.equal(d.policies.overlap, 'SKIP');
      } finally {
        await schedule.delete();
      }
    });
  });
});
