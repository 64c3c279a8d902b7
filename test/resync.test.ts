import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext, ResyncBucketResult, SyncEngine } from '../src/sync';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { engineFor } from './helpers/engine';

// Compare-then-copy re-sync on the engine alone (real PostgreSQL, no Temporal), driven the way the
// workflow drives it: plan (which probes and chooses), buckets two at a time, finish.

const COLS = ['id', 'name', 'amount', 'note'];
const ROWS = 20_000;

describe('compare-then-copy re-sync against real PostgreSQL', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;

  const local = (table: string) => ({ profile: 'local', environment: 'test', table });

  before(async () => {
    db = await createTestDatabase('resync');
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(12,2), note text);
      INSERT INTO src SELECT g, 'n' || g, g * 1.5, repeat('x', 40) FROM generate_series(1, ${ROWS}) g;
      CREATE TABLE dst (LIKE src INCLUDING ALL);
      CREATE TABLE kept (LIKE src INCLUDING ALL);
      CREATE TABLE pair_src (tenant text, id int, v text, PRIMARY KEY (tenant, id));
      INSERT INTO pair_src SELECT 't' || (g % 3), g, 'v' || g FROM generate_series(1, 6000) g;
      CREATE TABLE pair (LIKE pair_src INCLUDING ALL);
    `);
    const config = testConfig(db, {
      dst: { source: local('src'), target: local('dst'), mode: 'upsert', key: ['id'], deletes: 'hard', batchRows: 1000 },
      kept: { source: local('src'), target: local('kept'), mode: 'upsert', key: ['id'], batchRows: 1000 },
      pair: { source: local('pair_src'), target: local('pair'), mode: 'upsert', key: ['tenant', 'id'], deletes: 'hard', batchRows: 500 },
    });
    ({ pools, engine, ctx } = engineFor(config));
  });

  after(async () => {
    await pools.end();
    await db.close();
  });

  /** A whole run: plan with compare allowed; then re-sync buckets (or partitions, for a merge) two at a time; finish. */
  async function sync(pipeline: string, runId: string) {
    const plan = await engine.plan(ctx, { pipeline, runId, partitioned: true, compare: true });
    const results: ResyncBucketResult[] = [];
    if (plan.resync?.method === 'compare') {
      const queue = plan.resync.buckets.filter((b) => !b.done);
      const { leafRows, digests, groupRows } = plan.resync;
      await Promise.all(
        [0, 1].map(async () => {
          for (let b = queue.shift(); b; b = queue.shift()) results.push(await engine.resyncBucket(ctx, { pipeline, runId, bucket: b.bucket, leafRows, digests, groupRows }));
        }),
      );
    } else {
      for (const part of plan.partitions!)
        for (let after = part.cursor, done = part.done; !done; ) ({ cursor: after, done } = await engine.chunk(ctx, { pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad }));
    }
    await engine.finish(ctx, { pipeline, runId });
    const sum = (k: 'rowsWritten' | 'rowsDeleted' | 'rowsCopied') => results.reduce((n, r) => n + r[k], 0);
    return { plan, results, written: sum('rowsWritten'), deleted: sum('rowsDeleted'), copied: sum('rowsCopied') };
  }

  const xmins = async (table: string) => new Map((await db.client.query<{ id: number; x: string }>(`SELECT id, xmin::text AS x FROM ${table}`)).rows.map((r) => [r.id, r.x]));
  const equal = async (a: string, b: string) => assert.deepEqual(await relationChecksum(db.client, a, COLS, ['id']), await relationChecksum(db.client, b, COLS, ['id']));

  /** Rows whose xmin changed between two snapshots (rewritten), and rows that appeared. */
  function rewritten(before: Map<number, string>, afterwards: Map<number, string>): number {
    let n = 0;
    for (const [id, x] of afterwards) if (before.get(id) !== x) n += 1;
    return n;
  }

  test('a first load into an empty target is not compared; a re-sync of identical tables writes nothing', async () => {
    const first = await sync('dst', 'first');
    assert.equal(first.plan.resync, undefined, 'an empty target loads as before');
    assert.equal(first.plan.initialLoad, true);
    await equal('dst', 'src');
    const before = await xmins('dst');
    const { plan, written, deleted, copied, results } = await sync('dst', 'same');
    assert.equal(plan.resync?.method, 'compare', plan.resync?.reason);
    assert.equal(plan.resync?.probe.changedRows, 0);
    assert.ok(plan.resync!.buckets.length >= 10, `${plan.resync!.buckets.length} buckets`);
    assert.deepEqual([written, deleted, copied], [0, 0, 0]);
    assert.ok(results.every((r) => r.keysCompared === 0), 'equal digests move no keys');
    assert.equal(rewritten(before, await xmins('dst')), 0);
    const state = await db.client.query(`SELECT phase, run_id FROM lakebase_worker.sync_state WHERE pipeline = 'dst'`);
    assert.deepEqual(state.rows[0], { phase: 'idle', run_id: null });
  });

  for (const [label, share, where] of [
    ['1% changed, spread', 0.01, `id % 100 = 37 AND id <= ${ROWS}`],
    ['1% changed, clustered', 0.01, `id BETWEEN 12001 AND 12200`],
    ['10% changed, spread', 0.1, `id % 10 = 4 AND id <= ${ROWS}`],
    ['10% changed, clustered', 0.1, `id BETWEEN 3001 AND 5000`],
  ] as const) {
    test(`${label}: converges to equal checksums, writing only the changed rows`, async () => {
      const changed = Math.round(ROWS * share);
      // Updates, plus a few inserts and deletes at the edges of the changed rows.
      const upd = await db.client.query(`UPDATE src SET amount = amount + 1, note = 'changed ${label}' WHERE ${where}`);
      assert.equal(upd.rowCount, changed);
      await db.client.query(`DELETE FROM src WHERE id IN (SELECT id FROM src WHERE ${where} ORDER BY id LIMIT 3)`);
      const top = Number((await db.client.query('SELECT max(id) AS m FROM src')).rows[0].m);
      await db.client.query(`INSERT INTO src VALUES (${top + 1}, 'new', 1, 'new'), (${top + 2}, 'new', 2, 'new')`);
      const before = await xmins('dst');
      const { plan, written, deleted, copied } = await sync('dst', `run-${label}`);
      assert.equal(plan.resync?.method, 'compare', plan.resync?.reason);
      await equal('dst', 'src');
      assert.equal(deleted, 3);
      assert.equal(written, changed - 3 + 2, 'updated and inserted rows');
      assert.ok(copied >= written, `${copied} copied`);
      assert.equal(rewritten(before, await xmins('dst')), changed - 3 + 2, 'no unchanged row rewritten');
      if (share === 0.01 && label.includes('clustered')) assert.ok(copied < changed * 3, `${copied} rows copied for ${changed} changed`);
    });
  }

  test('most rows of the middle bucket changed but few elsewhere: two more buckets are sampled, and it still compares', async () => {
    // About 40% of the table, all in the middle: the middle bucket alone would say "merge".
    const upd = await db.client.query(`UPDATE src SET note = 'middle' WHERE id BETWEEN ${ROWS * 0.3} AND ${ROWS * 0.7}`);
    const { plan, written } = await sync('dst', 'middle');
    assert.equal(plan.resync?.method, 'compare', plan.resync?.reason);
    assert.match(plan.resync!.reason, /in 3 sampled buckets/);
    assert.equal(written, upd.rowCount);
    await equal('dst', 'src');
  });

  test('most rows changed: the plan falls back to merging every row and says why', async () => {
    await db.client.query(`UPDATE src SET note = 'most' WHERE id % 10 <> 0`);
    const { plan } = await sync('dst', 'most');
    assert.equal(plan.resync?.method, 'merge');
    assert.match(plan.resync!.reason, /most rows changed/);
    assert.ok(plan.resync!.probe.changedRows > plan.resync!.probe.rows / 2);
    assert.ok(plan.partitions!.length > 0);
    await equal('dst', 'src');
  });

  test('a bucket retried after its commit reports the same rows and writes nothing more', async () => {
    await db.client.query(`UPDATE src SET name = 'retry' WHERE id BETWEEN 7001 AND 7050`);
    const runId = 'retry';
    const plan = await engine.plan(ctx, { pipeline: 'dst', runId, partitioned: true, compare: true });
    const { leafRows, digests } = plan.resync!;
    assert.deepEqual((await engine.plan(ctx, { pipeline: 'dst', runId, partitioned: true, compare: true })).resync!.buckets, plan.resync!.buckets, 'a retried plan keeps its buckets');
    const results = [];
    for (const b of plan.resync!.buckets) results.push(await engine.resyncBucket(ctx, { pipeline: 'dst', runId, bucket: b.bucket, leafRows, digests }));
    const hit = results.find((r) => r.rowsWritten > 0)!;
    assert.equal(results.reduce((n, r) => n + r.rowsWritten, 0), 50);
    const before = await xmins('dst');
    const again = await engine.resyncBucket(ctx, { pipeline: 'dst', runId, bucket: hit.bucket, leafRows, digests });
    assert.deepEqual(again, { ...hit, rowsCopied: 0, rangesDiffering: 0, keysCompared: 0, alreadyCommitted: true });
    assert.equal(rewritten(before, await xmins('dst')), 0);
    const resumed = await engine.plan(ctx, { pipeline: 'dst', runId, partitioned: true, compare: true });
    assert.equal(resumed.resumed, true);
    assert.ok(resumed.resync!.buckets.every((b) => b.done));
    await engine.finish(ctx, { pipeline: 'dst', runId });
    await equal('dst', 'src');
    const { rows } = await db.client.query(`SELECT count(*)::int AS n FROM lakebase_worker.sync_bucket WHERE pipeline = 'dst'`);
    assert.equal(rows[0].n, 0, 'finish clears the buckets');
  });

  test('deletes: ignore keeps target rows whose key left the source, and still copies changes', async () => {
    await sync('kept', 'kept-1');
    await db.client.query(`DELETE FROM src WHERE id BETWEEN 501 AND 510; UPDATE src SET name = 'kept' WHERE id BETWEEN 601 AND 620`);
    const { plan, written, deleted } = await sync('kept', 'kept-2');
    assert.equal(plan.resync?.method, 'compare');
    assert.deepEqual([written, deleted], [20, 0]);
    assert.equal(Number((await db.client.query('SELECT count(*) FROM kept WHERE id BETWEEN 501 AND 510')).rows[0].count), 10);
  });

  test('a composite text key converges too', async () => {
    await sync('pair', 'pair-1');
    await db.client.query(`UPDATE pair_src SET v = 'w' || id WHERE id % 97 = 0; DELETE FROM pair_src WHERE id BETWEEN 100 AND 104; INSERT INTO pair_src VALUES ('t"q\\\\', 1, 'odd key')`);
    const { plan, deleted } = await sync('pair', 'pair-2');
    assert.equal(plan.resync?.method, 'compare', plan.resync?.reason);
    assert.equal(deleted, 5);
    const sum = (t: string) => relationChecksum(db.client, t, ['tenant', 'id', 'v'], ['tenant', 'id']);
    assert.deepEqual(await sum('pair'), await sum('pair_src'));
  });
});
