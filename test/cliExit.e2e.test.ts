// A finished command exits with its result: `sync start --wait` must exit 0 with the result even
// when its progress query is stuck at the moment the workflow completes (issue 19: a query still
// retrying when the CLI closed its connection crashed a successful sync with exit 1).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { followProgress } from '../src/progress';
import { createLakebaseWorker } from '../src/worker';
import type { SyncProgress } from '../src/workflows';
import { cleanUp } from './helpers/cleanup';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');

describe('followProgress: stop settles the poll in flight', () => {
  test('stop aborts a poll that would never answer and resolves once it has settled; polls never overlap', async () => {
    let started = 0;
    let settled = 0;
    const stop = followProgress(
      (signal) =>
        new Promise<SyncProgress>((_resolve, reject) => {
          started++;
          signal.addEventListener('abort', () => {
            settled++;
            reject(new Error('aborted'));
          });
        }),
      process.stdout,
      10,
    );
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(started, 1, 'a stuck poll is not joined by more');
    await stop();
    assert.equal(settled, 1, 'stop waited for the poll to settle');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(started, 1, 'no poll after stop');
  });
});

describe('sync start --wait exits with its result (real dev server, real PostgreSQL, the CLI as a user runs it)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dir: string;
  const logger = createLogger({ level: 'silent' });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('cliexit')]);
    await db.client.query(`CREATE TABLE src (id int PRIMARY KEY, label text); INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 3000) g;`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-cliexit-'));
  });

  after(() =>
    cleanUp(
      () => env?.teardown(),
      () => db?.close(),
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  for (const round of [1, 2]) {
    test(`the worker answering queries stops as the workflow completes: exit 0 and the result printed (round ${round})`, { timeout: 180_000 }, async () => {
      const taskQueue = uniqueQueue('cliexit');
      const target = `dst_${round}`;
      const pipeline = `p${round}`;
      const raw = {
        temporal: { address: env.address, taskQueue },
        profiles: { local: { auth: { method: 'pat', token: 'x' }, environments: { test: db.environment } } },
        pipelines: { [pipeline]: { source: { profile: 'local', environment: 'test', table: 'public.src' }, target: { profile: 'local', environment: 'test', table: `public.${target}` }, key: ['id'], mode: 'upsert', cursor: 'id', batchRows: 200 } },
      };
      const file = path.join(dir, `lakebase-${round}.yaml`);
      await writeFile(file, YAML.stringify(raw));
      // Polling progress every 20 ms: a query is nearly always in flight when the result arrives.
      const cli = spawn(process.execPath, [CLI, 'sync', 'start', '--pipeline', pipeline, '--wait', '--config', file], {
        env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', LAKEBASE_PROGRESS_INTERVAL_MS: '20' },
      });
      let stdout = '';
      let stderr = '';
      cli.stdout.on('data', (d: Buffer) => (stdout += d));
      cli.stderr.on('data', (d: Buffer) => (stderr += d));
      const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
      try {
        while (!/^started (\S+)/m.test(stdout)) {
          assert.equal(cli.exitCode, null, `the CLI ended early:\n${stdout}\n${stderr}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        const workflowId = /^started (\S+)/m.exec(stdout)![1]!;
        // The only worker: it runs the sync and answers the CLI's queries, and is shut down the
        // moment the workflow completes, so the queries in flight then have no one to answer them.
        const worker = await createLakebaseWorker({ config: parseConfig(raw, {}), logger, connection: env.nativeConnection, taskQueue });
        await worker.runUntil(() => env.client.workflow.getHandle(workflowId).result());
        const code = await exited;
        const shown = `exit ${code}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
        assert.equal(code, 0, shown);
        // Under a second the duration reads `850 ms` (humanize.ts): seen on a fast CI machine in round 2.
        assert.match(stdout, new RegExp(`^${pipeline}: 100% 3,000\/3,000 rows, 3,000 written, .* — done; the workflow took (\\d+ ms|\\d+\\.\\d s)$`, 'm'), shown);
        assert.doesNotMatch(stderr, /Channel has been shut down|Error/, shown);
        assert.equal((await db.client.query(`SELECT count(*)::int AS n FROM ${target}`)).rows[0].n, 3000);
      } finally {
        if (cli.exitCode === null) cli.kill('SIGKILL');
      }
    });
  }
});
