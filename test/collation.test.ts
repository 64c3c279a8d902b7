import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PoolRegistry } from '../src/db/pools';
import { SyncError, type CallContext, type SyncEngine } from '../src/sync';
import { compareShape } from '../src/sync/compare';
import { createCollatedDatabase, multiDatabaseConfig, type TestCollation, type TestDatabase } from './helpers/db';
import { engineFor, runSync, runVerify } from './helpers/engine';

// Source and target on servers (here: databases) that order text differently: libc `C` (byte
// order: 'B…' < 'Z…' < '_…' < 'a…' < 'ß…' < 'é…') and ICU en-US ('_…' < 'a…' < 'B…' < 'é…' < 'ß…' < 'Z…').
// Bucket bounds, split points and range predicates drawn on one side and applied on the other
// must mean the same rows on both, or compares delete and copy the wrong ones.

const ROWS = 20_000;
/** Mixed case, non-ASCII and punctuation first letters: every pair of the two orders disagrees somewhere. */
const KEY = (g: string) => `(ARRAY['a','B','é','Z','_','ß','b','A'])[1 + ${g} % 8] || lpad(${g}::text, 6, '0')`;

/** Rows and an order-independent digest of a table's rows (the same text on both databases when the rows are equal). */
async function contents(db: TestDatabase, table: string, columns: string[]) {
  const row = `ROW(${columns.map((c) => `t.${c}`).join(', ')})::text`;
  const { rows } = await db.client.query<{ n: string; h: string | null }>(`SELECT count(*)::text AS n, sum(hashtextextended(${row}, 0)::numeric)::text AS h FROM ${table} t`);
  return { rows: Number(rows[0]!.n), digest: rows[0]!.h };
}

const count = async (db: TestDatabase, table: string) => Number((await db.client.query(`SELECT count(*) FROM ${table}`)).rows[0].count);

