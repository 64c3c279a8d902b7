import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import type { VerifyReport } from '../src/activities/types';
import { relationChecksum } from '../src/db/checksum';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { createLogger } from '../src/logger';
import { createLakebaseWorker, type LakebaseWorker } from '../src/worker';
import type { DataSyncInput, SyncProgress, VerifySyncInput } from '../src/workflows';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const COLS = ['id', 'name', 'amount', 'updated_at'];

/** `lakebase-worker verify …` from the sources, as a script runs it. */
function verifyCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const cli = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'verify', ...args], {
    env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' },
  });
  let stdout = '';
  let stderr = '';
  cli.stdout.on('data', (d: Buffer) => (stdout += d));
  cli.stderr.on('data', (d: Buffer) => (stderr += d));
  return new Promise((resolve) => cli.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('deletes and verify through Temporal (real dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let rawConfig: Record<string, unknown>;
  let config: Config;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('verify')]);
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz NOT NULL);
      CREATE INDEX ON src (updated_at, id);
      INSERT INTO src SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 30000) g;
      CREATE TABLE dst_hard (LIKE src INCLUDING ALL);
      CREATE TABLE dst_soft (LIKE src INCLUDING ALL, deleted_at timestamptz);
    `);
    const p = (target: string, extra: Record<string, unknown> = {}) => ({
      source: { profile: 'local', environment: 'test', table: 'src' },
      target: { profile: 'local', environment: 'test', table: target },
      mode: 'upsert',
      key: ['id'],
      cursor: 'updated_at',
      batchRows: 2000,
      ...extra,
    });
    rawConfig = {
      temporal: { address: env.address, taskQueue: 'unused' },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
      pipelines: {
        hard: p('dst_hard', { deletes: 'hard', verify: 'checksums' }),
        soft: p('dst_soft', { deletes: 'soft', softDeleteColumn: 'deleted_at', verify: 'counts' }),
      },
    };
    config = parseConfig(rawConfig, {});
  });

  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  async function withWorker<R>(fn: (q: string, w: LakebaseWorker) => Promise<R>): Promise<R> {
    const taskQueue = uniqueQueue('verify');
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    return w.runUntil(() => fn(taskQueue, w));
  }

  async function sync(q: string, pipeline: string): Promise<SyncProgress> {
    const h = await env.client.workflow.start('dataSync', { taskQueue: q, workflowId: `sync:${pipeline}:${Date.now()}`, args: [{ pipeline }] });
    return (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result();
  }

  test('deletes: hard + verify: checksums — 1% deleted and 1% changed in the source: the next sync removes and updates exactly those, then verifies', async () => {
    await withWorker(async (q) => {
      const first = await sync(q, 'hard');
      assert.equal(first.rowsCopied, 30000);
      assert.equal(first.deletes, undefined, 'a first load into an empty target has nothing to delete');
      assert.equal(first.verify?.report?.ok, true);
      assert.equal(first.verify?.report?.sourceRows, 30000);
      await db.client.query(`DELETE FROM src WHERE id % 100 = 3`);
      await db.client.query(`UPDATE src SET name = name || '*', updated_at = updated_at + interval '1 year' WHERE id % 100 = 5`);
      const second = await sync(q, 'hard');
      assert.equal(second.rowsCopied, 300);
      assert.equal(second.deletes?.rowsDeleted, 300);
      assert.equal(second.deletes?.done, second.deletes?.buckets);
      assert.equal(second.rowsWritten, 600);
      assert.equal(second.verify?.report?.ok, true);
      assert.equal(second.verify?.report?.mismatches, 0);
      assert.deepEqual(await relationChecksum(db.client, 'dst_hard', COLS, ['id']), await relationChecksum(db.client, 'src', COLS, ['id']));
    });
  });

  test('a target edited behind the worker fails verify as LakebaseVerifyFailed naming the keys; the metric counts them; the CLI waits and exits 1 with them, 0 once mended', async () => {
    await db.client.query(`UPDATE dst_hard SET amount = 0 WHERE id = 12345; DELETE FROM dst_hard WHERE id = 22222`);
    await withWorker(async (q, w) => {
      const h = await env.client.workflow.start('verifySync', { taskQueue: q, workflowId: `verify:hard:${Date.now()}`, args: [{ pipeline: 'hard' }] });
      const err = await (h as WorkflowHandle<(i: VerifySyncInput) => Promise<VerifyReport>>).result().then(
        () => assert.fail('verify passed'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof WorkflowFailedError);
      const cause = err.cause as ApplicationFailure;
      assert.equal(cause.type, 'LakebaseVerifyFailed');
      assert.equal(cause.nonRetryable, true);
      assert.match(cause.message, /found 2 differences.*differs id=12345; missing id=22222/);
      const report = cause.details?.[0] as VerifyReport;
      assert.deepEqual(report.differences.map((d) => `${d.kind}:${d.key[0]}`), ['differs:12345', 'missing:22222']);
      assert.match(await w.metrics.registry.metrics(), /lakebase_verify_mismatches_total\{pipeline="hard"\} 2/);

      const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-verify-'));
      const file = path.join(dir, 'lakebase.yaml');
      await writeFile(file, YAML.stringify({ ...rawConfig, temporal: { address: env.address, taskQueue: q } }));
      // No --wait: verify waits for its answer by default.
      const differs = await verifyCli(['--pipeline', 'hard', '--config', file]);
      assert.equal(differs.code, 1, JSON.stringify(differs));
      assert.match(differs.stdout, /^started verify:hard:/m);
      assert.match(differs.stdout, /found 2 differences.*differs id=12345; missing id=22222/, 'the rows are named on stdout');
      assert.match(differs.stderr, /^verify hard: the target differs from the source \[LakebaseVerifyFailed\]$/m);
      // --no-wait detaches: exit 0 with the workflow id only (the verify runs on, and fails, without it).
      const detached = await verifyCli(['--pipeline', 'hard', '--no-wait', '--config', file]);
      assert.equal(detached.code, 0, JSON.stringify(detached));
      assert.match(detached.stdout, /^started verify:hard:\S+\n(  Temporal UI: \S+\n)?$/);
      await env.client.workflow.getHandle(detached.stdout.split('\n')[0]!.replace(/^started /, '')).result().catch(() => undefined);
    });
    // Mended: the next sync's upsert does not see an edit the source never made, but delete
    // detection and verify do — the row is put back by hand here, as a user would after the report.
    await db.client.query(`UPDATE dst_hard t SET amount = s.amount FROM src s WHERE t.id = s.id AND t.id = 12345; INSERT INTO dst_hard SELECT * FROM src WHERE id = 22222`);
    await withWorker(async (q) => {
      const h = await env.client.workflow.start('verifySync', { taskQueue: q, workflowId: `verify:hard:${Date.now()}`, args: [{ pipeline: 'hard', mode: 'counts' }] });
      const report = await (h as WorkflowHandle<(i: VerifySyncInput) => Promise<VerifyReport>>).result();
      assert.equal(report.ok, true);
      assert.equal(report.mode, 'counts');
      const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-verify-'));
      const file = path.join(dir, 'lakebase.yaml');
      await writeFile(file, YAML.stringify({ ...rawConfig, temporal: { address: env.address, taskQueue: q } }));
      const equal = await verifyCli(['--pipeline', 'hard', '--config', file]);
      assert.equal(equal.code, 0, JSON.stringify(equal));
      assert.match(equal.stdout, /^verify hard \(checksums\): source and target match/m);
    });
  });
  test('deletes: soft marks the rows whose key left the source', async () => {
    await withWorker(async (q) => {
      await sync(q, 'soft');
      await db.client.query(`DELETE FROM src WHERE id BETWEEN 10004 AND 10033`);
      const second = await sync(q, 'soft');
      assert.equal(second.deletes?.rowsDeleted, 30);
      assert.equal(second.verify?.report?.ok, true, 'marked rows are not counted as extra');
      const { rows } = await db.client.query(`SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL)::int AS marked, count(*) FILTER (WHERE deleted_at IS NULL)::int AS live FROM dst_soft`);
      assert.deepEqual(rows[0], { marked: 30, live: Number((await db.client.query('SELECT count(*) FROM src')).rows[0].count) });
    });
  });
});
