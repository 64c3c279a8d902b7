import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createSyncActivities } from '../src/activities/sync';
import { buildDeps } from '../src/worker';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';

// The hostile table name from the issue; it must be a table name, never SQL.
const HOSTILE = 'x"; drop table x; --';

describe('sync activities against real PostgreSQL', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let acts: ReturnType<typeof createSyncActivities>;

  before(async () => {
    db = await createTestDatabase('acts');
    await db.client.query(`
      CREATE SCHEMA "Src Schema";
      CREATE TABLE x (id int);
      CREATE TABLE "Src Schema"."Mixed Case" (
        "Id" bigint PRIMARY KEY, "Display Name" text, amount numeric(38,18), price double precision,
        doc jsonb, at timestamptz, raw bytea, tags text[]
      );
      INSERT INTO "Src Schema"."Mixed Case" VALUES
        (1, 'plain', 12345678901234567890.123456789012345678, 0.1, '{"a":1,"nested":{"b":[1,2,null]}}', '2026-11-24 10:11:12.123456+00', '\\x00ff10', '{a,"b c",NULL}'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 'Zoë Ångström 東京 🚀 ''quote'' "dq" \\ back', -0.000000000000000001, 1e308, '"just a string"', 'infinity', '\\x', '{}'),
        (4, '', 0, -0, '[]', '-infinity', NULL, '{NULL}');
      CREATE TABLE "${HOSTILE.replace(/"/g, '""')}" (
        "Id" bigint PRIMARY KEY, "Display Name" text, amount numeric(38,18), price double precision,
        doc jsonb, at timestamptz, raw bytea, tags text[]
      );
    `);
    const config = testConfig(db, {
      hostile: {
        source: { profile: 'local', environment: 'test', table: '"Src Schema"."Mixed Case"' },
        target: { profile: 'local', environment: 'test', table: `"${HOSTILE.replace(/"/g, '""')}"` },
        key: ['Id'],
        batchRows: 3,
      },
      renamed: {
        source: { profile: 'local', environment: 'test', table: '"Src Schema"."Mixed Case"' },
        target: { profile: 'local', environment: 'test', table: `"${HOSTILE.replace(/"/g, '""')}"` },
        key: ['Id'],
        transform: { columns: { 'Display Name': `upper("Display Name")` }, rowTransform: 'dropTwo' },
      },
      badColumn: {
        source: { profile: 'local', environment: 'test', table: '"Src Schema"."Mixed Case"' },
        target: { profile: 'local', environment: 'test', table: `"${HOSTILE.replace(/"/g, '""')}"` },
        key: ['Id'],
        transform: { columns: { amount: 'no_such_column * 2' } },
      },
    });
    const deps = buildDeps({
      config,
      logger: createLogger({ level: 'silent' }),
      rowTransforms: { dropTwo: (row) => (row.Id === '2' ? null : { ...row, 'Display Name': `${row['Display Name'] ?? ''}!` }) },
    });
    pools = deps.pools;
    acts = createSyncActivities(deps);
  });

  after(async () => {
    await pools.end();
    await db.close();
  });

  test('values survive read → write exactly (NULLs, unicode, jsonb, numeric, bytea, arrays, infinity)', async () => {
    let after: (string | null)[] | null = null;
    let pages = 0;
    for (;;) {
      const batch = await acts.readBatch({ pipeline: 'hostile', after, limit: 3 });
      if (batch.rows.length === 0) break;
      await acts.writeBatch({ pipeline: 'hostile', batch });
      after = batch.lastKey;
      pages++;
    }
    assert.equal(pages, 2, 'keyset paging with limit 3 over 4 rows');
    const cols = ['Id', 'Display Name', 'amount', 'price', 'doc', 'at', 'raw', 'tags'];
    const src = await relationChecksum(db.client, '"Src Schema"."Mixed Case"', cols, ['Id']);
    const dst = await relationChecksum(db.client, `"${HOSTILE.replace(/"/g, '""')}"`, cols, ['Id']);
    assert.deepEqual(dst, src);
    const { rows } = await db.client.query(`SELECT amount::text, price, "Display Name" FROM "${HOSTILE.replace(/"/g, '""')}" WHERE "Id" = 1`);
    assert.equal(rows[0].amount, '12345678901234567890.123456789012345678');
    assert.equal(rows[0].price, 0.1);
    // The hostile name was a name: table x still exists.
    assert.equal((await db.client.query(`SELECT to_regclass('x') IS NOT NULL AS ok`)).rows[0].ok, true);
  });

  test('writing the same batch twice changes nothing the second time', async () => {
    const batch = await acts.readBatch({ pipeline: 'hostile', after: null, limit: 10 });
    await acts.writeBatch({ pipeline: 'hostile', batch });
    const before = await relationChecksum(db.client, `"${HOSTILE.replace(/"/g, '""')}"`, ['Id', 'Display Name', 'doc'], ['Id']);
    const again = await acts.writeBatch({ pipeline: 'hostile', batch });
    assert.equal(again.rowsWritten, 0);
    assert.deepEqual(await relationChecksum(db.client, `"${HOSTILE.replace(/"/g, '""')}"`, ['Id', 'Display Name', 'doc'], ['Id']), before);
  });

  test('SQL expressions are pushed down and TS row transforms run on the batch', async () => {
    const read = await acts.readBatch({ pipeline: 'renamed', after: null, limit: 10 });
    const nameAt = read.columns.indexOf('Display Name');
    assert.equal(read.rows[0]![nameAt], 'PLAIN');
    const out = await acts.transformBatch({ pipeline: 'renamed', batch: read });
    assert.deepEqual(
      out.rows.map((r) => r[out.columns.indexOf('Id')]),
      ['1', '3', '4'],
    );
    assert.equal(out.rows[0]![out.columns.indexOf('Display Name')], 'PLAIN!');
  });

  test('an unknown column is a non-retryable failure naming the column', async () => {
    await assert.rejects(acts.readBatch({ pipeline: 'badColumn', after: null, limit: 10 }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseSqlError');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /column "no_such_column" does not exist/);
      assert.match(err.message, /SQLSTATE 42703/);
      return true;
    });
  });

  test('an unknown pipeline is a config failure', async () => {
    await assert.rejects(acts.readBatch({ pipeline: 'nope', after: null, limit: 1 }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseConfigError');
      assert.match(err.message, /unknown pipeline "nope"; configured pipelines: hostile, renamed, badColumn/);
      return true;
    });
  });
});
