import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext, SyncEngine } from '../src/sync';
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
    const pipelines: Record<string, unknown> = {
      items: { source: side('c', 'items'), target: side('icu', 'items'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 1000 },
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
