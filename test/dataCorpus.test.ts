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

// 63 bytes exactly: the longest name PostgreSQL keeps intact.
const LONG = `名前_${'x'.repeat(63 - Buffer.byteLength('名前_'))}`;
const HOSTILE_COL = `a"; drop table x; --`;

describe('bad-input data corpus: synced exactly, or a precise non-retryable error and no partial write', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let acts: ReturnType<typeof createSyncActivities>;
  let run = 0;

  before(async () => {
    db = await createTestDatabase('corpus');
    await db.client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
      CREATE DOMAIN positive_int AS int CHECK (VALUE > 0);
      CREATE TABLE x (id int);
      CREATE TABLE odd (
        id int PRIMARY KEY, tags text[], grid int[][], m mood, p positive_int, at timestamptz, d date, span interval,
        u uuid, n numeric, blob bytea, doc jsonb, "${LONG}" text, "${HOSTILE_COL.replace(/"/g, '""')}" text
      );
      INSERT INTO odd VALUES
        (1, '{a,"b,c",NULL,"d\\"e"}', '{{1,2},{3,4}}', 'happy', 7, 'infinity', '-infinity', '1 year 2 mons 3 days 04:05:06.789', gen_random_uuid(), 'NaN', '\\x00ff', '{"k": [1, "two", null, {"x": true}]}', 'long', 'hostile'),
        (2, '{}', NULL, 'sad', 1, '-infinity', 'infinity', '-1 day', NULL, '1e-30', '', 'null', NULL, NULL),
        (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      INSERT INTO odd (id, blob) SELECT 4, decode(repeat(md5('big'), 1600000), 'hex');  -- a 25.6 MB bytea (51 MB as COPY text)
      CREATE TABLE odd_copy (LIKE odd INCLUDING ALL, total_chars int GENERATED ALWAYS AS (coalesce(length("${LONG}"), 0)) STORED);
      CREATE TABLE odd_nokey (LIKE odd);
      CREATE TABLE src_text (id int PRIMARY KEY, v text, amount numeric);
      INSERT INTO src_text VALUES (1, '12', 123.45), (2, 'abc', 1), (3, '7', 99999.99);
      CREATE TABLE dst_int (id int PRIMARY KEY, v int, amount numeric);
      CREATE TABLE dst_narrow (id int PRIMARY KEY, v text, amount numeric(5,2));
      CREATE TABLE dst_nul (id int PRIMARY KEY, v text, amount numeric);
    `);
    const local = (table: string) => ({ profile: 'local', environment: 'test', table });
    const config = testConfig(db, {
      odd: { source: local('odd'), target: local('odd_copy'), key: ['id'], batchRows: 2 },
      nokey: { source: local('odd'), target: local('odd_nokey'), key: ['id'] },
      mismatch: { source: local('src_text'), target: local('dst_int'), key: ['id'], transform: { exclude: ['amount'], columns: { amount: '0' } } },
      narrow: { source: local('src_text'), target: local('dst_narrow'), key: ['id'] },
      nul: { source: local('src_text'), target: local('dst_nul'), key: ['id'], transform: { rowTransform: 'addNul' } },
    });
    const deps = buildDeps({ config, logger: createLogger({ level: 'silent' }), rowTransforms: { addNul: (r) => ({ ...r, v: `${r.v}\u0000` }) } });
    pools = deps.pools;
    acts = createSyncActivities(deps);
  });

  after(async () => {
    await pools.end();
    await db.close();
  });

  async function sync(pipeline: string) {
    const runId = `corpus-${++run}`;
    await acts.planSync({ pipeline, runId });
    let after: CursorValue[] | null = null;
    for (;;) {
      const r = await acts.syncChunk({ pipeline, runId, after });
      after = r.cursor;
      if (r.done) break;
    }
    await acts.finishSync({ pipeline, runId });
  }

  async function failsWith(pipeline: string, type: string, message: RegExp) {
    await assert.rejects(sync(pipeline), (err: unknown) => {
      assert.ok(err instanceof ApplicationFailure, String(err));
      assert.equal(err.type, type);
      assert.equal(err.nonRetryable, true);
      assert.match(err.message, message);
      return true;
    });
  }

  test('arrays, enums, domains, infinity, interval, NaN, jsonb, a 25 MB bytea, 63-byte and hostile column names survive exactly; generated target columns are computed by the target', async () => {
    await sync('odd');
    const cols = ['id', 'tags', 'grid', 'm', 'p', 'at', 'd', 'span', 'u', 'n', 'blob', 'doc', LONG, HOSTILE_COL];
    assert.deepEqual(await relationChecksum(db.client, 'odd_copy', cols, ['id']), await relationChecksum(db.client, 'odd', cols, ['id']));
    const { rows } = await db.client.query(`SELECT id, total_chars FROM odd_copy ORDER BY id`);
    assert.deepEqual(rows.map((r) => r.total_chars), [4, 0, 0, 0]);
    assert.equal((await db.client.query(`SELECT to_regclass('x') IS NOT NULL AS ok`)).rows[0].ok, true);
  });

  test('upsert into a target without a key is refused while planning, with the fix', async () => {
    await failsWith('nokey', 'LakebaseConfigError', /mode upsert merges on key \(id\), but odd_nokey has no primary key or unique index on exactly those columns; add one .* or use mode append/);
  });

  test('a value the target type rejects (text "abc" into int) fails without a partial write', async () => {
    await failsWith('mismatch', 'LakebaseDataError', /invalid input syntax for type integer: "abc"; SQLSTATE 22P02/);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst_int')).rows[0].n, 0);
  });

  test('an out-of-range numeric fails without a partial write', async () => {
    await failsWith('narrow', 'LakebaseDataError', /numeric field overflow; SQLSTATE 22003/);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst_narrow')).rows[0].n, 0);
  });

  test('a NUL character (from a row transform) is rejected by PostgreSQL without a partial write', async () => {
    await failsWith('nul', 'LakebaseDataError', /SQLSTATE 22/);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst_nul')).rows[0].n, 0);
  });
});
