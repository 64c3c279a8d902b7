import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { startSync } from '../src/client';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { relationChecksum } from '../src/db/checksum';
import { createLogger } from '../src/logger';
import type { SyncProgress } from '../src/workflows';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

// Target creation and schema changes through Temporal (real dev server, real worker, PostgreSQL):
// the data corpus into a target created in another database, a dry run that changes nothing,
// and a refused schema change as a typed, non-retryable failure.

const LONG = `名前_${'x'.repeat(63 - Buffer.byteLength('名前_'))}`;
const HOSTILE = `a"; drop table x; --`;
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const COLS = ['id', 'tags', 'grid', 'm', 'p', 'at', 'd', 'span', 'u', 'n', 'blob', 'doc', LONG, HOSTILE];

describe('target creation and schema changes end to end (Temporal + PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let src: TestDatabase;
  let dst: TestDatabase;
  let config: Config;
  let worker: Awaited<ReturnType<typeof runWorkerInBackground>>;
  const taskQueue = uniqueQueue('shape');

  before(async () => {
    [env, src, dst] = await Promise.all([startTemporal(), createTestDatabase('shape_src'), createTestDatabase('shape_dst')]);
    // The data corpus of test/dataCorpus.test.ts (smaller bytea): odd types and hostile names.
    await src.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
      CREATE TABLE odd (
        id int PRIMARY KEY, tags text[], grid int[][], m mood, p positive_int, at timestamptz, d date, span interval,
        u uuid, n numeric, blob bytea, doc jsonb, ${q(LONG)} text, ${q(HOSTILE)} text
      );
      INSERT INTO odd VALUES
        (1, '{a,"b,c",NULL,"d\\"e"}', '{{1,2},{3,4}}', 'happy', 7, 'infinity', '-infinity', '1 year 2 mons 3 days 04:05:06.789', gen_random_uuid(), 'NaN', '\\x00ff', '{"k": [1, "two", null, {"x": true}]}', 'long', 'hostile'),
        (2, '{}', NULL, 'sad', 1, '-infinity', 'infinity', '-1 day', NULL, '1e-30', '', 'null', NULL, NULL),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO odd (id, blob) SELECT 4, decode(repeat(md5('big'), 100000), 'hex');
      INSERT INTO odd (id, m, n) SELECT g, 'ok', g FROM generate_series(5, 3000) g;
      CREATE TABLE frozen (id int PRIMARY KEY, v text);
      INSERT INTO frozen SELECT g, 'v' || g FROM generate_series(1, 100) g;
    `);
    const side = (environment: string, table: string) => ({ profile: 'local', environment, table });
    config = parseConfig({
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { src: src.environment, dst: dst.environment } } },
      pipelines: {
        corpus: { source: side('src', 'odd'), target: side('dst', 'mirror.odd'), key: ['id'], batchRows: 500 },
        'corpus-full': { source: side('src', 'odd'), target: side('dst', 'odd_full'), key: ['id'], mode: 'full-refresh', batchRows: 500 },
        frozen: { source: side('src', 'frozen'), target: side('dst', 'frozen'), key: ['id'], schemaChanges: 'freeze' },
      },
    });
    worker = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
  });

  after(() =>
    cleanUp(
      () => worker?.stop(),
      () => env?.teardown(),
      () => Promise.all([src?.close(), dst?.close()]),
    ),
  );

  const run = async (pipeline: string, dryRun = false): Promise<SyncProgress> => (await startSync(env.client, { pipeline, taskQueue, config, dryRun })).result();
  const exists = async (table: string) => (await dst.client.query(`SELECT to_regclass($1) IS NOT NULL AS ok`, [table])).rows[0].ok as boolean;

  test('a dry run validates on the worker and describes the CREATE statements; nothing is created or claimed', async () => {
    const result = await run('corpus', true);
    assert.ok(result.dryRun, 'the result carries the dry run');
    assert.match(result.dryRun.actions.join('\n'), /target mirror\.odd does not exist: the run creates it/);
    const ddl = result.dryRun.statements.join('\n');
    assert.match(ddl, /CREATE SCHEMA IF NOT EXISTS "mirror"/);
    assert.match(ddl, /CREATE TYPE "public"\."mood" AS ENUM \('sad', 'ok', 'happy'\)/);
    assert.match(ddl, /CREATE DOMAIN "public"\."positive_int" AS integer CONSTRAINT "positive_int_check" CHECK \(\(VALUE > 0\)\)/);
    assert.match(ddl, /CREATE TABLE "mirror"\."odd" \(/);
    assert.equal(result.rowsCopied, 0);
    assert.equal(await exists('mirror.odd'), false);
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM pg_namespace WHERE nspname IN ('mirror', 'lakebase_worker')`)).rows[0].n, 0, 'no schema, no state');
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM pg_type WHERE typname IN ('mood', 'positive_int')`)).rows[0].n, 0, 'no types');
  });

  test('upsert into a missing target in another database: created (enum and domain too) and every corpus value equal; the progress says so', async () => {
    const result = await run('corpus');
    assert.equal(result.rowsCopied, 3000);
    assert.match(result.targetShape?.created?.at(-1) ?? '', /^CREATE TABLE "mirror"\."odd"/);
    assert.deepEqual(await relationChecksum(dst.client, 'mirror.odd', COLS, ['id']), await relationChecksum(src.client, 'odd', COLS, ['id']));
    const types = `SELECT attname, format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`;
    assert.deepEqual((await dst.client.query(types, ['mirror.odd'])).rows, (await src.client.query(types, ['odd'])).rows);
  });

  test('full refresh into a missing target (the types now exist): created and equal', async () => {
    const result = await run('corpus-full');
    assert.doesNotMatch(result.targetShape?.created?.join('\n') ?? '', /CREATE (TYPE|DOMAIN)/);
    assert.equal(result.swap?.method, 'rename');
    assert.deepEqual(await relationChecksum(dst.client, 'odd_full', COLS, ['id']), await relationChecksum(src.client, 'odd', COLS, ['id']));
  });

  test('schemaChanges: freeze — a new source column fails the sync with LakebaseSchemaChanged (non-retryable: not retried), naming the column', async () => {
    await run('frozen');
    await src.client.query(`ALTER TABLE frozen ADD COLUMN added_later numeric(10,2)`);
    const err = await run('frozen').then(() => assert.fail('the sync should fail'), (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError, String(err));
    assert.ok(err.cause instanceof ActivityFailure);
    assert.equal(err.cause.retryState, RetryState.NON_RETRYABLE_FAILURE, 'not retried');
    assert.ok(err.cause.cause instanceof ApplicationFailure);
    assert.equal(err.cause.cause.type, 'LakebaseSchemaChanged');
    assert.equal(err.cause.cause.nonRetryable, true);
    assert.match(err.cause.cause.message, /new source column "added_later" \(numeric\(10,2\)\)/);
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM pg_attribute WHERE attrelid = 'frozen'::regclass AND attname = 'added_later'`)).rows[0].n, 0);
  });
});
