import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import type { CallContext, SyncEngine } from '../src/sync';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { createSyncEngine } from '../src/sync';
import { engineFor, runSync } from './helpers/engine';

// Cursor runs (upsert with a cursor, append) and ADD COLUMN on the source: the rows whose cursor
// does not move are never copied again, so the column the run adds to the target must be filled in
// them from the source then (finding cursor-add-column-default, seed 2015860408).

const ROWS = 3000;

describe('cursor runs fill a column added on the source in the rows already synced', () => {
  let db: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  let runs = 0;
  const pipelines: Record<string, unknown> = {};
  const upsert = (id: string, extra: Record<string, unknown> = {}) =>
    (pipelines[id] = {
      source: { profile: 'local', environment: 'test', table: `s_${id}` },
      target: { profile: 'local', environment: 'test', table: `t_${id}` },
      mode: 'upsert', key: ['id'], cursor: 'rev', deletes: 'hard', batchRows: 700, parallelism: 2, ...extra,
    });
  upsert('constant');
  upsert('volatile');
  upsert('populated');
  upsert('midrun', { batchRows: 200 });
  upsert('soft', { deletes: 'soft', softDeleteColumn: 'deleted_at' });
  upsert('renamed', { transform: { rename: { name: 'title' }, columns: { twice: 'src.rev * 2' } } });
  upsert('transformed', { transform: { rowTransform: 'shout' } });
  upsert('append_keyed', { mode: 'append', deletes: 'ignore' });
  upsert('append_keyless', { mode: 'append', deletes: 'ignore', key: undefined });

  before(async () => {
    db = await createTestDatabase('addcol');
    for (const id of Object.keys(pipelines))
      await db.client.query(`
        CREATE TABLE s_${id} (id int PRIMARY KEY, name text COLLATE "C" NOT NULL, rev bigint NOT NULL);
        INSERT INTO s_${id} SELECT g, 'n' || g, g FROM generate_series(1, ${ROWS}) g;`);
    await db.client.query(`CREATE TABLE t_soft (id int PRIMARY KEY, name text COLLATE "C" NOT NULL, rev bigint NOT NULL, deleted_at timestamptz)`);
    const config = testConfig(db, pipelines);
    ({ pools, ctx } = engineFor(config));
    // A TypeScript row transform that changes the added column too: the backfill must pass rows through it.
    engine = createSyncEngine({ config, rowTransforms: { shout: (r) => ({ ...r, ...(r.d0 != null && { d0: r.d0.toUpperCase() }) }) } });
  });
  after(async () => {
    await pools?.end();
    await db?.close();
  });

  const sync = (id: string) => runSync(engine, ctx, id, `addcol-${++runs}`);
  const equal = async (id: string, cols: string[], targetCols = cols, where = 'true') =>
    assert.deepEqual(
      await relationChecksum(db.client, `(SELECT ${targetCols.map((c, i) => `${c} AS ${cols[i]}`).join(', ')} FROM t_${id} WHERE ${where})`, cols, ['id']),
      await relationChecksum(db.client, `s_${id}`, cols, ['id']),
    );
  const nulls = async (id: string, col: string) => Number((await db.client.query(`SELECT count(*) AS n FROM t_${id} WHERE ${col} IS NULL`)).rows[0].n);
  /** A few rows change (their cursor moves), as between two real runs; the rest keep theirs. */
  const touch = (id: string) => db.client.query(`UPDATE s_${id} SET name = name || '!', rev = rev + 1000000 WHERE id % 500 = 0`);

  test('ADD COLUMN … DEFAULT (constant, no table rewrite): every target row gets the default, not only the rows that moved', async () => {
    await sync('constant');
    await db.client.query(`ALTER TABLE s_constant ADD COLUMN d0 text DEFAULT 'dflt', ADD COLUMN d1 int DEFAULT 5`);
    await touch('constant');
    await sync('constant');
    assert.equal(await nulls('constant', 'd0'), 0);
    assert.equal(await nulls('constant', 'd1'), 0);
    await equal('constant', ['id', 'name', 'rev', 'd0', 'd1']);
    // Settled: the next run adds nothing and fills nothing.
    const again = await sync('constant');
    assert.equal(again.plan.targetShape, undefined);
    await equal('constant', ['id', 'name', 'rev', 'd0', 'd1']);
  });

  test('a volatile default (a value per row, the table rewritten) reaches every target row as the source holds it', async () => {
    await sync('volatile');
    await db.client.query(`ALTER TABLE s_volatile ADD COLUMN r float8 DEFAULT random(), ADD COLUMN u uuid DEFAULT gen_random_uuid()`);
    await sync('volatile');
    assert.equal(Number((await db.client.query(`SELECT count(DISTINCT u) AS n FROM t_volatile`)).rows[0].n), ROWS);
    await equal('volatile', ['id', 'name', 'rev', 'r', 'u']);
  });

  test('a column added without a default and then populated without touching the cursor reaches the target', async () => {
    await sync('populated');
    await db.client.query(`ALTER TABLE s_populated ADD COLUMN later int; UPDATE s_populated SET later = id * 3 WHERE id % 3 <> 0`);
    await sync('populated');
    assert.equal(await nulls('populated', 'later'), ROWS / 3, 'the rows the source left NULL stay NULL');
    await equal('populated', ['id', 'name', 'rev', 'later']);
  });

  test('a column added between two chunks of a cursor run is filled in the rows copied before it, in the same run', async () => {
    await sync('midrun');
    await db.client.query(`UPDATE s_midrun SET rev = rev + 1000000`); // every row moves: this run copies them all again
    const runId = `addcol-${++runs}`;
    const plan = await engine.plan(ctx, { pipeline: 'midrun', runId, partitioned: true });
    let chunks = 0;
    for (const part of plan.partitions!)
      for (let after = part.cursor, done = false; !done; ) {
        ({ cursor: after, done } = await engine.chunk(ctx, { pipeline: 'midrun', runId, after, partition: part.partition }));
        if (++chunks === 3) await db.client.query(`ALTER TABLE s_midrun ADD COLUMN late int DEFAULT 7`);
      }
    await engine.finish(ctx, { pipeline: 'midrun', runId });
    assert.ok(chunks > 4, `${chunks} chunks`);
    assert.equal(await nulls('midrun', 'late'), 0);
    await equal('midrun', ['id', 'name', 'rev', 'late']);
  });

  test('deletes: soft — the target-only marker column is left alone; the added column is filled', async () => {
    await sync('soft');
    await db.client.query(`DELETE FROM s_soft WHERE id <= 10`);
    await sync('soft');
    await db.client.query(`ALTER TABLE s_soft ADD COLUMN d0 text DEFAULT 'dflt'`);
    await sync('soft');
    const { rows } = await db.client.query(`SELECT count(*) FILTER (WHERE deleted_at IS NOT NULL) AS marked, count(*) FILTER (WHERE d0 IS NULL) AS unfilled FROM t_soft`);
    assert.deepEqual({ marked: Number(rows[0].marked), unfilled: Number(rows[0].unfilled) }, { marked: 10, unfilled: 10 }, 'rows deleted in the source keep their mark and get no value');
    await equal('soft', ['id', 'name', 'rev', 'd0'], undefined, 'deleted_at IS NULL');
  });

  test('with SQL transforms (a renamed and a computed column) the added column is filled from its own source column', async () => {
    await sync('renamed');
    await db.client.query(`ALTER TABLE s_renamed ADD COLUMN later text DEFAULT 'x'`);
    await sync('renamed');
    await equal('renamed', ['id', 'name', 'rev', 'later'], ['id', 'title', 'rev', 'later']);
    assert.equal(Number((await db.client.query(`SELECT count(*) AS n FROM t_renamed WHERE twice <> rev * 2`)).rows[0].n), 0);
  });

  test('with a TypeScript row transform, the rows already there get the added column as the transform writes it', async () => {
    await sync('transformed');
    await db.client.query(`ALTER TABLE s_transformed ADD COLUMN d0 text DEFAULT 'dflt'`);
    await touch('transformed');
    await sync('transformed');
    const { rows } = await db.client.query(`SELECT d0, count(*)::int AS n FROM t_transformed GROUP BY d0`);
    assert.deepEqual(rows, [{ d0: 'DFLT', n: ROWS }]);
  });

  for (const id of ['append_keyed', 'append_keyless']) {
    test(`append (${id === 'append_keyed' ? 'with a key' : 'keyless: rows matched on their other columns'}): rows appended before the column came get the source's value`, async () => {
      await sync(id);
      await db.client.query(`ALTER TABLE s_${id} ADD COLUMN d0 text DEFAULT 'dflt', ADD COLUMN r float8 DEFAULT random()`);
      await db.client.query(`INSERT INTO s_${id} SELECT g, 'n' || g, g FROM generate_series(${ROWS + 1}, ${ROWS + 100}) g`);
      await sync(id);
      assert.equal(await nulls(id, 'd0'), 0);
      await equal(id, ['id', 'name', 'rev', 'd0', 'r']);
    });
  }
});
