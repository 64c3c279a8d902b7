import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext, SyncEngine, VerifyBucketResult } from '../src/sync';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { engineFor } from './helpers/engine';

// Delete detection and verify on the engine alone (real PostgreSQL, no Temporal), driven the way
// the workflow drives them: plan, buckets side by side, finish.

const COLS = ['id', 'name', 'amount', 'updated_at'];

describe('delete detection and verify against real PostgreSQL', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;

  const local = (table: string) => ({ profile: 'local', environment: 'test', table });
  const up = (target: string, more: Record<string, unknown> = {}) => ({
    source: local('src'), target: local(target), mode: 'upsert', key: ['id'], cursor: 'updated_at', batchRows: 1000, ...more,
  });

  before(async () => {
    db = await createTestDatabase('deletes');
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz NOT NULL);
      CREATE INDEX ON src (updated_at, id);
      INSERT INTO src SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 20000) g;
      CREATE TABLE hard (LIKE src INCLUDING ALL);
      CREATE TABLE soft (LIKE src INCLUDING ALL, deleted_at timestamptz);
      CREATE TABLE checked (LIKE src INCLUDING ALL);
      CREATE TABLE composite_src (tenant int, id int, v text, PRIMARY KEY (tenant, id));
      INSERT INTO composite_src SELECT g % 3, g, 'v' || g FROM generate_series(1, 6000) g;
      CREATE TABLE composite (LIKE composite_src INCLUDING ALL);
      CREATE TABLE log (at timestamptz NOT NULL, msg text);
      INSERT INTO log SELECT '2026-01-01'::timestamptz + (g / 10) * interval '1 minute', 'm' || g FROM generate_series(1, 5000) g;
      CREATE TABLE log_copy (LIKE log);
      CREATE COLLATION IF NOT EXISTS lbw_case_blind (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
      CREATE TABLE typed_src (id int PRIMARY KEY, a int, b int, i2 smallint, i8 bigint, t text COLLATE lbw_case_blind, vc varchar(20), u uuid,
        n numeric, f float8, c char(5), j jsonb, ts timestamptz);
      INSERT INTO typed_src SELECT g, g, g + 1, g % 100, g * 10000000000, 'text ' || g, 'vc' || g, md5(g::text)::uuid,
        g + 0.5, g * 0.25, 'c' || (g % 10), jsonb_build_object('x', g + 0.5), '2026-01-01'::timestamptz + g * interval '1 minute'
        FROM generate_series(1, 3000) g;
      INSERT INTO typed_src VALUES (0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
      CREATE TABLE typed (LIKE typed_src INCLUDING ALL);
    `);
    const config = testConfig(db, {
      hard: up('hard', { deletes: 'hard' }),
      soft: up('soft', { deletes: 'soft', softDeleteColumn: 'deleted_at' }),
      checked: up('checked', { verify: 'checksums', deletes: 'hard' }),
      counted: up('checked', { verify: 'counts' }),
      composite: { source: local('composite_src'), target: local('composite'), mode: 'upsert', key: ['tenant', 'id'], deletes: 'hard', verify: 'checksums', batchRows: 500 },
      typed: { source: local('typed_src'), target: local('typed'), mode: 'upsert', key: ['id'], verify: 'checksums', batchRows: 1000 },
      log: { source: local('log'), target: local('log_copy'), mode: 'append', cursor: 'at', verify: 'counts', batchRows: 400 },
    });
    ({ pools, engine, ctx } = engineFor(config));
  });

  after(async () => {
    await pools.end();
    await db.close();
  });

  /** A whole run as the workflow makes it: partitions, then delete buckets two at a time, then finish. */
  async function sync(pipeline: string, runId: string) {
    const plan = await engine.plan(ctx, { pipeline, runId, partitioned: true });
    for (const part of plan.partitions!) {
      for (let after = part.cursor; !part.done; ) {
        const c = await engine.chunk(ctx, { pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
        after = c.cursor;
        part.done = c.done;
      }
    }
    let rowsDeleted = 0;
    if (plan.deletes && plan.deletes !== 'ignore' && !plan.initialLoad) {
      const d = await engine.planDeletes(ctx, { pipeline, runId });
      const queue = d.buckets.filter((b) => !b.done);
      await Promise.all(
        [0, 1].map(async () => {
          for (let b = queue.shift(); b; b = queue.shift()) {
            const r = await engine.deleteBucket(ctx, { pipeline, runId, bucket: b.bucket, leafRows: d.leafRows });
            rowsDeleted += r.rowsDeleted;
          }
        }),
      );
    }
    await engine.finish(ctx, { pipeline, runId });
    return { plan, rowsDeleted };
  }

  async function verify(pipeline: string) {
    const plan = await engine.planVerify(ctx, { pipeline });
    const results: VerifyBucketResult[] = [];
    for (const range of plan.buckets) results.push(await engine.verifyBucket(ctx, { pipeline, mode: plan.mode, range, leafRows: plan.leafRows, runCursor: plan.runCursor }));
    return { plan, mismatches: results.reduce((n, r) => n + r.mismatches, 0), tolerated: results.reduce((n, r) => n + r.tolerated, 0), results };
  }

  const xmins = async (table: string) => new Map((await db.client.query<{ id: number; x: string }>(`SELECT id, xmin::text AS x FROM ${table}`)).rows.map((r) => [r.id, r.x]));

  test('deletes: hard — 1% of source rows deleted (spread and clustered) are gone after the next sync, nothing else is touched', async () => {
    await sync('hard', 'hard-1');
    assert.equal(Number((await db.client.query('SELECT count(*) FROM hard')).rows[0].count), 20000);
    const before = await xmins('hard');
    // 100 spread over the table, 100 in one range: 1% in all.
    const { rows: gone } = await db.client.query<{ id: number }>(`DELETE FROM src WHERE id % 200 = 7 OR id BETWEEN 15008 AND 15107 RETURNING id`);
    assert.equal(gone.length, 200);
    const { plan, rowsDeleted } = await sync('hard', 'hard-2');
    assert.equal(plan.deletes, 'hard');
    assert.equal(rowsDeleted, 200);
    assert.deepEqual(await relationChecksum(db.client, 'hard', COLS, ['id']), await relationChecksum(db.client, 'src', COLS, ['id']));
    const afterwards = await xmins('hard');
    for (const [id, x] of afterwards) assert.equal(x, before.get(id), `row ${id} was rewritten`);
    // The next run finds nothing to delete.
    assert.equal((await sync('hard', 'hard-3')).rowsDeleted, 0);
    const { rows } = await db.client.query(`SELECT rows_written FROM lakebase_worker.sync_state WHERE pipeline = 'hard'`);
    assert.equal(Number(rows[0].rows_written), 20000 + 200);
  });

  test('a delete bucket retried after its commit reports the same rows and deletes nothing more', async () => {
    await db.client.query(`DELETE FROM src WHERE id BETWEEN 101 AND 120`);
    const runId = 'hard-retry';
    const plan = await engine.plan(ctx, { pipeline: 'hard', runId, partitioned: true });
    for (const part of plan.partitions!) for (let after = part.cursor, done = part.done; !done; ) ({ cursor: after, done } = await engine.chunk(ctx, { pipeline: 'hard', runId, after, partition: part.partition }));
    const d = await engine.planDeletes(ctx, { pipeline: 'hard', runId });
    assert.deepEqual(await engine.planDeletes(ctx, { pipeline: 'hard', runId }), d, 'a retried plan returns the same buckets');
    const results = [];
    for (const b of d.buckets) results.push(await engine.deleteBucket(ctx, { pipeline: 'hard', runId, bucket: b.bucket, leafRows: d.leafRows }));
    assert.equal(results.reduce((n, r) => n + r.rowsDeleted, 0), 20);
    const hit = results.find((r) => r.rowsDeleted > 0)!;
    const again = await engine.deleteBucket(ctx, { pipeline: 'hard', runId, bucket: hit.bucket, leafRows: d.leafRows });
    assert.deepEqual(again, { ...hit, rangesChecked: 0, keysCompared: 0, alreadyCommitted: true });
    assert.ok(results.filter((r) => r.rangesChecked === 0).length > d.buckets.length / 2, 'buckets without deletes move no keys');
    await engine.finish(ctx, { pipeline: 'hard', runId });
    assert.equal(Number((await db.client.query('SELECT count(*) FROM hard WHERE id BETWEEN 101 AND 120')).rows[0].count), 0);
  });

  test('deletes: soft — gone keys are marked with a time, live rows keep NULL, a key that comes back is unmarked', async () => {
    await sync('soft', 'soft-1');
    await db.client.query(`DELETE FROM src WHERE id BETWEEN 2101 AND 2150`);
    const { rowsDeleted } = await sync('soft', 'soft-2');
    assert.equal(rowsDeleted, 50);
    const { rows } = await db.client.query(`SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS marked, count(*) AS n FROM soft`);
    assert.deepEqual([Number(rows[0].marked), Number(rows[0].n)], [50, Number((await db.client.query('SELECT count(*) FROM src')).rows[0].count) + 50]);
    assert.equal((await sync('soft', 'soft-3')).rowsDeleted, 0, 'marked rows are not marked again');
    await db.client.query(`INSERT INTO src VALUES (2101, 'back', 1, '2027-01-01')`);
    await sync('soft', 'soft-4');
    const back = (await db.client.query(`SELECT name, deleted_at FROM soft WHERE id = 2101`)).rows[0];
    assert.deepEqual(back, { name: 'back', deleted_at: null });
  });

  test('verify: a faithful target passes; a target edited behind the worker is named by key (missing, extra, differs)', async () => {
    await sync('checked', 'checked-1');
    const ok = await verify('checked');
    assert.equal(ok.mismatches, 0);
    assert.ok(ok.plan.buckets.length > 1, `${ok.plan.buckets.length} buckets`);
    assert.equal(ok.results.reduce((n, r) => n + r.sourceRows, 0), Number((await db.client.query('SELECT count(*) FROM src')).rows[0].count));
    await db.client.query(`UPDATE checked SET amount = amount + 0.01 WHERE id = 5000; DELETE FROM checked WHERE id = 7000; INSERT INTO checked VALUES (-5, 'extra', 0, '2026-01-01')`);
    const bad = await verify('checked');
    assert.equal(bad.mismatches, 3);
    const found = bad.results.flatMap((r) => r.differences).map((d) => `${d.kind}:${d.key.join(',')}`).sort();
    assert.deepEqual(found, ['differs:5000', 'extra:-5', 'missing:7000']);
    // Counts see the missing row, not the changed value; with deletes: ignore the extra row is one the pipeline keeps.
    const counted = await verify('counted');
    assert.deepEqual(counted.results.flatMap((r) => r.differences).map((d) => `${d.kind}:${d.key.join(',')}`), ['missing:7000']);
    assert.equal(counted.tolerated, 1);
    await db.client.query(`UPDATE checked SET amount = amount - 0.01 WHERE id = 5000; INSERT INTO checked SELECT * FROM src WHERE id = 7000; DELETE FROM checked WHERE id = -5`);
  });

  test('verify checksums tell every changed value, also those a type\'s own hash or equality takes as equal (numeric scale, -0, a case-blind collation, jsonb numbers, swapped columns, NULLs)', async () => {
    await sync('typed', 'typed-1');
    assert.equal((await verify('typed')).mismatches, 0);
    await db.client.query(`
      UPDATE typed SET n = 11.50 WHERE id = 11;                       -- 11.5 = 11.50 as numeric, not as text
      UPDATE typed SET f = '-0' WHERE id = 12; UPDATE typed_src SET f = 0 WHERE id = 12;
      UPDATE typed SET t = 'TEXT 13' WHERE id = 13;                   -- equal under the case-blind collation
      UPDATE typed SET j = '{"x": 14.50}' WHERE id = 14;              -- equal as jsonb
      UPDATE typed SET a = b, b = a WHERE id = 15;                     -- the same values in other columns
      UPDATE typed SET i8 = i8 + 1 WHERE id = 16;
      UPDATE typed SET u = md5('other')::uuid WHERE id = 17;
      UPDATE typed SET a = NULL WHERE id = 18;
      UPDATE typed SET a = 0, vc = '' WHERE id = 0;                    -- NULLs made values
      UPDATE typed SET ts = ts + interval '1 microsecond' WHERE id = 19;
      UPDATE typed SET i2 = NULL, i8 = i2 WHERE id = 20;`);
    const bad = await verify('typed');
    const found = bad.results.flatMap((r) => r.differences).map((d) => `${d.kind}:${d.key.join(',')}`).sort();
    assert.deepEqual(found, ['differs:0', 'differs:11', 'differs:12', 'differs:13', 'differs:14', 'differs:15', 'differs:16', 'differs:17', 'differs:18', 'differs:19'].sort(), JSON.stringify(found));
    assert.equal(bad.mismatches, 11, 'differs:20 beyond the ten named');
  });

  test('verify: rows changed in the source after the sync are not differences; rows kept by deletes: ignore are not either', async () => {
    await db.client.query(`UPDATE src SET name = 'later', updated_at = '2030-01-01' WHERE id = 300; INSERT INTO src VALUES (90000, 'new', 1, '2030-01-01')`);
    const r = await verify('checked');
    assert.equal(r.mismatches, 0, JSON.stringify(r.results.flatMap((x) => x.differences)));
    assert.equal(r.tolerated, 2);
    await db.client.query(`DELETE FROM src WHERE id = 400`);
    const gone = await verify('checked');
    assert.deepEqual(gone.results.flatMap((x) => x.differences), [{ kind: 'extra', key: ['400'] }]);
    // 'counted' (deletes: ignore) shares the target but never synced itself: no cursor excuses row 90000.
    const kept = await verify('counted');
    assert.deepEqual(kept.results.flatMap((x) => x.differences), [{ kind: 'missing', key: ['90000'] }]);
    assert.equal(kept.tolerated, 1, 'the row kept by deletes: ignore');
  });

  test('composite keys and keyless append: verify by ranges of the first key column (or the cursor)', async () => {
    await sync('composite', 'composite-1');
    assert.equal((await verify('composite')).mismatches, 0);
    await db.client.query(`DELETE FROM composite_src WHERE id % 1000 = 0`);
    assert.equal((await sync('composite', 'composite-2')).rowsDeleted, 6);
    assert.equal((await verify('composite')).mismatches, 0);
    await sync('log', 'log-1');
    assert.equal((await verify('log')).mismatches, 0);
    await db.client.query(`INSERT INTO log VALUES ('2030-01-01', 'after the sync')`);
    assert.equal((await verify('log')).mismatches, 0, 'rows after the cursor are not compared');
    await db.client.query(`DELETE FROM log_copy WHERE ctid IN (SELECT ctid FROM log_copy WHERE msg = 'm2500')`);
    const bad = await verify('log');
    assert.equal(bad.mismatches, 1);
    assert.deepEqual(bad.results.flatMap((x) => x.ranges).map((x) => [x.sourceRows - x.targetRows]), [[1]]);
  });

  test('verify refuses while a sync of the pipeline is in flight, naming the run', async () => {
    await engine.plan(ctx, { pipeline: 'checked', runId: 'in-flight', partitioned: true });
    await assert.rejects(engine.planVerify(ctx, { pipeline: 'checked' }), /being synced \(run in-flight/);
  });
});
