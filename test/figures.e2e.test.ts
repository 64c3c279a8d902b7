// One set of figures (issue 26, item 5): a re-sync of a populated 10,000-row table by
// compare-then-copy shows the same rows written in its progress line, in `status` (progress and
// the LakebaseRowsWritten search attribute) and in `list`; a job's dry run says what it planned.
// Through the CLI as a user runs it, on a real Temporal dev server and the local PostgreSQL.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import { cleanUp } from './helpers/cleanup';
import { runCli, shown } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

describe('one set of figures: progress, status, list and search attributes agree (real CLI, dev server, PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dir: string;
  let file: string;
  let stopWorker: (() => Promise<void>) | undefined;
  const taskQueue = uniqueQueue('figures');
  const cli = (...args: string[]) => runCli([...args, '--config', file], { env: { LAKEBASE_CONFIG: undefined }, timeoutMs: 180_000 });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('figures')]);
    await db.client.query(`CREATE TABLE src (id int PRIMARY KEY, label text); INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 10000) g;`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-figures-'));
    file = path.join(dir, 'lakebase.yaml');
    const side = (table: string) => ({ profile: 'local', environment: 'test', table });
    const raw = {
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'none' }, environments: { test: db.environment } } },
      pipelines: { orders: { source: side('public.src'), target: side('public.dst'), key: ['id'], mode: 'upsert', deletes: 'hard', batchRows: 1000 } },
      jobs: {
        relabel: {
          profile: 'local', environment: 'test',
          steps: [
            { name: 'count', kind: 'read', sql: 'select count(*) from public.dst' },
            { name: 'relabel', kind: 'write', sql: "update public.dst set label = label || '!' where id = 1" },
          ],
        },
      },
      worker: { opsPort: 0 },
    };
    await writeFile(file, YAML.stringify(raw));
    const w = await runWorkerInBackground({ config: parseConfig(raw), logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    stopWorker = w.stop;
  });

  after(() =>
    cleanUp(
      () => stopWorker?.(),
      () => env?.teardown(),
      () => db?.close(),
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  /** `started <id>` and the last progress line of a `sync start --wait`. */
  const syncWait = async () => {
    const r = await cli('sync', 'start', '-p', 'orders', '--wait');
    assert.equal(r.code, 0, shown(r));
    const id = /^started (\S+)/m.exec(r.stdout)?.[1];
    const last = r.stdout.trim().split('\n').at(-1)!;
    assert.ok(id, shown(r));
    return { id, last, out: r.stdout };
  };

  const attributeOf = async (id: string) => {
    const r = await cli('status', id);
    assert.equal(r.code, 0, shown(r));
    return { out: r.stdout, written: Number(/LakebaseRowsWritten=(\d+)/.exec(r.stdout)?.[1]) };
  };

  test('a compare-then-copy re-sync: the rows written agree in the progress line, status, its search attribute and list', { timeout: 300_000 }, async () => {
    const first = await syncWait();
    assert.match(first.last, /^orders: 100% 10,000\/10,000 rows, 10,000 written, \d+ chunks, [\d,]+ rows\/s, target created — done; the workflow took /);

    // 100 rows changed and 5 deleted in the source: the next run compares and writes only those.
    await db.client.query(`UPDATE src SET label = label || ' changed' WHERE id % 100 = 0; DELETE FROM src WHERE id BETWEEN 5001 AND 5005`);
    const second = await syncWait();
    const m = /^orders: 100% compared (\d+)\/(\d+) buckets \(~[\d,]+ rows\), ([\d,]+) rows? read, ([\d,]+) written, (\d+) deleted, [\d,]+ rows\/s — done; the workflow took /.exec(second.last);
    assert.ok(m, `the re-sync's line names what it compared, read, wrote and deleted:\n${second.out}`);
    assert.equal(m[1], m[2], 'every bucket compared');
    const written = Number(m[4]!.replace(/,/g, ''));
    assert.equal(written, 105, 'written = the 100 changed rows and the 5 deleted');
    assert.equal(Number(m[5]), 5);
    assert.doesNotMatch(second.last, /chunk 0|(?<![\d,])0 rows\/s/); // not "1,350 rows/s"

    const status = await attributeOf(second.id);
    assert.equal(status.written, written, `LakebaseRowsWritten beside the progress:\n${status.out}`);
    assert.match(status.out, /105 written, 5 deleted/);
    assert.equal((await attributeOf(first.id)).written, 10_000);

    const list = await cli('list', '-p', 'orders');
    assert.equal(list.code, 0, shown(list));
    assert.match(list.stdout, new RegExp(`${second.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  written=105$`, 'm'), list.stdout);
    assert.match(list.stdout, new RegExp(`${first.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}  written=10000$`, 'm'), list.stdout);
  });

  test('a job: its dry run says what it planned; a run counts its rows in the singular when there is one', { timeout: 120_000 }, async () => {
    const dry = await cli('job', 'run', '-j', 'relabel', '--dry-run');
    assert.equal(dry.code, 0, shown(dry));
    assert.match(dry.stdout, /^relabel: dry run; 2 steps planned, nothing written$/m);
    assert.doesNotMatch(dry.stdout, /0 steps/);
    const run = await cli('job', 'run', '-j', 'relabel');
    assert.equal(run.code, 0, shown(run));
    assert.match(run.stdout, /^relabel: done; 2 steps, 1 row written$/m);
    assert.match(run.stdout, /^ {2}relabel \(write\): 1 row$/m);
  });
});
