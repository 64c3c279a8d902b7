import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext, SyncEngine } from '../src/sync';
import { createCollatedDatabase, multiDatabaseConfig, type TestDatabase } from './helpers/db';
import { engineFor, runSync } from './helpers/engine';

// Compare-then-copy narrows every differing bucket to the keys whose row hashes differ, so a
// re-sync copies only the rows that changed (issue 28 item 3): before, a differing sub-bucket was
// copied whole, and a 1% spread change on 500,000 rows copied ~107,000 rows to write 5,000.
// Source and target in databases that collate text differently (libc C and ICU en-US), both ways.

const ROWS = 30_000;
const KEY = (g: string) => `(ARRAY['a','B','é','Z','_','ß','b','A'])[1 + ${g} % 8] || lpad(${g}::text, 6, '0')`;

/** Rows and an order-independent digest of a table (the same on both databases when the rows are equal). */
async function contents(db: TestDatabase, table: string) {
  const { rows } = await db.client.query<{ n: string; h: string | null }>(`SELECT count(*)::text AS n, sum(hashtextextended(t::text, 0)::numeric)::text AS h FROM ${table} t`);
  return { rows: Number(rows[0]!.n), digest: rows[0]!.h };
}

describe('compare-then-copy moves only the rows that changed', () => {
  let c: TestDatabase;
  let icu: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  let runs = 0;
  const dbOf = (e: 'c' | 'icu') => (e === 'c' ? c : icu);
  const side = (environment: string, table: string) => ({ profile: 'local', environment, table });

  before(async () => {
    [c, icu] = await Promise.all([createCollatedDatabase('narrow', 'c'), createCollatedDatabase('narrow', 'icu')]);
    for (const db of [c, icu])
      await db.client.query(`
        CREATE TABLE nums (id int PRIMARY KEY, n int NOT NULL, v text);
        INSERT INTO nums SELECT g, g, 'v' || g FROM generate_series(1, ${ROWS}) g;
        CREATE TABLE words (id text PRIMARY KEY, n int NOT NULL, v text);
        INSERT INTO words SELECT ${KEY('g')}, g, 'v' || g FROM generate_series(1, ${ROWS}) g;
        CREATE TABLE pairs (tenant text, n int, v text, PRIMARY KEY (tenant, n));
        INSERT INTO pairs SELECT (ARRAY['acme','Beta','émile','Zed','_x','ßig'])[1 + g % 6], g, 'v' || g FROM generate_series(1, ${ROWS}) g;
        CREATE TABLE wide (id int PRIMARY KEY, v text);
        INSERT INTO wide SELECT g, 'v' || g FROM generate_series(1, 60000) g;`);
    for (const db of [c, icu]) for (const t of ['nums', 'words', 'pairs', 'wide']) await db.client.query(`CREATE TABLE ${t}_dst (LIKE ${t} INCLUDING ALL); INSERT INTO ${t}_dst SELECT * FROM ${t}`);
    const pipelines: Record<string, unknown> = {
      nums: { source: side('c', 'nums'), target: side('icu', 'nums_dst'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 2000 },
      // One bucket of 60,000 rows: more changed keys than one batch of keys.
      wide: { source: side('c', 'wide'), target: side('icu', 'wide_dst'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 100_000 },
    };
    for (const [from, to] of [['c', 'icu'], ['icu', 'c']] as const) {
      pipelines[`words_${from}2${to}`] = { source: side(from, 'words'), target: side(to, 'words_dst'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 2000 };
      pipelines[`pairs_${from}2${to}`] = { source: side(from, 'pairs'), target: side(to, 'pairs_dst'), mode: 'upsert', key: ['tenant', 'n'], deletes: 'hard', batchRows: 2000 };
    }
    ({ pools, engine, ctx } = engineFor(multiDatabaseConfig({ c, icu }, pipelines)));
  });
  after(async () => {
    await pools?.end();
    await Promise.all([c?.close(), icu?.close()]);
  });

  /** Changes `share` of the source's rows spread over the key space, deletes 3 of them and inserts 2; returns the rows the target must get. */
  async function change(db: TestDatabase, table: string, every: number, insert: string) {
    const upd = await db.client.query(`UPDATE ${table} SET v = v || ' changed' WHERE n % ${every} = 7`);
    const del = await db.client.query(`DELETE FROM ${table} WHERE n IN (SELECT n FROM ${table} WHERE n % ${every} = 7 ORDER BY n LIMIT 3)`);
    const ins = await db.client.query(`INSERT INTO ${table} ${insert}`);
    return { written: (upd.rowCount ?? 0) - (del.rowCount ?? 0) + (ins.rowCount ?? 0), deleted: del.rowCount ?? 0 };
  }

  async function resync(pipeline: string, source: TestDatabase, target: TestDatabase, table: string, want: { written: number; deleted: number }) {
    const r = await runSync(engine, ctx, pipeline, `narrow-${++runs}`);
    assert.equal(r.plan.resync?.method, 'compare', r.plan.resync?.reason);
    assert.deepEqual(await contents(target, `${table}_dst`), await contents(source, table), 'target equals source');
    assert.equal(r.written, want.written, 'rows written');
    assert.equal(r.deleted, want.deleted, 'rows deleted');
    assert.equal(r.copied, want.written, `only the changed rows are copied (${r.copied})`);
    return r;
  }

  test('1% spread on an integer key: digested sub-buckets are narrowed to keys; copied = written', async () => {
    const want = await change(c, 'nums', 100, `VALUES (${ROWS + 1}, ${ROWS + 1}, 'new'), (${ROWS + 2}, ${ROWS + 2}, 'new')`);
    const r = await resync('nums', c, icu, 'nums', want);
    assert.equal(r.plan.resync?.digests, true);
    // Nothing changed since: nothing copied.
    const again = await runSync(engine, ctx, 'nums', `narrow-${++runs}`);
    assert.deepEqual([again.copied, again.written, again.deleted], [0, 0, 0]);
  });

  for (const [from, to] of [['c', 'icu'], ['icu', 'c']] as const) {
    test(`1% spread on a text key, ${from} source → ${to} target: only the changed rows move, none lost`, async () => {
      const want = await change(dbOf(from), 'words', 100, `VALUES ('B999991', 999991, 'new'), ('é999992', 999992, 'new')`);
      await resync(`words_${from}2${to}`, dbOf(from), dbOf(to), 'words', want);
    });

    test(`1% spread on a composite (text, int) key, ${from} source → ${to} target`, async () => {
      const want = await change(dbOf(from), 'pairs', 100, `VALUES ('Beta', 999991, 'new'), ('_x', 999992, 'new')`);
      await resync(`pairs_${from}2${to}`, dbOf(from), dbOf(to), 'pairs', want);
    });
  }

  test('20% spread in one bucket (row hashes of the whole bucket, keys fetched in batches): copied = written', async () => {
    const upd = await c.client.query(`UPDATE wide SET v = v || ' changed' WHERE id % 5 = 2`);
    const r = await runSync(engine, ctx, 'wide', `narrow-${++runs}`);
    assert.equal(r.plan.resync?.method, 'compare', r.plan.resync?.reason);
    assert.equal(r.plan.resync?.digests, false);
    assert.equal(r.plan.resync?.buckets.length, 1);
    assert.deepEqual(await contents(icu, 'wide_dst'), await contents(c, 'wide'));
    assert.deepEqual([r.copied, r.written, r.deleted], [upd.rowCount, upd.rowCount, 0]);
  });
});