describe('compares between servers that collate text differently', () => {
  const dbs = {} as Record<TestCollation, TestDatabase>;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  const side = (environment: TestCollation, table: string) => ({ profile: 'local', environment, table });
  const directions: { name: string; source: TestCollation; target: TestCollation }[] = [
    { name: 'C source → ICU en-US target', source: 'c', target: 'icu' },
    { name: 'ICU en-US source → C target', source: 'icu', target: 'c' },
  ];
  const WORD_COLS = ['id', 'n', 'v', 'updated_at'];
  const PAIR_COLS = ['tenant', 'n', 'v'];

  before(async () => {
    dbs.c = await createCollatedDatabase('coll', 'c');
    dbs.icu = await createCollatedDatabase('coll', 'icu');
    const words = (t: string) => `CREATE TABLE ${t} (id text PRIMARY KEY, n int NOT NULL, v text, updated_at timestamptz NOT NULL)`;
    const pairs = (t: string) => `CREATE TABLE ${t} (tenant text, n int, v text, PRIMARY KEY (tenant, n))`;
    for (const db of Object.values(dbs)) {
      await db.client.query(`
        ${words('words_rs_src')}; ${words('words_del_src')}; ${words('words_rs')}; ${words('words_del')};
        ${pairs('pairs_src')}; ${pairs('pairs')};
        INSERT INTO words_rs_src SELECT ${KEY('g')}, g, 'v' || g, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, ${ROWS}) g;
        INSERT INTO words_del_src SELECT * FROM words_rs_src;
        INSERT INTO pairs_src SELECT (ARRAY['acme','Beta','émile','Zed','_x','ßig'])[1 + g % 6], g, 'v' || g FROM generate_series(1, 6000) g;
      `);
    }
    // The issue's table: a `text COLLATE "C"` key in the C database, a target the worker creates on ICU.
    await dbs.c.client.query(`
      CREATE TABLE items (id text COLLATE "C" PRIMARY KEY, n int NOT NULL, v text);
      INSERT INTO items SELECT ${KEY('g')}, g, 'v' || g FROM generate_series(1, ${ROWS}) g;
    `);
    // Columns of several collations, one the target database lacks until a test creates it there.
    await dbs.c.client.query(`
      CREATE COLLATION german (provider = icu, locale = 'de-DE');
      CREATE TABLE labels (id text COLLATE "C" PRIMARY KEY, posix text COLLATE "POSIX", icu text COLLATE "und-x-icu", tags text[] COLLATE "C", plain text, n int);
      INSERT INTO labels SELECT ${KEY('g')}, 'p' || g, 'i' || g, ARRAY['T' || g, 't' || g], 'x' || g, g FROM generate_series(1, 500) g;
      CREATE TABLE germans (id int PRIMARY KEY, name text COLLATE german);
      INSERT INTO germans VALUES (1, 'Äpfel'), (2, 'Zoo');
      CREATE TABLE log (at text NOT NULL, msg text);
      INSERT INTO log SELECT ${KEY('(g / 3)')}, 'm' || g FROM generate_series(3, 6002) g;
    `);
    await dbs.icu.client.query(`CREATE TABLE log (at text, msg text)`);
    const pipelines: Record<string, unknown> = {
      items: { source: side('c', 'items'), target: side('icu', 'items'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 1000 },
      labels: { source: side('c', 'labels'), target: side('icu', 'labels'), mode: 'upsert', key: ['id'], batchRows: 200, schemaChanges: 'evolve' },
      germans: { source: side('c', 'germans'), target: side('icu', 'germans'), mode: 'full-refresh', key: ['id'] },
      same_icu: { source: side('icu', 'words_rs_src'), target: side('icu', 'words_del'), mode: 'upsert', key: ['id'] },
      log: { source: side('c', 'log'), target: side('icu', 'log'), mode: 'append', cursor: 'at', batchRows: 400, verify: 'counts' },
    };
    for (const d of directions) {
      const tag = `${d.source}2${d.target}`;
      pipelines[`resync_${tag}`] = { source: side(d.source, 'words_rs_src'), target: side(d.target, 'words_rs'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 1000 };
      pipelines[`deletes_${tag}`] = {
        source: side(d.source, 'words_del_src'), target: side(d.target, 'words_del'), mode: 'upsert', key: ['id'], cursor: 'updated_at', deletes: 'hard', batchRows: 1000,
      };
      pipelines[`pairs_${tag}`] = { source: side(d.source, 'pairs_src'), target: side(d.target, 'pairs'), mode: 'upsert', key: ['tenant', 'n'], deletes: 'hard', batchRows: 500 };
    }
    ({ pools, engine, ctx } = engineFor(multiDatabaseConfig(dbs, pipelines)));
  });

  after(async () => {
    await pools?.end();
    for (const db of Object.values(dbs)) await db.close();
  });

  test('the issue: text COLLATE "C" key, target created on ICU en-US, upsert + deletes: hard, batchRows 1000 — every re-sync keeps all 20,000 rows', async () => {
    const cols = ['id', 'n', 'v'];
    await runSync(engine, ctx, 'items', 'items-1');
    assert.equal(await count(dbs.icu, 'items'), ROWS, 'the first sync');
    await dbs.c.client.query(`UPDATE items SET v = v || '+' WHERE n % 100 = 3`);
    const changed = await runSync(engine, ctx, 'items', 'items-2');
    assert.equal(await count(dbs.icu, 'items'), ROWS, 'a re-sync after 1% of rows changed');
    assert.deepEqual(await contents(dbs.icu, 'items', cols), await contents(dbs.c, 'items', cols));
    assert.equal(changed.deleted, 0);
    assert.equal(changed.written, ROWS / 100);
    const unchanged = await runSync(engine, ctx, 'items', 'items-3');
    assert.equal(await count(dbs.icu, 'items'), ROWS, 'a re-sync with nothing changed');
    assert.deepEqual([unchanged.written, unchanged.deleted], [0, 0]);
    const v = await runVerify(engine, ctx, 'items');
    assert.deepEqual([v.mismatches, v.sourceRows, v.targetRows], [0, ROWS, ROWS]);
  });

  /** Each column's collation in a database's table ('default' where none was given), by column name. */
  const collations = async (db: TestDatabase, table: string) =>
    Object.fromEntries(
      (
        await db.client.query<{ name: string; coll: string | null }>(
          `SELECT a.attname AS name, CASE a.attcollation WHEN 0 THEN NULL WHEN 100 THEN 'default' ELSE c.collname END AS coll
             FROM pg_attribute a LEFT JOIN pg_collation c ON c.oid = a.attcollation WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
          [table],
        )
      ).rows.map((r) => [r.name, r.coll]),
    );

  test('target creation keeps each column\'s collation (C, POSIX, ICU, on an array too); the database default stays the default', async () => {
    await runSync(engine, ctx, 'items', 'items-created');
    assert.equal((await collations(dbs.icu, 'items')).id, 'C', 'the issue: the key kept its COLLATE "C"');
    await runSync(engine, ctx, 'labels', 'labels-1');
    assert.deepEqual(await collations(dbs.icu, 'labels'), { id: 'C', posix: 'POSIX', icu: 'und-x-icu', tags: 'C', plain: 'default', n: null });
    const cols = ['id', 'posix', 'icu', 'tags', 'plain', 'n'];
    assert.deepEqual(await contents(dbs.icu, 'labels', cols), await contents(dbs.c, 'labels', cols));
  });

  test('a collation the target database lacks fails planning naming the column, the collation and the fix', async () => {
    await assert.rejects(
      engine.plan(ctx, { pipeline: 'germans', runId: 'germans-1', partitioned: true }),
      (err: unknown) => {
        assert.ok(err instanceof SyncError, String(err));
        assert.match(err.message, /pipelines\.germans\.target: column "name" has collation "public"\."german" in the source, which the target database lacks; create it there first \(CREATE COLLATION/);
        return true;
      },
    );
    assert.equal((await collations(dbs.icu, 'labels')).id, 'C');
    assert.equal((await dbs.icu.client.query(`SELECT to_regclass('germans') AS t`)).rows[0].t, null, 'nothing was created');
    await dbs.icu.client.query(`CREATE COLLATION german (provider = icu, locale = 'de-DE')`);
    await runSync(engine, ctx, 'germans', 'germans-2');
    assert.equal((await collations(dbs.icu, 'germans')).name, 'german');
  });

  test('schema changes: an added column keeps its collation (evolve); a changed collation is refused until the target column has it', async () => {
    await runSync(engine, ctx, 'labels', 'labels-2');
    await dbs.c.client.query(`ALTER TABLE labels ADD COLUMN extra text COLLATE "POSIX"`);
    await runSync(engine, ctx, 'labels', 'labels-3');
    assert.equal((await collations(dbs.icu, 'labels')).extra, 'POSIX', 'evolve added the column with its collation');
    await dbs.c.client.query(`ALTER TABLE labels ALTER COLUMN plain TYPE text COLLATE "C"`);
    await assert.rejects(runSync(engine, ctx, 'labels', 'labels-4'), (err: unknown) => {
      assert.ok(err instanceof SyncError, String(err));
      assert.equal(err.type, 'LakebaseSchemaChanged');
      assert.match(err.message, /column "plain" changed collation from the default to "C" \(the target column has the default\)\. To go on: .*COLLATE/);
      return true;
    });
    await dbs.icu.client.query(`ALTER TABLE labels ALTER COLUMN plain TYPE text COLLATE "C"`);
    await runSync(engine, ctx, 'labels', 'labels-5');
  });

  test('byte order only where needed: C stays as it is, ICU against C gets COLLATE "C", the same ICU collation on both sides keeps its own order (and index)', async () => {
    const collated = async (pipeline: string, s: TestCollation, t: TestCollation) => {
      const { shape } = await compareShape(dbs[s].client, dbs[t].client, engine.resolve({ pipeline }), 'deletes', null);
      return [shape.source.collateC, shape.target.collateC];
    };
    assert.deepEqual(await collated('resync_c2icu', 'c', 'icu'), [false, true]);
    assert.deepEqual(await collated('resync_icu2c', 'icu', 'c'), [true, false]);
    assert.deepEqual(await collated('same_icu', 'icu', 'icu'), [false, false]);
    assert.deepEqual(await collated('pairs_c2icu', 'c', 'icu'), [false, true], 'a composite key: its first column');
  });

  test('keyless append on a text cursor: verify counts rows up to the cursor on the source only; the target holds what the syncs copied', async () => {
    await runSync(engine, ctx, 'log', 'log-1');
    assert.equal(await count(dbs.icu, 'log'), 6000);
    // Rows after the cursor in the source's (byte) order came after the sync: not differences yet.
    await dbs.c.client.query(`INSERT INTO log SELECT 'ü' || g, 'late' FROM generate_series(1, 30) g`);
    const v = await runVerify(engine, ctx, 'log');
    assert.deepEqual([v.mismatches, v.sourceRows, v.targetRows], [0, 6000, 6000]);
    await runSync(engine, ctx, 'log', 'log-2');
    assert.equal(await count(dbs.icu, 'log'), 6030);
    assert.equal((await runVerify(engine, ctx, 'log')).mismatches, 0);
  });

  for (const d of directions) {
    const tag = `${d.source}2${d.target}`;
    const [src, tgt] = [() => dbs[d.source], () => dbs[d.target]];

    test(`${d.name}: compare-then-copy re-sync copies what changed and deletes only keys the source lost`, async () => {
      await runSync(engine, ctx, `resync_${tag}`, `rs-${tag}-1`);
      await src().client.query(`
        UPDATE words_rs_src SET v = v || '+' WHERE n % 100 = 7;
        DELETE FROM words_rs_src WHERE n % 400 = 11;
        INSERT INTO words_rs_src SELECT ${KEY('g')} || 'x', g, 'new', now() FROM generate_series(1, 50) g;
      `);
      const r = await runSync(engine, ctx, `resync_${tag}`, `rs-${tag}-2`);
      assert.equal(r.plan.resync?.method, 'compare');
      assert.deepEqual(await contents(tgt(), 'words_rs', WORD_COLS), await contents(src(), 'words_rs_src', WORD_COLS));
      assert.equal(r.deleted, ROWS / 400);
      const again = await runSync(engine, ctx, `resync_${tag}`, `rs-${tag}-3`);
      assert.deepEqual([again.written, again.deleted], [0, 0], 'identical tables: nothing written or deleted');
    });

    test(`${d.name}: delete detection deletes exactly the keys the source lost`, async () => {
      await runSync(engine, ctx, `deletes_${tag}`, `del-${tag}-1`);
      assert.equal(await count(tgt(), 'words_del'), ROWS);
      await src().client.query(`DELETE FROM words_del_src WHERE n % 100 = 42`);
      const r = await runSync(engine, ctx, `deletes_${tag}`, `del-${tag}-2`);
      assert.equal(r.deleted, ROWS / 100);
      assert.deepEqual(await contents(tgt(), 'words_del', WORD_COLS), await contents(src(), 'words_del_src', WORD_COLS));
      assert.equal((await runSync(engine, ctx, `deletes_${tag}`, `del-${tag}-3`)).deleted, 0);
    });

    test(`${d.name}: composite (text, int) key — re-sync and verify name exactly the rows that differ`, async () => {
      await runSync(engine, ctx, `pairs_${tag}`, `pairs-${tag}-1`);
      const equal = await runVerify(engine, ctx, `pairs_${tag}`);
      assert.deepEqual([equal.mismatches, equal.sourceRows, equal.targetRows], [0, 6000, 6000], 'equal tables verify equal');
      await src().client.query(`
        UPDATE pairs_src SET v = v || '+' WHERE n % 97 = 5;
        DELETE FROM pairs_src WHERE n % 300 = 1;
        INSERT INTO pairs_src VALUES ('Émile', 1, 'new'), ('zed', 2, 'new'), ('b', 3, 'new');
      `);
      const r = await runSync(engine, ctx, `pairs_${tag}`, `pairs-${tag}-2`);
      assert.equal(r.deleted, 20);
      assert.deepEqual(await contents(tgt(), 'pairs', PAIR_COLS), await contents(src(), 'pairs_src', PAIR_COLS));
      // Two rows made to differ in the target: verify names both, and nothing else.
      await tgt().client.query(`UPDATE pairs SET v = 'tampered' WHERE (tenant, n) = ('Zed', 3); DELETE FROM pairs WHERE (tenant, n) = ('_x', 4)`);
      const v = await runVerify(engine, ctx, `pairs_${tag}`);
      assert.equal(v.mismatches, 2);
      assert.deepEqual(
        v.differences.map((x) => `${x.kind}:${x.key.join('/')}`).sort(),
        ['differs:Zed/3', 'missing:_x/4'],
      );
    });
  }
});
