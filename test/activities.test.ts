import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import { createSyncActivities } from '../src/activities/sync';
import type { CursorValue } from '../src/activities/types';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { buildDeps } from '../src/worker';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';

// The hostile table name from the issue; it must be a table name, never SQL.
const HOSTILE = 'x"; drop table x; --';
const HOSTILE_SQL = `"${HOSTILE.replace(/"/g, '""')}"`;
const COLS = ['Id', 'Display Name', 'amount', 'price', 'doc', 'at', 'raw', 'tags', 'line'];

describe('sync activities against real PostgreSQL (streaming COPY chunks)', () => {
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
        doc jsonb, at timestamptz, raw bytea, tags text[], line text
      );
      INSERT INTO "Src Schema"."Mixed Case" VALUES
        (1, 'plain', 12345678901234567890.123456789012345678, 0.1, '{"a":1,"nested":{"b":[1,2,null]}}', '2026-11-24 10:11:12.123456+00', '\\x00ff10', '{a,"b c",NULL}', E'tab\\there\\nnew line\\\\ back'),
        (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (3, 'Zoë Ångström 東京 🚀 ''quote'' "dq" \\ back', -0.000000000000000001, 1e308, '"just a string"', 'infinity', '\\x', '{}', E'\\r\\n'),
        (4, '', 0, -0, '[]', '-infinity', NULL, '{NULL}', '\\N');
      CREATE TABLE ${HOSTILE_SQL} (LIKE "Src Schema"."Mixed Case" INCLUDING ALL);
      CREATE TABLE dst2 (LIKE "Src Schema"."Mixed Case" INCLUDING ALL);
    `);
    const src = { profile: 'local', environment: 'test', table: '"Src Schema"."Mixed Case"' };
    const config = testConfig(db, {
      hostile: { source: src, target: { profile: 'local', environment: 'test', table: HOSTILE_SQL }, key: ['Id'], batchRows: 3 },
      transformed: {
        source: src,
        target: { profile: 'local', environment: 'test', table: 'dst2' },
        key: ['Id'],
        transform: { columns: { 'Display Name': `upper("Display Name")` }, rowTransform: 'dropTwo' },
      },
      badColumn: { source: src, target: { profile: 'local', environment: 'test', table: 'dst2' }, key: ['Id'], transform: { columns: { amount: 'no_such_column * 2' } } },
      badTransform: { source: src, target: { profile: 'local', environment: 'test', table: 'dst2' }, key: ['Id'], transform: { rowTransform: 'explode' } },
    });
    const deps = buildDeps({
      config,
      logger: createLogger({ level: 'silent' }),
      rowTransforms: {
        dropTwo: (row) => (row.Id === '2' ? null : { ...row, 'Display Name': `${row['Display Name'] ?? ''}!` }),
        explode: (row) => {
          if (row.Id === '3') throw new Error('cannot handle this row');
          return row;
        },
      },
    });
    pools = deps.pools;
    acts = createSyncActivities(deps);
  });

  after(async () => {
    await pools.end();
    await db.close();
  });

  async function runToEnd(pipeline: string, runId: string) {
    await acts.planSync({ pipeline, runId });
    let after: CursorValue[] | null = null;
    const chunks = [];
    for (;;) {
      const r = await acts.syncChunk({ pipeline, runId, after });
      chunks.push(r);
      after = r.cursor;
      if (r.done) break;
    }
    await acts.finishSync({ pipeline, runId });
    return chunks;
  }

  test('values survive the COPY stream exactly (NULLs, unicode, escapes, jsonb, numeric, bytea, arrays, infinity)', async () => {
    const chunks = await runToEnd('hostile', 'run-1');
    assert.deepEqual(chunks.map((c) => c.rowsCopied), [3, 1]);
    assert.deepEqual(chunks.map((c) => c.cursor), [['3'], ['4']]);
    const src = await relationChecksum(db.client, '"Src Schema"."Mixed Case"', COLS, ['Id']);
    assert.deepEqual(await relationChecksum(db.client, HOSTILE_SQL, COLS, ['Id']), src);
    const { rows } = await db.client.query(`SELECT amount::text, price, line FROM ${HOSTILE_SQL} WHERE "Id" = 1`);
    assert.equal(rows[0].amount, '12345678901234567890.123456789012345678');
    assert.equal(rows[0].price, 0.1);
    assert.equal(rows[0].line, 'tab\there\nnew line\\ back');
    // The hostile name was a name: table x still exists.
    assert.equal((await db.client.query(`SELECT to_regclass('x') IS NOT NULL AS ok`)).rows[0].ok, true);
  });

  test('a re-run writes nothing, and a chunk retried after its commit is recognised and skipped', async () => {
    const chunks = await runToEnd('hostile', 'run-2');
    assert.equal(chunks.reduce((n, c) => n + c.rowsWritten, 0), 0, 'unchanged rows are not rewritten');
    await acts.planSync({ pipeline: 'hostile', runId: 'run-3' });
    const first = await acts.syncChunk({ pipeline: 'hostile', runId: 'run-3', after: null });
    // The same call again, as a retry after a lost answer would make it:
    const retry = await acts.syncChunk({ pipeline: 'hostile', runId: 'run-3', after: null });
    assert.equal(retry.alreadyCommitted, true);
    assert.deepEqual(retry.cursor, first.cursor);
    assert.equal(retry.rowsCopied, 0);
  });

  test('first load of an empty target copies straight in; a key written meanwhile switches that chunk to a merge', async () => {
    await db.client.query(`TRUNCATE ${HOSTILE_SQL}; DELETE FROM lakebase_worker.sync_state WHERE pipeline = 'hostile'`);
    const plan = await acts.planSync({ pipeline: 'hostile', runId: 'run-il' });
    assert.equal(plan.initialLoad, true);
    await db.client.query(`INSERT INTO ${HOSTILE_SQL} ("Id", "Display Name") VALUES (2, 'written by someone else')`);
    await assert.rejects(acts.syncChunk({ pipeline: 'hostile', runId: 'run-il', after: null, initialLoad: true }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseInitialLoadConflict');
      return true;
    });
    const merged = await acts.syncChunk({ pipeline: 'hostile', runId: 'run-il', after: null, initialLoad: false });
    assert.equal(merged.rowsCopied, 3);
    assert.equal((await db.client.query(`SELECT "Display Name" AS n FROM ${HOSTILE_SQL} WHERE "Id" = 2`)).rows[0].n, null, 'the source row won');
  });

  test('a run that is not the owner of the sync state is stopped', async () => {
    await acts.planSync({ pipeline: 'hostile', runId: 'run-new' });
    await assert.rejects(acts.syncChunk({ pipeline: 'hostile', runId: 'run-old', after: null }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseSyncConflict');
      assert.equal(err.nonRetryable, true);
      return true;
    });
  });

  test('SQL expressions are pushed down and TS row transforms run in the stream', async () => {
    await runToEnd('transformed', 'run-t');
    const { rows } = await db.client.query(`SELECT "Id", "Display Name", line FROM dst2 ORDER BY "Id"`);
    assert.deepEqual(rows.map((r) => r.Id), ['1', '3', '4']);
    assert.equal(rows[0]['Display Name'], 'PLAIN!');
    assert.equal(rows[0].line, 'tab\there\nnew line\\ back', 'escapes survive a parse/format round trip');
    assert.equal(rows[2].line, '\\N', 'the text \\N is not NULL');
  });

  test('a throwing row transform fails the chunk non-retryably, naming the row, and writes nothing', async () => {
    await db.client.query('TRUNCATE dst2');
    await acts.planSync({ pipeline: 'badTransform', runId: 'run-x' });
    await assert.rejects(acts.syncChunk({ pipeline: 'badTransform', runId: 'run-x', after: null }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseConfigError');
      assert.match(err.message, /row transform failed on row Id=3: cannot handle this row/);
      return true;
    });
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst2')).rows[0].n, 0);
  });

  test('an unknown column is a non-retryable failure naming the column', async () => {
    await assert.rejects(acts.planSync({ pipeline: 'badColumn', runId: 'run-b' }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseSqlError');
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, /column "no_such_column" does not exist/);
      assert.match(err.message, /SQLSTATE 42703/);
      return true;
    });
  });

  test('an unknown pipeline is a config failure', async () => {
    await assert.rejects(acts.syncChunk({ pipeline: 'nope', runId: 'r', after: null }), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure);
      assert.equal(err.type, 'LakebaseConfigError');
      assert.match(err.message, /unknown pipeline "nope"; configured pipelines: hostile, transformed, badColumn, badTransform/);
      return true;
    });
  });
});
