import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { parseConfig } from '../src/config/load';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import { cleanUp } from './helpers/cleanup';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

// A column added on the source between two cursor syncs, as a user meets it: `sync start --wait`
// (the CLI, a real dev server and worker, source and target in two databases). The finding
// cursor-add-column-default of the generative suite: the second run left NULL in every row whose
// cursor had not moved, where the source rows hold the default.

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
const ROWS = 5000;

describe('ADD COLUMN on the source between cursor syncs, through the CLI (Temporal + PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let src: TestDatabase;
  let dst: TestDatabase;
  let dir: string;
  let file: string;
  let worker: Awaited<ReturnType<typeof runWorkerInBackground>>;
  const taskQueue = uniqueQueue('addcol');

  before(async () => {
    [env, src, dst] = await Promise.all([startTemporal(), createTestDatabase('addcol_e2e_src'), createTestDatabase('addcol_e2e_dst')]);
    await src.client.query(`
      CREATE TABLE orders (id int PRIMARY KEY, note text NOT NULL, updated_at timestamptz NOT NULL);
      CREATE INDEX ON orders (updated_at, id);
      INSERT INTO orders SELECT g, 'n' || g, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, ${ROWS}) g;`);
    const side = (environment: string) => ({ profile: 'local', environment, table: 'public.orders' });
    const raw = {
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { src: src.environment, dst: dst.environment } } },
      pipelines: { orders: { source: side('src'), target: side('dst'), key: ['id'], mode: 'upsert', cursor: 'updated_at', deletes: 'hard', batchRows: 1000 } },
    };
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-addcol-'));
    file = path.join(dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(raw));
    worker = await runWorkerInBackground({ config: parseConfig(raw, {}), logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
  });

  after(() =>
    cleanUp(
      () => worker?.stop(),
      () => env?.teardown(),
      () => Promise.all([src?.close(), dst?.close()]),
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  async function syncStart(): Promise<{ code: number | null; out: string }> {
    const cli = spawn(process.execPath, [CLI, 'sync', 'start', '--pipeline', 'orders', '--wait', '--config', file], { env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' } });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d));
    cli.stderr.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
    return { code, out };
  }

  const COLS = ['id', 'note', 'updated_at', 'status', 'weight', 'tag'];

  test('a constant default, a volatile default and a column set without moving the cursor reach every target row', { timeout: 180_000 }, async () => {
    const first = await syncStart();
    assert.equal(first.code, 0, first.out);
    await src.client.query(`
      ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'new', ADD COLUMN weight float8 DEFAULT random(), ADD COLUMN tag int;
      UPDATE orders SET tag = id % 7;
      UPDATE orders SET note = note || '!', updated_at = updated_at + interval '1 year' WHERE id % 100 = 0;`);
    const second = await syncStart();
    assert.equal(second.code, 0, second.out);
    const nulls = (await dst.client.query(`SELECT count(*) FILTER (WHERE status IS NULL) AS s, count(*) FILTER (WHERE weight IS NULL) AS w, count(*) FILTER (WHERE tag IS NULL) AS t FROM orders`)).rows[0];
    assert.deepEqual({ ...nulls }, { s: '0', w: '0', t: '0' });
    assert.deepEqual(await relationChecksum(dst.client, 'orders', COLS, ['id']), await relationChecksum(src.client, 'orders', COLS, ['id']));
    // Settled: a run with nothing new changes nothing.
    const third = await syncStart();
    assert.equal(third.code, 0, third.out);
    assert.deepEqual(await relationChecksum(dst.client, 'orders', COLS, ['id']), await relationChecksum(src.client, 'orders', COLS, ['id']));
  });
});
