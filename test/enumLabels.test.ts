import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { PoolRegistry } from '../src/db/pools';
import { SyncError, type CallContext, type SyncEngine } from '../src/sync';
import { labelLiteral } from '../src/db/targetDdl';
import { labelAdditions } from '../src/sync/enumLabels';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { engineFor } from './helpers/engine';

// Enum labels added to a source type between (and during) batch runs reach the target's type
// before rows that use them are copied: the engine alone, source and target in two databases.

const LABELS = ['sad', 'ok', 'happy'];
const ROWS = 2000;
const MODES = { full: 'full-refresh', upsert: 'upsert', append: 'append', resync: 'upsert' } as const;
/** Pipelines whose source table has a type of its own, `app.e_<id>`. */
const OWN_TYPES = [...Object.keys(MODES), 'user', 'renamed', 'frozen', 'ignored', 'mid', 'midresync', 'dry'];

describe('enum labels added to the source (batch modes)', () => {
  let src: TestDatabase;
  let dst: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  let run = 0;

  const side = (environment: 'src' | 'dst', table: string) => ({ profile: 'local', environment, table });
  const pipelines: Record<string, unknown> = {};
  const pipeline = (id: string, mode: string, extra: Record<string, unknown> = {}, target = `app.t_${id}`) =>
    (pipelines[id] = { source: side('src', `app.s_${id}`), target: side('dst', target), key: ['id'], mode, batchRows: 500, ...extra });
  for (const [id, mode] of Object.entries(MODES)) pipeline(id, mode, mode === 'append' ? { cursor: 'at' } : {});
  pipeline('shared1', 'upsert');
  pipeline('shared2', 'full-refresh');
  pipeline('user', 'upsert', {}, 'mine.t_user');
  pipeline('renamed', 'upsert');
  pipeline('frozen', 'upsert', { schemaChanges: 'freeze' });
  pipeline('ignored', 'upsert', { schemaChanges: 'ignore' });
  pipeline('mid', 'upsert', { batchRows: 100, cursor: 'at' });
  pipeline('midresync', 'upsert', { batchRows: 200 });
  pipeline('dry', 'upsert');

  /** A source table `app.s_<id>` of `ROWS` rows over enum `type` (a scalar and an array column). */
  const sourceTable = (id: string, type: string) => `
    CREATE TABLE app.s_${id} (id int PRIMARY KEY, m ${type} NOT NULL, ms ${type}[], at int NOT NULL);
    INSERT INTO app.s_${id} SELECT g, (ARRAY[${LABELS.map((l) => `'${l}'`).join(',')}])[1 + g % 3]::${type}, ARRAY['sad', 'happy']::${type}[], g FROM generate_series(1, ${ROWS}) g;`;

  before(async () => {
    [src, dst] = await Promise.all([createTestDatabase('enum_src'), createTestDatabase('enum_dst')]);
    await src.client.query(`
      CREATE SCHEMA app;
      ${OWN_TYPES.map((id) => `CREATE TYPE app.e_${id} AS ENUM (${LABELS.map((l) => `'${l}'`).join(', ')}); ${sourceTable(id, `app.e_${id}`)}`).join('\n')}
      CREATE TYPE app.e_shared AS ENUM (${LABELS.map((l) => `'${l}'`).join(', ')});
      ${sourceTable('shared1', 'app.e_shared')}
      ${sourceTable('shared2', 'app.e_shared')}`);
    // A target type the user made, under another schema and name than the source's.
    await dst.client.query(`
      CREATE SCHEMA mine;
      CREATE TYPE mine.feeling AS ENUM (${LABELS.map((l) => `'${l}'`).join(', ')});
      CREATE TABLE mine.t_user (id int PRIMARY KEY, m mine.feeling NOT NULL, ms mine.feeling[], at int NOT NULL);`);
    const config = parseConfig({ profiles: { local: { auth: { method: 'pat', token: 'trust-auth-ignores-this' }, environments: { src: src.environment, dst: dst.environment } } }, pipelines });
    ({ pools, engine, ctx } = engineFor(config));
  });

  after(async () => {
    await pools?.end();
    await Promise.all([src?.close(), dst?.close()]);
  });

  /** A whole run: compare-then-copy when the plan chooses it, else partition chunks; `onChunk` after each chunk. */
  async function sync(id: string, onChunk?: (n: number) => Promise<void>) {
    const runId = `enum-${++run}`;
    const plan = await engine.plan(ctx, { pipeline: id, runId, partitioned: true, compare: true });
    let chunks = 0;
    if (plan.resync?.method === 'compare') {
      const { leafRows, digests, groupRows } = plan.resync;
      for (const b of plan.resync.buckets) {
        await engine.resyncBucket(ctx, { pipeline: id, runId, bucket: b.bucket, leafRows, digests, groupRows });
        await onChunk?.(++chunks);
      }
    } else
      for (const part of plan.partitions!)
        for (let after = part.cursor, done = part.done; !done; ) {
          ({ cursor: after, done } = await engine.chunk(ctx, { pipeline: id, runId, after, partition: part.partition, initialLoad: plan.initialLoad }));
          await onChunk?.(++chunks);
        }
    await engine.finish(ctx, { pipeline: id, runId });
    return plan;
  }

  const labels = async (db: TestDatabase, type: string) =>
    (await db.client.query<{ l: string }>(`SELECT enumlabel AS l FROM pg_enum WHERE enumtypid = $1::regtype ORDER BY enumsortorder`, [type])).rows.map((r) => r.l);
  /** Every row as text, and the ids in the enum's order (which follows the type's label order, not the text). */
  const contents = async (db: TestDatabase, table: string) => ({
    rows: (await db.client.query(`SELECT id, m::text, ms::text, at FROM ${table} ORDER BY id`)).rows,
    byEnum: (await db.client.query(`SELECT array_agg(id ORDER BY m, id) AS ids FROM ${table}`)).rows[0].ids,
  });
  const assertSame = async (id: string, target = `app.t_${id}`) => assert.deepEqual(await contents(dst, target), await contents(src, `app.s_${id}`));

  /** Labels at the start, in the middle and at the end (BEFORE the first, BEFORE/AFTER others), then rows that use them. */
  async function addLabels(id: string, type = `app.e_${id}`, change = true) {
    await src.client.query(`ALTER TYPE ${type} ADD VALUE 'awful' BEFORE 'sad'`);
    await src.client.query(`ALTER TYPE ${type} ADD VALUE 'meh' AFTER 'sad'`);
    await src.client.query(`ALTER TYPE ${type} ADD VALUE 'ecstatic'`);
    await src.client.query(`
      INSERT INTO app.s_${id} SELECT g, (ARRAY['awful', 'meh', 'ecstatic']::${type}[])[1 + g % 3], ARRAY['meh', 'sad']::${type}[], g FROM generate_series(${ROWS + 1}, ${ROWS + 30}) g`);
    // Append copies new rows only (by its cursor): changed ones are for the other modes.
    if (change) await src.client.query(`UPDATE app.s_${id} SET m = 'meh', ms = ARRAY['ecstatic']::${type}[] WHERE id IN (7, 8)`);
  }

  for (const id of Object.keys(MODES))
    test(`${id === 'resync' ? 'compare-then-copy re-sync' : MODES[id as keyof typeof MODES]}: labels added to the source enum (before, between, after) are added to the target's in the source's order; the next run copies their rows`, async () => {
      await sync(id);
      await assertSame(id);
      await addLabels(id, `app.e_${id}`, id !== 'append');
      const plan = await sync(id);
      if (id === 'resync') assert.equal(plan.resync?.method, 'compare', 'a populated target without a cursor is compared, not merged');
      assert.deepEqual(await labels(dst, `app.e_${id}`), ['awful', 'sad', 'meh', 'ok', 'happy', 'ecstatic']);
      assert.deepEqual(await labels(dst, `app.e_${id}`), await labels(src, `app.e_${id}`));
      await assertSame(id);
    });

  test('an enum shared by two tables: whichever pipeline runs first adds the labels, the other finds them', async () => {
    await sync('shared1');
    await sync('shared2');
    await addLabels('shared1', 'app.e_shared');
    await src.client.query(`INSERT INTO app.s_shared2 VALUES (${ROWS + 1}, 'ecstatic', '{awful}', ${ROWS + 1})`);
    await sync('shared2');
    await sync('shared1');
    assert.deepEqual(await labels(dst, 'app.e_shared'), await labels(src, 'app.e_shared'));
    await assertSame('shared1');
    await assertSame('shared2');
  });

  test("a target type the user made (another schema and name) gets the labels; the source's type is not created in the target", async () => {
    await sync('user');
    await addLabels('user');
    await sync('user');
    assert.deepEqual(await labels(dst, 'mine.feeling'), ['awful', 'sad', 'meh', 'ok', 'happy', 'ecstatic']);
    assert.equal((await dst.client.query(`SELECT to_regtype('app.e_user') AS t`)).rows[0].t, null);
    await assertSame('user', 'mine.t_user');
  });

  test('a label renamed in the source (RENAME VALUE) is refused before anything is copied, naming the type and the fix', async () => {
    await sync('renamed');
    await src.client.query(`ALTER TYPE app.e_renamed RENAME VALUE 'ok' TO 'fine'`);
    await assert.rejects(sync('renamed'), (err: unknown) => {
      assert.ok(err instanceof SyncError);
      assert.equal(err.type, 'LakebaseSchemaChanged');
      assert.match(err.message, /"app"\."e_renamed"/);
      assert.match(err.message, /ALTER TYPE "app"\."e_renamed" RENAME VALUE 'ok' TO 'fine'/);
      return true;
    });
    assert.deepEqual(await labels(dst, 'app.e_renamed'), LABELS, 'the target type is left as it was');
    await dst.client.query(`ALTER TYPE app.e_renamed RENAME VALUE 'ok' TO 'fine'`);
    await sync('renamed');
    await assertSame('renamed');
  });

  test('schemaChanges freeze and ignore: a new label fails planning with LakebaseSchemaChanged naming it and the ALTER TYPE to run', async () => {
    for (const id of ['frozen', 'ignored']) {
      await sync(id);
      await addLabels(id);
      await assert.rejects(sync(id), (err: unknown) => {
        assert.ok(err instanceof SyncError);
        assert.equal(err.type, 'LakebaseSchemaChanged');
        assert.match(err.message, /'awful', 'meh', 'ecstatic'/);
        assert.match(err.message, new RegExp(`ALTER TYPE "app"\\."e_${id}" ADD VALUE IF NOT EXISTS 'awful' BEFORE 'sad'`));
        return true;
      });
      assert.deepEqual(await labels(dst, `app.e_${id}`), LABELS);
    }
  });

  test('a label added in the middle of a run reaches the target before the chunk that copies its rows', async () => {
    await sync('mid');
    await src.client.query(`UPDATE app.s_mid SET at = at + ${ROWS}`); // every row comes again, 100 per chunk
    await sync('mid', async (n) => {
      if (n !== 2) return;
      await src.client.query(`ALTER TYPE app.e_mid ADD VALUE 'meh' AFTER 'sad'`);
      await src.client.query(`UPDATE app.s_mid SET m = 'meh' WHERE id > 1500`);
    });
    assert.deepEqual(await labels(dst, 'app.e_mid'), ['sad', 'meh', 'ok', 'happy']);
    await assertSame('mid');
  });

  test('compare-then-copy: a label added between buckets reaches the target before the bucket that copies its rows', async () => {
    await sync('midresync');
    await src.client.query(`UPDATE app.s_midresync SET ms = '{ok}' WHERE id % 400 = 0`); // a few rows differ: compared, not merged
    let buckets = 0;
    const plan = await sync('midresync', async (n) => {
      buckets = n;
      if (n !== 1) return;
      await src.client.query(`ALTER TYPE app.e_midresync ADD VALUE 'meh' BEFORE 'ok'`);
      await src.client.query(`UPDATE app.s_midresync SET m = 'meh' WHERE id > 1900`);
    });
    assert.equal(plan.resync?.method, 'compare');
    assert.ok(buckets > 1, `${buckets} buckets`);
    assert.deepEqual(await labels(dst, 'app.e_midresync'), ['sad', 'meh', 'ok', 'happy']);
    await assertSame('midresync');
  });

  test('a dry run lists the ALTER TYPE statements and changes nothing', async () => {
    await sync('dry');
    await src.client.query(`ALTER TYPE app.e_dry ADD VALUE 'meh' BEFORE 'ok'`);
    const plan = await engine.plan(ctx, { pipeline: 'dry', runId: 'enum-dry', partitioned: true, dryRun: true });
    assert.ok(plan.dryRun);
    assert.match(plan.dryRun.actions.join('\n'), /enum "app"\."e_dry" has label 'meh' that the target's type "app"\."e_dry" lacks/);
    assert.deepEqual(plan.dryRun.statements, [`ALTER TYPE "app"."e_dry" ADD VALUE IF NOT EXISTS 'meh' AFTER 'sad'`]);
    assert.deepEqual(await labels(dst, 'app.e_dry'), LABELS);
  });

  test('where a missing label goes: after the nearest earlier label the target has, else before the nearest later one', () => {
    assert.deepEqual(labelAdditions(['a', 'x', 'b', 'y', 'z'], ['a', 'b']), [
      { label: 'x', place: { after: 'a' } },
      { label: 'y', place: { after: 'b' } },
      { label: 'z', place: { after: 'y' } },
    ]);
    assert.deepEqual(labelAdditions(['w', 'a'], ['a']), [{ label: 'w', place: { before: 'a' } }]);
    assert.deepEqual(labelAdditions(['n'], []), [{ label: 'n' }]);
  });

  test('label literals mean the same text whatever standard_conforming_strings says (plain where they can be)', async () => {
    assert.equal(labelLiteral(`it's`), `'it''s'`);
    for (const label of [`it's`, `back\\slash`, `a\\'b`, `\\`])
      for (const scs of ['on', 'off']) {
        await src.client.query(`SET standard_conforming_strings = ${scs}`);
        assert.equal((await src.client.query(`SELECT ${labelLiteral(label)}::text AS v`)).rows[0].v, label, `${label} with standard_conforming_strings ${scs}`);
      }
    await src.client.query(`RESET standard_conforming_strings`);
  });
});
