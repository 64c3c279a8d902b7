import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import { SyncError, type CallContext, type ChunkResult, type SyncEngine } from '../src/sync';
import { decideSchema } from '../src/sync/schemaChanges';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { engineFor } from './helpers/engine';

// schemaChanges (evolve | freeze | ignore) on the engine alone, against real PostgreSQL: columns
// added and dropped between runs and in the middle of a partitioned run, and changed types.

const ROWS = 2000;
const MODES = ['full-refresh', 'upsert'] as const;
const POLICIES = ['evolve', 'freeze', 'ignore'] as const;

describe('schema changes of the source (schemaChanges policy)', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  let run = 0;

  const name = (policy: string, mode: string) => `${policy}_${mode.replace('-', '_')}`;
  const pipelines: Record<string, unknown> = {};
  const pipeline = (id: string, mode: string, policy: string, extra: Record<string, unknown> = {}) =>
    (pipelines[id] = {
      source: { profile: 'local', environment: 'test', table: `s_${id}` },
      target: { profile: 'local', environment: 'test', table: `t_${id}` },
      key: ['id'],
      mode,
      schemaChanges: policy,
      batchRows: 300,
      ...extra,
    });
  for (const mode of MODES) {
    for (const policy of POLICIES) pipeline(name(policy, mode), mode, policy);
    pipeline(`type_${name('evolve', mode)}`, mode, 'evolve');
    pipeline(`mid_${name('evolve', mode)}`, mode, 'evolve', { batchRows: 100 });
    pipeline(`mid_${name('freeze', mode)}`, mode, 'freeze', { batchRows: 100 });
  }
  pipeline('type_ignore', 'upsert', 'ignore');
  pipeline('mid_merge', 'upsert', 'evolve', { batchRows: 100 });
  pipeline('mid_viewed', 'full-refresh', 'evolve', { batchRows: 100 });

  before(async () => {
    db = await createTestDatabase('schema');
    for (const id of Object.keys(pipelines))
      await db.client.query(`
        CREATE TABLE s_${id} (id int PRIMARY KEY, name text NOT NULL, amount numeric(12,2), updated_at timestamptz NOT NULL);
        INSERT INTO s_${id} SELECT g, 'n' || g, g * 1.5, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, ${ROWS}) g;`);
    const config = testConfig(db, pipelines);
    ({ pools, engine, ctx } = engineFor(config));
  });

  after(async () => {
    await pools?.end();
    await db?.close();
  });

  /** A partitioned run, `lanes` partitions side by side (as the workflow runs them); `onChunk` runs after each committed chunk. */
  async function sync(id: string, lanes = 4, onChunk?: (c: ChunkResult, n: number) => Promise<void>) {
    const runId = `schema-${++run}`;
    const plan = await engine.plan(ctx, { pipeline: id, runId, partitioned: true });
    const queue = plan.partitions!.filter((x) => !x.done);
    const chunks: ChunkResult[] = [];
    await Promise.all(
      Array.from({ length: lanes }, async () => {
        for (let part = queue.shift(); part; part = queue.shift())
          for (let after = part.cursor; ; ) {
            const c = await engine.chunk(ctx, { pipeline: id, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
            chunks.push(c);
            await onChunk?.(c, chunks.length);
            after = c.cursor;
            if (c.done) break;
          }
      }),
    );
    const finish = await engine.finish(ctx, { pipeline: id, runId });
    return { plan, chunks, finish };
  }

  const columns = async (table: string) =>
    Object.fromEntries(
      (
        await db.client.query<{ name: string; type: string; not_null: boolean }>(
          `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS not_null FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`,
          [table],
        )
      ).rows.map((r) => [r.name, `${r.type}${r.not_null ? ' not null' : ''}`]),
    );
  const same = async (target: string, source: string, cols: string[]) =>
    assert.deepEqual(await relationChecksum(db.client, target, cols, ['id']), await relationChecksum(db.client, source, cols, ['id']));
  const count = async (sql: string) => (await db.client.query(sql)).rows[0].n as number;

  async function refused(promise: Promise<unknown>, message: RegExp) {
    await assert.rejects(promise, (err: unknown) => {
      assert.ok(err instanceof SyncError, String(err));
      assert.equal(err.type, 'LakebaseSchemaChanged');
      assert.match(err.message, message);
      return true;
    });
  }

  for (const mode of MODES) {
    test(`evolve (${mode}): a new source column is added as nullable and filled; a dropped NOT NULL column is kept, accepts NULL and gets NULL`, async () => {
      const id = name('evolve', mode);
      await sync(id);
      assert.equal((await columns(`t_${id}`)).name, 'text not null');
      await db.client.query(`ALTER TABLE s_${id} ADD COLUMN extra text NOT NULL DEFAULT 'x'; UPDATE s_${id} SET extra = 'x' || id; ALTER TABLE s_${id} DROP COLUMN name`);
      const { plan } = await sync(id);
      assert.deepEqual(plan.targetShape?.changes, [
        'new source column "extra" (text): added to the target as nullable',
        'source column "name" was dropped: the target keeps it, NULL from now on (its NOT NULL is dropped)',
      ]);
      const cols = await columns(`t_${id}`);
      assert.equal(cols.extra, 'text', 'added without NOT NULL');
      assert.equal(cols.name, 'text', 'kept, NOT NULL dropped');
      await same(`t_${id}`, `s_${id}`, ['id', 'amount', 'updated_at', 'extra']);
      assert.equal(await count(`SELECT count(*)::int AS n FROM t_${id} WHERE name IS NOT NULL`), 0, 'every row written since has NULL in the dropped column');
      // A settled change is no change: the next run reports nothing and (upsert) writes nothing.
      const again = await sync(id);
      assert.equal(again.plan.targetShape, undefined);
      if (mode === 'upsert') assert.equal(again.chunks.reduce((n, c) => n + c.rowsWritten, 0), 0);
    });

    test(`freeze (${mode}): a new column and a dropped column each fail with LakebaseSchemaChanged naming the column; the target is untouched`, async () => {
      const id = name('freeze', mode);
      await sync(id);
      const shape = await columns(`t_${id}`);
      await db.client.query(`ALTER TABLE s_${id} ADD COLUMN extra text`);
      await refused(sync(id), new RegExp(`pipelines\\.${id}: the source's columns and the target's differ \\(schemaChanges: freeze\\): new source column "extra" \\(text\\)\\. To go on: .*schemaChanges: evolve`));
      assert.deepEqual(await columns(`t_${id}`), shape);
      await db.client.query(`ALTER TABLE s_${id} DROP COLUMN extra, DROP COLUMN amount`);
      await refused(sync(id), /source column "amount" \(numeric\(12,2\)\) was dropped/);
      assert.deepEqual(await columns(`t_${id}`), shape);
      assert.equal(await count(`SELECT count(*)::int AS n FROM t_${id}`), ROWS);
    });

    test(`ignore (${mode}): a new column is left out, a dropped one left as it is; the rest syncs`, async () => {
      const id = name('ignore', mode);
      await sync(id);
      await db.client.query(`ALTER TABLE s_${id} ADD COLUMN extra text DEFAULT 'e'; ALTER TABLE s_${id} DROP COLUMN amount; UPDATE s_${id} SET name = name || '!'`);
      const { plan } = await sync(id);
      assert.match(plan.targetShape?.changes?.join('\n') ?? '', /new source column "extra" \(text\): left out \(schemaChanges: ignore\)/);
      const cols = await columns(`t_${id}`);
      assert.equal(cols.extra, undefined);
      assert.equal(cols.amount, 'numeric(12,2)');
      await same(`t_${id}`, `s_${id}`, ['id', 'name', 'updated_at']);
      // A full refresh writes every row anew (amount no longer copied: NULL); a merge leaves the column alone.
      assert.equal(await count(`SELECT count(*)::int AS n FROM t_${id} WHERE amount IS NULL`), mode === 'full-refresh' ? ROWS : 0);
    });

    test(`a type change fails under evolve (${mode}) with the old and new type, until the target column has the new type`, async () => {
      const id = `type_${name('evolve', mode)}`;
      await sync(id);
      await db.client.query(`ALTER TABLE s_${id} ALTER COLUMN amount TYPE numeric(14,4)`);
      await refused(sync(id), /column "amount" changed type from numeric\(12,2\) to numeric\(14,4\) \(the target column is numeric\(12,2\)\)\. To go on: .*ALTER COLUMN … TYPE/);
      await db.client.query(`ALTER TABLE t_${id} ALTER COLUMN amount TYPE numeric(14,4)`);
      await sync(id);
      await same(`t_${id}`, `s_${id}`, ['id', 'name', 'amount', 'updated_at']);
    });

    test(`evolve (${mode}): a column added between two chunks of a partitioned run (partitions side by side) reaches the target in the same run`, async () => {
      const id = `mid_${name('evolve', mode)}`;
      let altered = false;
      const { plan, chunks } = await sync(id, 4, async (_c, n) => {
        if (n !== 2) return;
        await db.client.query(`ALTER TABLE s_${id} ADD COLUMN late int DEFAULT 7`);
        altered = true;
      });
      assert.ok(altered && plan.partitions!.length >= 4, `${plan.partitions!.length} partitions`);
      assert.equal(chunks.reduce((n, c) => n + c.rowsCopied, 0), ROWS, 'every row once');
      assert.equal((await columns(`t_${id}`)).late, 'integer');
      const late = await count(`SELECT count(*)::int AS n FROM t_${id} WHERE late = 7`);
      assert.ok(late > 0 && late < ROWS, `${late} rows copied after the change carry it; the ones before are NULL`);
      await same(`t_${id}`, `s_${id}`, ['id', 'name', 'amount', 'updated_at']);
      await sync(id);
      await same(`t_${id}`, `s_${id}`, ['id', 'name', 'amount', 'updated_at', 'late']);
    });

    test(`freeze (${mode}): a column added mid-run fails the next chunk; committed chunks stay, the target keeps its shape`, async () => {
      const id = `mid_${name('freeze', mode)}`;
      const shapeBefore = async () => (await db.client.query(`SELECT to_regclass('t_${id}') AS t`)).rows[0].t;
      assert.equal(await shapeBefore(), null);
      await refused(
        sync(id, 1, async (_c, n) => {
          if (n === 1) await db.client.query(`ALTER TABLE s_${id} ADD COLUMN late int`);
        }),
        /new source column "late" \(integer\)/,
      );
      assert.equal((await columns(`t_${id}`)).late, undefined);
    });
  }

  test('evolve (upsert, merging): a column added mid-run is merged into existing rows from then on', async () => {
    await sync('mid_merge');
    await db.client.query(`UPDATE s_mid_merge SET name = name || '!'`);
    const { chunks } = await sync('mid_merge', 4, async (_c, n) => {
      if (n === 3) await db.client.query(`ALTER TABLE s_mid_merge ADD COLUMN late int DEFAULT 7`);
    });
    assert.equal(chunks.reduce((n, c) => n + c.rowsWritten, 0), ROWS);
    await same('t_mid_merge', 's_mid_merge', ['id', 'name', 'amount', 'updated_at']);
    await sync('mid_merge');
    await same('t_mid_merge', 's_mid_merge', ['id', 'name', 'amount', 'updated_at', 'late']);
  });

  test('evolve (full refresh kept in place by a view): a column added mid-run survives the TRUNCATE + INSERT swap', async () => {
    await sync('mid_viewed');
    await db.client.query(`CREATE VIEW v_mid_viewed AS SELECT id FROM t_mid_viewed`);
    const { finish } = await sync('mid_viewed', 4, async (_c, n) => {
      if (n === 2) await db.client.query(`ALTER TABLE s_mid_viewed ADD COLUMN late int DEFAULT 7`);
    });
    assert.equal(finish.swap?.method, 'truncate-insert');
    assert.ok((await count(`SELECT count(*)::int AS n FROM t_mid_viewed WHERE late = 7`)) > 0);
    await same('t_mid_viewed', 's_mid_viewed', ['id', 'name', 'amount', 'updated_at']);
  });

  test('a type change fails under ignore too', async () => {
    await sync('type_ignore');
    await db.client.query(`ALTER TABLE s_type_ignore ALTER COLUMN name TYPE varchar(40)`);
    await refused(sync('type_ignore'), /schemaChanges: ignore\): column "name" changed type from text to character varying\(40\)/);
  });

  test('decisions: without a snapshot only the target tells what is missing; generated target columns are never written', () => {
    const col = (n: string, type = 'text') => ({ name: n, type, oid: 25, typmod: -1 });
    const target = [
      { name: 'id', type: 'integer', notNull: true, generated: false },
      { name: 'g', type: 'text', notNull: false, generated: true },
      { name: 'mine', type: 'text', notNull: true, generated: false },
    ];
    const d = decideSchema('freeze', [col('id', 'integer'), col('g'), col('x')], null, target);
    assert.deepEqual(d.problems, ['the target has no column "x" (text) that the source provides']);
    assert.deepEqual(d.leaveOut, ['g']);
    assert.deepEqual(d.fillNull, [], 'a column only the target has is not a dropped source column');
    const e = decideSchema('evolve', [col('id', 'integer'), col('g')], null, target);
    assert.deepEqual([e.problems, e.add, e.dropNotNull], [[], [], []]);
  });
});
