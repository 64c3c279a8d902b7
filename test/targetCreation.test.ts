import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { relationChecksum } from '../src/db/checksum';
import type { PoolRegistry } from '../src/db/pools';
import { SyncError, type CallContext, type SyncEngine } from '../src/sync';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { engineFor } from './helpers/engine';

// Creating a missing target in another database (the engine alone, on real PostgreSQL): the
// enum, domain and schema the columns need are created there, types are exact, values equal.

const LONG = `名前_${'x'.repeat(63 - Buffer.byteLength('名前_'))}`;
const HOSTILE = `a"; drop table x; --`;
const q = (name: string) => `"${name.replace(/"/g, '""')}"`;
const CORPUS_COLS = ['id', 'tags', 'grid', 'm', 'moods', 'p', 'at', 'd', 'span', 'u', 'n', 'amount', 'blob', 'doc', 'pair', LONG, HOSTILE];

describe('a missing target is created from the source (another database)', () => {
  let src: TestDatabase;
  let dst: TestDatabase;
  let pools: PoolRegistry;
  let engine: SyncEngine;
  let ctx: CallContext;
  let config: Config;
  let postgis = false;
  let run = 0;

  const side = (environment: 'src' | 'dst', table?: string, query?: string) => ({ profile: 'local', environment, ...(table && { table }), ...(query && { query }) });

  before(async () => {
    [src, dst] = await Promise.all([createTestDatabase('create_src'), createTestDatabase('create_dst')]);
    await src.client.query(`
      CREATE SCHEMA app;
      CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy', 'it''s "fine"');
      CREATE DOMAIN app.positive_int AS int DEFAULT 1 CONSTRAINT positive CHECK (VALUE > 0);
      CREATE TYPE app.pair AS (a app.positive_int, b text);
      CREATE TABLE app.odd (
        id int PRIMARY KEY, tags text[], grid int[][], m app.mood NOT NULL, moods app.mood[], p app.positive_int, at timestamptz, d date,
        span interval, u uuid, n numeric, amount numeric(12,2) NOT NULL, blob bytea, doc jsonb, pair app.pair,
        ${q(LONG)} varchar(20), ${q(HOSTILE)} text
      );
      INSERT INTO app.odd VALUES
        (1, '{a,"b,c",NULL,"d\\"e"}', '{{1,2},{3,4}}', 'happy', '{sad,ok}', 7, 'infinity', '-infinity', '1 year 2 mons 3 days 04:05:06.789', gen_random_uuid(), 'NaN', 12.5, '\\x00ff', '{"k": [1, "two", null, {"x": true}]}', '(2,x)', 'long', 'hostile'),
        (2, '{}', NULL, 'it''s "fine"', '{}', 1, '-infinity', 'infinity', '-1 day', NULL, '1e-30', 0, '', 'null', NULL, NULL, NULL),
        (3, NULL, NULL, 'sad', NULL, NULL, NULL, NULL, NULL, NULL, NULL, -1.01, NULL, NULL, NULL, NULL, NULL);
    `);
    postgis = (await src.client.query(`SELECT count(*)::int AS n FROM pg_available_extensions WHERE name = 'postgis'`)).rows[0].n > 0;
    if (postgis)
      await src.client.query(`
        CREATE EXTENSION postgis;
        CREATE TABLE places (id int PRIMARY KEY, pt geometry(Point, 4326) NOT NULL, area geometry(Polygon, 3857), route geography(LineString, 4326), pts geometry[]);
        INSERT INTO places SELECT g, ST_SetSRID(ST_MakePoint(2.35 + g * 0.001, 48.85), 4326),
          ST_Transform(ST_Buffer(ST_SetSRID(ST_MakePoint(2.35, 48.85 + g * 0.01), 4326)::geography, 100 + g)::geometry, 3857),
          ST_MakeLine(ST_MakePoint(2.35, 48.85), ST_MakePoint(2.36 + g * 0.001, 48.86))::geography, ARRAY[ST_MakePoint(g, g)]
          FROM generate_series(1, 50) g;
      `);
    const environments = { src: src.environment, dst: dst.environment };
    config = parseConfig({
      profiles: { local: { auth: { method: 'pat', token: 'trust-auth-ignores-this' }, environments } },
      pipelines: {
        full: { source: side('src', 'app.odd'), target: side('dst', 'app.odd'), key: ['id'], mode: 'full-refresh', batchRows: 2 },
        upsert: { source: side('src', 'app.odd'), target: side('dst', 'copy.odd_upsert'), key: ['id'], mode: 'upsert', batchRows: 2 },
        keyless: { source: side('src', 'app.odd'), target: side('dst', 'odd_keyless'), mode: 'full-refresh' },
        query: {
          source: side('src', undefined, 'SELECT id, m, amount, p FROM app.odd'),
          target: side('dst', 'from_query'),
          key: ['id'],
          transform: { columns: { cents: 'round(amount * 100)::bigint', label: `m::text || '!'` }, rename: { p: 'positive' } },
        },
        dry: { source: side('src', 'app.odd'), target: side('dst', 'never.created'), key: ['id'] },
        places: { source: side('src', 'places'), target: side('dst', 'geo.places'), key: ['id'], batchRows: 20 },
      },
    });
    ({ pools, engine, ctx } = engineFor(config));
  });

  after(async () => {
    await pools?.end();
    await Promise.all([src?.close(), dst?.close()]);
  });

  async function sync(pipeline: string) {
    const runId = `create-${++run}`;
    const plan = await engine.plan(ctx, { pipeline, runId, partitioned: true });
    for (const part of plan.partitions!) {
      for (let after = part.cursor; ; ) {
        const c = await engine.chunk(ctx, { pipeline, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
        after = c.cursor;
        if (c.done) break;
      }
    }
    await engine.finish(ctx, { pipeline, runId });
    return plan;
  }

  /** Column name → [type, not null] as the database has them. */
  async function columnTypes(db: TestDatabase, table: string) {
    const { rows } = await db.client.query<{ name: string; type: string; not_null: boolean }>(
      `SELECT attname AS name, format_type(atttypid, atttypmod) AS type, attnotnull AS not_null FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
      [table],
    );
    return Object.fromEntries(rows.map((r) => [r.name, [r.type, r.not_null]]));
  }

  const primaryKey = async (db: TestDatabase, table: string) =>
    (await db.client.query(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'`, [table])).rows.map((r) => r.def);

  test('full refresh: schema, enum (labels in order), domain (default and CHECK), composite and table are created; every type and value is exact', async () => {
    const plan = await sync('full');
    assert.match(plan.targetShape?.created?.join('\n') ?? '', /CREATE TABLE "app"\."odd"/);
    assert.deepEqual(await columnTypes(dst, 'app.odd'), await columnTypes(src, 'app.odd'));
    assert.deepEqual(await primaryKey(dst, 'app.odd'), ['PRIMARY KEY (id)']);
    const labels = `SELECT array_agg(enumlabel ORDER BY enumsortorder)::text AS l FROM pg_enum WHERE enumtypid = 'app.mood'::regtype`;
    assert.equal((await dst.client.query(labels)).rows[0].l, (await src.client.query(labels)).rows[0].l);
    const domain = `SELECT typdefault, (SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE contypid = t.oid) AS chk FROM pg_type t WHERE oid = 'app.positive_int'::regtype`;
    assert.deepEqual((await dst.client.query(domain)).rows, (await src.client.query(domain)).rows);
    await assert.rejects(dst.client.query(`SELECT 0::app.positive_int`), /violates check constraint "positive"/);
    assert.deepEqual(await relationChecksum(dst.client, 'app.odd', CORPUS_COLS, ['id']), await relationChecksum(src.client, 'app.odd', CORPUS_COLS, ['id']));
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM app.odd`)).rows[0].n, 3);
  });

  test('upsert: a new schema and table in a target that already has the types; a second run writes nothing and creates nothing', async () => {
    const plan = await sync('upsert');
    assert.match(plan.targetShape?.created?.join('\n') ?? '', /CREATE SCHEMA IF NOT EXISTS "copy"/);
    assert.doesNotMatch(plan.targetShape?.created?.join('\n') ?? '', /CREATE TYPE/); // made by the previous test
    assert.deepEqual(await columnTypes(dst, 'copy.odd_upsert'), await columnTypes(src, 'app.odd'));
    assert.deepEqual(await relationChecksum(dst.client, 'copy.odd_upsert', CORPUS_COLS, ['id']), await relationChecksum(src.client, 'app.odd', CORPUS_COLS, ['id']));
    const again = await sync('upsert');
    assert.equal(again.targetShape, undefined);
  });

  test('without a key: no primary key; NOT NULL follows the source', async () => {
    await sync('keyless');
    assert.deepEqual(await primaryKey(dst, 'odd_keyless'), []);
    const types = await columnTypes(dst, 'odd_keyless');
    assert.deepEqual(types.id, ['integer', true]); // the source's primary key column
    assert.deepEqual(types.m, ['app.mood', true]);
    assert.deepEqual(types.p, ['app.positive_int', false]);
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM odd_keyless`)).rows[0].n, 3);
  });

  test('a query source with SQL transforms: columns typed by what the query and the expressions return', async () => {
    await sync('query');
    assert.deepEqual(await columnTypes(dst, 'from_query'), {
      id: ['integer', true], // the key
      m: ['app.mood', false], // a query's rows may differ from the table's: no NOT NULL from it
      amount: ['numeric(12,2)', false],
      positive: ['app.positive_int', false],
      cents: ['bigint', false],
      label: ['text', false],
    });
    const { rows } = await dst.client.query(`SELECT id, cents::text, label FROM from_query ORDER BY id`);
    assert.deepEqual(rows, [
      { id: 1, cents: '1250', label: 'happy!' },
      { id: 2, cents: '0', label: `it's "fine"!` },
      { id: 3, cents: '-101', label: 'sad!' },
    ]);
  });

  test('a dry run describes the CREATE statements and creates nothing, not even state', async () => {
    const before = await dst.client.query(`SELECT count(*)::int AS n FROM pg_class`);
    const plan = await engine.plan(ctx, { pipeline: 'dry', runId: 'dry-1', partitioned: true, dryRun: true });
    assert.ok(plan.dryRun);
    assert.match(plan.dryRun.actions.join('\n'), /target never\.created does not exist: the run creates it/);
    assert.match(plan.dryRun.statements.join('\n'), /CREATE SCHEMA IF NOT EXISTS "never"[\s\S]*CREATE TABLE "never"\."created"/);
    assert.equal((await dst.client.query(`SELECT to_regnamespace('never') AS n`)).rows[0].n, null);
    assert.equal((await dst.client.query(`SELECT count(*)::int AS n FROM lakebase_worker.sync_state WHERE pipeline = 'dry'`)).rows[0].n, 0);
    assert.deepEqual((await dst.client.query(`SELECT count(*)::int AS n FROM pg_class`)).rows, before.rows);
  });

  test('PostGIS geometry and geography (with typmods, and an array) in a target without the extension: created, values equal', async (t) => {
    if (!postgis) return t.skip('postgis is not installed (apt-get install postgresql-15-postgis-3; .ci/run installs it)');
    const plan = await sync('places');
    assert.match(plan.targetShape?.created?.join('\n') ?? '', /CREATE EXTENSION IF NOT EXISTS "postgis" SCHEMA "public"/);
    assert.deepEqual(await columnTypes(dst, 'geo.places'), await columnTypes(src, 'places'));
    const text = `SELECT id, ST_AsEWKT(pt) AS pt, ST_AsEWKT(area) AS area, ST_AsEWKT(route) AS route, pts::text FROM %s ORDER BY id`;
    assert.deepEqual((await dst.client.query(text.replace('%s', 'geo.places'))).rows, (await src.client.query(text.replace('%s', 'places'))).rows);
  });

  test('a type whose extension the target cannot have fails planning with the extension and the fix named', async (t) => {
    if (!postgis) return t.skip('postgis is not installed');
    // A role that may create schemas and tables but not an untrusted extension (PostGIS needs a superuser).
    await dst.client.query(`DO $$ BEGIN CREATE ROLE lbw_no_ext LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$; GRANT CREATE ON DATABASE ${q(dst.name)} TO lbw_no_ext`);
    await dst.client.query(`DROP SCHEMA IF EXISTS geo CASCADE; DROP EXTENSION IF EXISTS postgis CASCADE`);
    const limited = parseConfig({
      profiles: { local: { auth: { method: 'pat', token: 'x' }, environments: { src: src.environment, dst: { ...dst.environment, user: 'lbw_no_ext' } } } },
      pipelines: { places: { source: side('src', 'places'), target: side('dst', 'geo.places'), key: ['id'], stateSchema: 'lbw_no_ext_state' } },
    });
    const { pools: limitedPools, engine: e, ctx: limitedCtx } = engineFor(limited);
    try {
      await assert.rejects(
        e.plan(limitedCtx, { pipeline: 'places', runId: 'ext-1', partitioned: true }),
        (err: unknown) => {
          assert.ok(err instanceof SyncError, String(err));
          assert.equal(err.type, 'LakebaseConfigError');
          assert.match(err.message, /column "pt" has type geometry\(Point,4326\) from extension "postgis", which the target database does not have, and creating it failed: permission denied .*CREATE EXTENSION postgis/);
          return true;
        },
      );
      assert.equal((await dst.client.query(`SELECT to_regclass('geo.places') AS t`)).rows[0].t, null);
    } finally {
      await limitedPools.end();
      await dst.client.query(`REVOKE ALL ON DATABASE ${q(dst.name)} FROM lbw_no_ext`);
    }
  });
});
