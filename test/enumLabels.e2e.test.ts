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
import { cleanUp } from './helpers/cleanup';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

// Enum labels as a user meets them: `sync start --wait` (the CLI, a real dev server and worker,
// source and target in two databases) after labels were added to the source type, and after one
// was renamed (the finding batch-enum-label of the generative suite: the second run failed with 22P02).

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');

describe('enum labels added to the source, through the CLI (Temporal + PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let src: TestDatabase;
  let dst: TestDatabase;
  let dir: string;
  let file: string;
  let worker: Awaited<ReturnType<typeof runWorkerInBackground>>;
  const taskQueue = uniqueQueue('enum');

  before(async () => {
    [env, src, dst] = await Promise.all([startTemporal(), createTestDatabase('enum_e2e_src'), createTestDatabase('enum_e2e_dst')]);
    await src.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE TABLE feelings (id int PRIMARY KEY, m mood NOT NULL);
      INSERT INTO feelings SELECT g, (ARRAY['sad', 'ok', 'happy']::mood[])[1 + g % 3] FROM generate_series(1, 1000) g;`);
    const side = (environment: string, table: string) => ({ profile: 'local', environment, table });
    const raw = {
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { src: src.environment, dst: dst.environment } } },
      pipelines: { feelings: { source: side('src', 'public.feelings'), target: side('dst', 'public.feelings'), key: ['id'], mode: 'full-refresh', batchRows: 300 } },
    };
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-enum-'));
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

  /** `sync start --pipeline feelings --wait`: its exit status and what it printed. */
  async function syncStart(): Promise<{ code: number | null; out: string }> {
    const cli = spawn(process.execPath, [CLI, 'sync', 'start', '--pipeline', 'feelings', '--wait', '--config', file], { env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' } });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d));
    cli.stderr.on('data', (d: Buffer) => (out += d));
    const code = await new Promise<number | null>((resolve) => cli.on('exit', resolve));
    return { code, out };
  }

  const labels = async (db: TestDatabase) => (await db.client.query(`SELECT array_agg(enumlabel::text ORDER BY enumsortorder) AS l FROM pg_enum WHERE enumtypid = 'mood'::regtype`)).rows[0].l;
  const rows = async (db: TestDatabase) => (await db.client.query(`SELECT array_agg(id ORDER BY m, id) AS ids, array_agg(m::text ORDER BY id) AS ms FROM feelings`)).rows[0];

  test('full refresh after labels were added (BEFORE the first, AFTER another): the next sync succeeds, the target type sorts as the source', { timeout: 180_000 }, async () => {
    const first = await syncStart();
    assert.equal(first.code, 0, first.out);
    await src.client.query(`ALTER TYPE mood ADD VALUE 'awful' BEFORE 'sad'`);
    await src.client.query(`ALTER TYPE mood ADD VALUE 'meh' AFTER 'sad'`);
    await src.client.query(`UPDATE feelings SET m = 'awful' WHERE id % 10 = 0; UPDATE feelings SET m = 'meh' WHERE id % 10 = 1`);
    const second = await syncStart();
    assert.equal(second.code, 0, second.out);
    assert.match(second.out, /— done/, second.out);
    assert.deepEqual(await labels(dst), ['awful', 'sad', 'meh', 'ok', 'happy']);
    assert.deepEqual(await rows(dst), await rows(src));
  });

  test('a label renamed in the source: the sync fails with LakebaseSchemaChanged naming the type and the RENAME VALUE to run; nothing is copied', { timeout: 180_000 }, async () => {
    await src.client.query(`ALTER TYPE mood RENAME VALUE 'meh' TO 'so-so'`);
    const before = await rows(dst);
    const failed = await syncStart();
    assert.notEqual(failed.code, 0, failed.out);
    assert.match(failed.out, /LakebaseSchemaChanged/, failed.out);
    assert.match(failed.out, /ALTER TYPE "public"\."mood" RENAME VALUE 'meh' TO 'so-so'/, failed.out);
    assert.deepEqual(await rows(dst), before);
    await dst.client.query(`ALTER TYPE mood RENAME VALUE 'meh' TO 'so-so'`);
    const fixed = await syncStart();
    assert.equal(fixed.code, 0, fixed.out);
    assert.deepEqual(await rows(dst), await rows(src));
  });
});
