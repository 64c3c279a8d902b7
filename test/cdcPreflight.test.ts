import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { toActivityFailure } from '../src/activities/failures';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { relationChecksum } from '../src/db/checksum';
import { classifySqlError } from '../src/db/errors';
import { createPoolRegistry, type PoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import type { CallContext } from '../src/sync';
import { SyncError } from '../src/sync';
import { createCdcEngine, type CdcEngine } from '../src/sync/cdc';
import { identityProblem } from '../src/sync/cdc/preflight';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

// cdc's checks before anything is touched (src/sync/cdc/preflight.ts), on real servers: an embedded
// PostgreSQL with wal_level=logical, and the machine's shared server (wal_level=replica, read only:
// its settings are not ours).

describe('cdc preflight: the source is checked before a publication or slot is touched', () => {
  let server: LogicalServer;
  let source: pg.Client;
  let target: pg.Client;
  let shared: TestDatabase;
  let pools: PoolRegistry;
  let cdc: CdcEngine;
  let ctx: CallContext;

  const pipeline = (table: string, more: Record<string, unknown> = {}) => ({
    source: { profile: 'local', environment: 'src', table },
    target: { profile: 'local', environment: 'tgt', table: `copy_${table}` },
    mode: 'cdc',
    key: ['id'],
    cdc: { slot: 'lbw_pf', batchRows: 500, batchMs: 200 },
    ...more,
  });

  before(async () => {
    [shared, server] = await Promise.all([createTestDatabase('cdcpf'), startLogicalServer('cdc-preflight', { settings: { max_replication_slots: '6', max_wal_senders: '10' } })]);
    ({ source, target } = server);
    await source.query(`
      CREATE TABLE nokey (id int, v text);
      INSERT INTO nokey SELECT g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE wrongkey (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text);
      INSERT INTO wrongkey SELECT g, 'c' || g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE fullid (id int NOT NULL, v text);
      ALTER TABLE fullid REPLICA IDENTITY FULL;
      INSERT INTO fullid SELECT g, 'v' || g FROM generate_series(1, 300) g;
      CREATE TABLE indexed (id int NOT NULL, v text);
      CREATE UNIQUE INDEX indexed_id ON indexed (id);
      INSERT INTO indexed SELECT g, 'v' || g FROM generate_series(1, 50) g;
      CREATE TABLE parted (id int NOT NULL, region text NOT NULL, v text) PARTITION BY LIST (region);
      CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
      ALTER TABLE parted REPLICA IDENTITY FULL; -- the root only: PostgreSQL does not pass it on to partitions
      CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
      INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || g FROM generate_series(1, 40) g;
      CREATE ROLE norep LOGIN;
      CREATE TABLE theirs (id int PRIMARY KEY, v text);
      ALTER TABLE theirs OWNER TO norep;
      CREATE TABLE spare (id int PRIMARY KEY, v text);`);
    await shared.client.query(`CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders VALUES (1, 'a')`);
    const env = server.environment;
    const config = parseConfig({
      temporal: { taskQueue: 'cdc-preflight' },
      profiles: {
        local: { auth: { method: 'password', password: 'trust' }, environments: { src: env('src'), tgt: env('tgt'), norep: env('src', 'norep') } },
        machine: { auth: { method: 'password', password: 'trust' }, environments: { replica: shared.environment } },
      },
      pipelines: {
        nokey: pipeline('nokey'),
        wrongkey: pipeline('wrongkey', { key: ['code'] }),
        fullid: pipeline('fullid'),
        indexed: pipeline('indexed'),
        parted: { ...pipeline('parted'), key: ['id', 'region'] },
        norep: { ...pipeline('theirs'), source: { profile: 'local', environment: 'norep', table: 'theirs' } },
        spare: { ...pipeline('spare'), cdc: { slot: 'lbw_spare' } },
        machine: { ...pipeline('orders'), source: { profile: 'machine', environment: 'replica', table: 'orders' }, cdc: { slot: 'lbw_machine' } },
      },
    });
    const logger = createLogger({ level: 'silent' });
    pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    ctx = { connect: (profile, environment) => pools.connect(profile, environment) };
    cdc = createCdcEngine({
      config,
      replicationConfig: async (profile, environment) => {
        (await pools.connect(profile, environment)).release();
        const { host, port, database, user, password, ssl } = pools.get(profile, environment).options;
        return { host, port, database, user, password, ssl };
      },
    });
  });

  after(async () => {
    await pools?.end();
    await shared?.close();
    await server?.close();
  });

  const refused = async (pipeline: string, pattern: RegExp, type = 'LakebaseCdcSourceNotReady') =>
    assert.rejects(cdc.join(ctx, { pipeline }), (err: Error) => {
      assert.ok(err instanceof SyncError, `${err.name}: ${err.message}`);
      assert.equal(err.type, type);
      assert.match(err.message, pattern);
      return true;
    });
  const published = async () => (await source.query<{ t: string }>(`SELECT tablename::text AS t FROM pg_publication_tables ORDER BY 1`)).rows.map((r) => r.t);
  const slots = async () => (await source.query<{ s: string }>(`SELECT slot_name::text AS s FROM pg_replication_slots ORDER BY 1`)).rows.map((r) => r.s);

  async function snapshot(name: string): Promise<void> {
    const runId = `load-${name}`;
    await cdc.join(ctx, { pipeline: name });
    const plan = await cdc.load.plan(ctx, { pipeline: name, runId, partitioned: true });
    for (const part of plan.partitions!.filter((x) => !x.done))
      for (let after = part.cursor; ; ) {
        const c = await cdc.load.chunk(ctx, { pipeline: name, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
        after = c.cursor;
        if (c.done) break;
      }
    await cdc.load.finish(ctx, { pipeline: name, runId });
    await cdc.finishSnapshot(ctx, { pipeline: name });
  }

  test('a table without a primary key is refused with the statement that fixes it; no publication, no slot, and the source keeps taking UPDATE and DELETE', async () => {
    await refused('nokey', /public\.nokey has no primary key.*fix: run ALTER TABLE public\.nokey ADD PRIMARY KEY \("id"\), or ALTER TABLE public\.nokey REPLICA IDENTITY FULL/);
    assert.deepEqual(await published(), []);
    assert.deepEqual(await slots(), []);
    await source.query(`UPDATE nokey SET v = 'still works' WHERE id = 1`);
    await source.query(`DELETE FROM nokey WHERE id = 2`);
    // With a publication that exists (another pipeline made it), the table is still not added.
    await cdc.join(ctx, { pipeline: 'fullid' });
    assert.deepEqual(await published(), ['fullid']);
    await refused('nokey', /REPLICA IDENTITY FULL/);
    assert.deepEqual(await published(), ['fullid']);
    await source.query(`UPDATE nokey SET v = 'works still' WHERE id = 3; DELETE FROM nokey WHERE id = 4`);
    const report = await cdc.preflight(ctx, { pipeline: 'nokey' });
    assert.deepEqual(report.filter((s) => !s.ok).map((s) => s.step), ['replica identity']);
  });

  test('a key that is not the replica identity is refused (it would be NULL in deletes), naming both', async () => {
    await refused('wrongkey', /pipelines\.wrongkey\.key is \[code\] but the primary key of public\.wrongkey is \(id\).*set pipelines\.wrongkey\.key to \[id\], or run ALTER TABLE public\.wrongkey REPLICA IDENTITY USING INDEX wrongkey_code_key/);
    assert.ok(!(await published()).includes('wrongkey'));
  });

  test('REPLICA IDENTITY FULL without a primary key is accepted, and deletes and updates converge', async () => {
    await snapshot('fullid');
    await source.query(`UPDATE fullid SET v = 'u' || id WHERE id % 3 = 0; DELETE FROM fullid WHERE id % 7 = 0; UPDATE fullid SET id = id + 1000 WHERE id = 10`);
    await cdc.stream(ctx, { pipeline: 'fullid', untilLsn: await cdc.currentLsn(ctx, { pipeline: 'fullid' }) });
    const [a, b] = await Promise.all([relationChecksum(source, 'fullid', ['id', 'v'], ['id']), relationChecksum(target, 'copy_fullid', ['id', 'v'], ['id'])]);
    assert.deepEqual(b, a);
  });

  test('a unique index on the key is named as the fix (USING INDEX); after it the join goes ahead', async () => {
    await refused('indexed', /ALTER TABLE public\.indexed REPLICA IDENTITY USING INDEX indexed_id/);
    assert.ok(!(await published()).includes('indexed'));
    await source.query(`ALTER TABLE indexed REPLICA IDENTITY USING INDEX indexed_id`);
    const joined = await cdc.join(ctx, { pipeline: 'indexed' });
    assert.equal(joined.phase, 'snapshot');
    assert.ok((await published()).includes('indexed'));
    await source.query(`UPDATE indexed SET v = 'ok' WHERE id = 1`);
  });

  test('a partitioned table is checked partition by partition: FULL on the root alone leaves the partitions refusing updates', async () => {
    await refused('parted', /public\.parted_eu has no primary key.*public\.parted_us has no primary key/);
    assert.ok(!(await published()).includes('parted'));
    await source.query(`UPDATE parted SET v = 'fine' WHERE id = 1`);
  });

  test("a role without the REPLICATION right is refused with the ALTER ROLE that grants it", async () => {
    const report = await cdc.preflight(ctx, { pipeline: 'norep' });
    const rep = report.find((s) => s.step === 'replication')!;
    assert.equal(rep.ok, false);
    assert.match(rep.fix!, /ALTER ROLE "norep" WITH REPLICATION/);
    await refused('norep', /role norep has no REPLICATION right/);
    assert.ok(!(await published()).includes('theirs'));
  });

  test('no free replication slot is refused before a publication is altered', async () => {
    const used = (await slots()).length;
    const fillers = Array.from({ length: 6 - used }, (_, i) => `filler_${i}`);
    for (const f of fillers) await source.query(`SELECT pg_create_physical_replication_slot($1)`, [f]);
    try {
      await refused('spare', /no free replication slot on the source: 6 of max_replication_slots 6 are in use/);
      assert.ok(!(await published()).includes('spare'));
    } finally {
      for (const f of fillers) await source.query(`SELECT pg_drop_replication_slot($1)`, [f]);
    }
  });

  test('wal_level=replica (the machine server): a non-retryable configuration failure with the fix, not "retryable unknown 55000"; nothing created', async () => {
    const report = await cdc.preflight(ctx, { pipeline: 'machine' });
    const wal = report.find((s) => s.step === 'wal_level')!;
    assert.equal(wal.ok, false);
    assert.match(wal.detail, /wal_level is replica/);
    await refused('machine', /wal_level is replica on the source.*ALTER SYSTEM SET wal_level = logical/);
    const { rows } = await shared.client.query(`SELECT (SELECT count(*) FROM pg_publication)::int AS pubs`);
    assert.equal(rows[0].pubs, 0);
    // The server's own refusal, should it come from elsewhere (a slot made by hand), is typed the same way.
    const err = await shared.client.query(`SELECT pg_create_logical_replication_slot('lbw_never', 'pgoutput')`).then(() => null, (e: unknown) => e);
    assert.ok(err, 'a replica server refuses a logical slot');
    assert.deepEqual(classifySqlError(err), { kind: 'replication', type: 'LakebaseCdcSourceNotReady', retryable: false, sqlState: '55000' });
    const failure = toActivityFailure(err, 'cdcJoin(machine)');
    assert.equal(failure.nonRetryable, true);
    assert.match(failure.message, /fix: the source needs wal_level = logical/);
  });
});

describe('identityProblem: the replica identity against key, after transform.rename', () => {
  const pk = { table: 'public.orders', mode: 'default' as const, columns: ['id'], primaryKey: ['id'], candidateIndexes: [{ name: 'orders_code_key', columns: ['code'] }], owned: true };

  test('a renamed key column is matched by its target name', () => {
    assert.equal(identityProblem(pk, ['order_id'], { id: 'order_id' }, 'pipelines.o'), null);
    assert.match(identityProblem(pk, ['id'], { id: 'order_id' }, 'pipelines.o')!.detail, /pipelines\.o\.key is \[id\] but the primary key of public\.orders is \(order_id\)/);
  });

  test('FULL serves any key; a key in another column order is the same key', () => {
    assert.equal(identityProblem({ ...pk, mode: 'full', columns: null }, ['code'], {}, 'pipelines.o'), null);
    assert.equal(identityProblem({ ...pk, columns: ['a', 'b'] }, ['b', 'a'], {}, 'pipelines.o'), null);
  });

  test('a USING INDEX identity that is not the key: the fix does not offer another index', () => {
    const r = identityProblem({ ...pk, mode: 'index', columns: ['code'] }, ['id'], {}, 'pipelines.o')!;
    assert.match(r.detail, /replica identity index of public\.orders is \(code\)/);
    assert.equal(r.fix, 'set pipelines.o.key to [code], or run ALTER TABLE public.orders REPLICA IDENTITY FULL');
  });
});
