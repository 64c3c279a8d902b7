import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { relationChecksum } from '../src/db/checksum';
import { createPoolRegistry, type PoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import type { CallContext } from '../src/sync';
import { createSyncEngine, SyncError } from '../src/sync';
import { describeVerify } from '../src/workflows/verifyReport';
import { compareLsn, createCdcEngine, type CdcEngine, type StreamProgress } from '../src/sync/cdc';
import { startLogicalServer, type LogicalServer } from './helpers/logicalServer';

// The CDC engine on real servers, no Temporal: an embedded PostgreSQL started with
// wal_level=logical (the machine's shared server runs replica, and its settings are not ours).

describe('cdc: logical replication applied in batches (embedded PostgreSQL, wal_level=logical)', () => {
  let server: LogicalServer;
  let cluster: EmbeddedCluster;
  let source: pg.Client;
  let target: pg.Client;
  let pools: PoolRegistry;
  let cdc: CdcEngine;
  let sync: ReturnType<typeof createSyncEngine>;
  let ctx: CallContext;
  let emu: LakebaseEmulator;
  const PAT = `dapi${Math.random().toString(16).slice(2)}${Math.random().toString(16).slice(2)}`;

  const pipeline = (table: string, slot: string, more: Record<string, unknown> = {}) => ({
    source: { profile: 'local', environment: 'src', table },
    target: { profile: 'local', environment: 'tgt', table: `copy_${table}` },
    mode: 'cdc',
    key: ['id'],
    batchRows: 700,
    cdc: { slot, publication: undefined, batchRows: 500, batchMs: 200 },
    ...more,
  });

  before(async () => {
    server = await startLogicalServer('cdc-test', { settings: { max_replication_slots: '20', max_wal_senders: '20' } });
    ({ cluster, source, target } = server);
    await source.query(`
      CREATE TABLE mixed (id int PRIMARY KEY, grp int NOT NULL, name text, amount numeric(12,2), at timestamptz NOT NULL);
      INSERT INTO mixed SELECT g, g % 5, 'n' || g, g * 1.25, '2026-01-01'::timestamptz + g * interval '1 second' FROM generate_series(1, 5000) g;
      CREATE TABLE keyed (id int PRIMARY KEY, v text);
      INSERT INTO keyed SELECT g, 'v' || g FROM generate_series(1, 100) g;
      CREATE TABLE truncated (id int PRIMARY KEY, v text);
      INSERT INTO truncated SELECT g, 'v' || g FROM generate_series(1, 300) g;
      CREATE TABLE toasted (id int PRIMARY KEY, n int NOT NULL, big text);
      ALTER TABLE toasted ALTER COLUMN big SET STORAGE EXTERNAL;
      INSERT INTO toasted SELECT g, 0, (SELECT string_agg(md5(g::text || i::text), '') FROM generate_series(1, 3000) i) FROM generate_series(1, 20) g;
      CREATE TABLE growing (id int PRIMARY KEY, v text);
      INSERT INTO growing SELECT g, 'v' || g FROM generate_series(1, 200) g;
      CREATE TABLE parted (id int NOT NULL, region text NOT NULL, v text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
      CREATE TABLE parted_eu PARTITION OF parted FOR VALUES IN ('eu');
      CREATE TABLE parted_us PARTITION OF parted FOR VALUES IN ('us');
      INSERT INTO parted SELECT g, CASE WHEN g % 2 = 0 THEN 'eu' ELSE 'us' END, 'v' || g FROM generate_series(1, 1000) g;
      CREATE TABLE doomed (id int PRIMARY KEY, v text);
      INSERT INTO doomed VALUES (1, 'a');
      CREATE TABLE shared_a (id int PRIMARY KEY, v text);
      CREATE TABLE shared_b (id int PRIMARY KEY, v text);
      INSERT INTO shared_a SELECT g, 'a' || g FROM generate_series(1, 50) g;
      INSERT INTO shared_b SELECT g, 'b' || g FROM generate_series(1, 50) g;
      CREATE TABLE fronted (id int PRIMARY KEY, v text);
      INSERT INTO fronted SELECT g, 'f' || g FROM generate_series(1, 100) g;
    `);
    // The Lakebase emulator's Postgres front, logging in with a token (PAT) as a workspace user.
    emu = await new LakebaseEmulator({ upstream: cluster.url, users: [{ email: 'alice@example.com', pats: [PAT] }] }).start();
    const env = (database: string) => server.environment(database);
    const config = parseConfig({
      temporal: { taskQueue: 'cdc-test' },
      profiles: {
        local: { auth: { method: 'password', password: 'trust-auth-ignores-this' }, environments: { src: env('src'), tgt: env('tgt') } },
        lakebase: {
          auth: { method: 'pat', token: PAT },
          environments: { src: { host: emu.postgres.host, port: emu.postgres.port, database: 'src', user: 'alice@example.com', ssl: { mode: 'disable' } } },
        },
      },
      pipelines: {
        mixed: pipeline('mixed', 'lbw_mixed'),
        keyed: pipeline('keyed', 'lbw_keyed'),
        truncated: pipeline('truncated', 'lbw_truncated'),
        toasted: pipeline('toasted', 'lbw_toasted'),
        growing: pipeline('growing', 'lbw_growing'),
        parted: { ...pipeline('parted', 'lbw_parted'), key: ['id', 'region'] },
        doomed: pipeline('doomed', 'lbw_doomed'),
        // Two pipelines of one slot: one reader applies for both.
        shared_a: pipeline('shared_a', 'lbw_shared'),
        shared_b: pipeline('shared_b', 'lbw_shared'),
        fronted: { ...pipeline('fronted', 'lbw_fronted'), source: { profile: 'lakebase', environment: 'src', table: 'fronted' } },
      },
    });
    const logger = createLogger({ level: 'silent' });
    pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    ctx = { connect: (profile, environment) => pools.connect(profile, environment) };
    sync = createSyncEngine({ config });
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
    await emu?.stop();
    await server?.close();
  });

  /** join, then the partitioned initial load (slices side by side as the workflow runs them), then streaming. */
  async function snapshot(name: string): Promise<void> {
    const runId = `load-${name}`;
    await cdc.join(ctx, { pipeline: name });
    const plan = await cdc.load.plan(ctx, { pipeline: name, runId, partitioned: true });
    await Promise.all(
      plan.partitions!.filter((x) => !x.done).map(async (part) => {
        for (let after = part.cursor; ; ) {
          const c = await cdc.load.chunk(ctx, { pipeline: name, runId, after, partition: part.partition, initialLoad: plan.initialLoad });
          after = c.cursor;
          if (c.done) break;
        }
      }),
    );
    await cdc.load.finish(ctx, { pipeline: name, runId });
    await cdc.finishSnapshot(ctx, { pipeline: name });
  }

  /** Streams until every change committed so far is applied. */
  async function catchUp(name: string): Promise<StreamProgress> {
    const untilLsn = await cdc.currentLsn(ctx, { pipeline: name });
    return cdc.stream(ctx, { pipeline: name, untilLsn });
  }

  const same = async (table: string, columns: string[], key = ['id']) => {
    const a = await relationChecksum(source, table, columns, key);
    const b = await relationChecksum(target, `copy_${table}`, columns, key);
    assert.deepEqual(b, a, `copy_${table} differs from ${table}`);
    return a;
  };

  test('snapshot then a stream of mixed DML: changes made during the copy replay and converge; a hot row is written once per batch', async () => {
    await cdc.join(ctx, { pipeline: 'mixed' });
    // Made after the slot exists, before the copy: the copy sees them and the replay repeats them.
    await source.query(`UPDATE mixed SET amount = amount + 1 WHERE id % 10 = 0; DELETE FROM mixed WHERE id % 17 = 0; INSERT INTO mixed SELECT g, 1, 'new', 1, now() FROM generate_series(5001, 5200) g`);
    await snapshot('mixed');
    await source.query(`
      UPDATE mixed SET name = 'changed' WHERE id % 7 = 0;
      DELETE FROM mixed WHERE id BETWEEN 100 AND 150;
      INSERT INTO mixed SELECT g, 2, 'later', 2, now() FROM generate_series(6001, 6500) g;
      INSERT INTO mixed VALUES (1, 1, 'x', 1, now()) ON CONFLICT (id) DO UPDATE SET name = 'upserted';`);
    // A hot row: 1,000 updates in one transaction, collapsed to one write.
    await source.query(`DO $$ BEGIN FOR i IN 1..1000 LOOP UPDATE mixed SET amount = i WHERE id = 2; END LOOP; END $$`);
    const p = await catchUp('mixed');
    const sum = await same('mixed', ['id', 'grp', 'name', 'amount', 'at']);
    assert.equal(sum.rows, 5000 - Math.floor(5000 / 17) + 200 - 51 + Math.floor(51 / 17) + 500);
    assert.ok(p.changesReceived >= 1000 + 500, `${p.changesReceived} changes received`);
    assert.ok(p.rowsApplied < p.changesReceived - 900, `the hot row's updates collapse: ${p.rowsApplied} rows written for ${p.changesReceived} changes`);
    const status = await cdc.status(ctx, { pipeline: 'mixed' });
    assert.equal(status.phase, 'streaming');
    assert.equal(status.slotExists, true);
    assert.equal(status.appliedLsn, p.appliedLsn);
    assert.ok(status.retainedWalBytes > 0);
    assert.ok(status.rowsApplied > 0 && status.batches > 0);
    assert.deepEqual(status.warnings, []);
    // Nothing new: a second reader finds everything applied and writes nothing.
    const again = await catchUp('mixed');
    assert.equal(again.rowsApplied, 0);
  });

  test('verify on a cdc pipeline compares at the applied LSN it names, excuses no source row, and finds a target edit', async () => {
    await source.query(`UPDATE mixed SET name = 'before verify' WHERE id % 11 = 0`);
    const applied = (await catchUp('mixed')).appliedLsn;
    const plan = await sync.planVerify(ctx, { pipeline: 'mixed' });
    assert.equal(plan.at?.appliedLsn, applied);
    assert.equal((await cdc.status(ctx, { pipeline: 'mixed' })).appliedLsn, applied);
    assert.ok(compareLsn(plan.at!.sourceLsn, applied!) >= 0, `${plan.at!.sourceLsn} is at or after ${applied}`);
    assert.equal(plan.runCursor, null, 'the stream applies every change: no source row is excused by a cursor');
    const compare = async () => {
      const results = await Promise.all(plan.buckets.map((range) => sync.verifyBucket(ctx, { pipeline: 'mixed', mode: plan.mode, range, leafRows: plan.leafRows, runCursor: plan.runCursor })));
      const sum = (f: (r: (typeof results)[number]) => number) => results.reduce((n, r) => n + f(r), 0);
      return { ...plan, ok: sum((r) => r.mismatches) === 0, buckets: plan.buckets.length, sourceRows: sum((r) => r.sourceRows), targetRows: sum((r) => r.targetRows), mismatches: sum((r) => r.mismatches), tolerated: sum((r) => r.tolerated), differences: [], ranges: [] };
    };
    const clean = await compare();
    assert.equal(clean.mismatches, 0);
    assert.match(describeVerify(clean, plan.key), new RegExp(`source and target match .*; planned at the target's applied LSN ${applied!.replace('/', '\\/')} \\(source at `));
    // Edited behind the stream: the same plan finds it.
    const { rows: [orig] } = await source.query<{ name: string }>(`SELECT name FROM mixed WHERE id = 3`);
    await target.query(`UPDATE copy_mixed SET name = 'edited' WHERE id = 3`);
    try {
      const edited = await compare();
      assert.equal(edited.mismatches, 1);
    } finally {
      await target.query(`UPDATE copy_mixed SET name = $1 WHERE id = 3`, [orig!.name]);
    }
  });

  test('an update that changes the key moves the row; a source transaction larger than a batch is applied in pieces and committed once', async () => {
    await snapshot('keyed');
    await source.query(`UPDATE keyed SET id = id + 1000 WHERE id <= 10; UPDATE keyed SET id = 5000, v = 'moved' WHERE id = 50`);
    // 2,000 inserts, 500 deletes and 500 updates in one transaction: batchRows is 500.
    await source.query(`BEGIN; INSERT INTO keyed SELECT g, 'big' || g FROM generate_series(10001, 12000) g; DELETE FROM keyed WHERE id BETWEEN 10001 AND 10500;
      UPDATE keyed SET v = 'late' WHERE id BETWEEN 11501 AND 12000; COMMIT`);
    const p = await catchUp('keyed');
    assert.ok(p.lastBatch && p.lastBatch.changes >= 3000, JSON.stringify(p.lastBatch));
    await same('keyed', ['id', 'v']);
    const { rows } = await target.query(`SELECT count(*)::int AS n FROM copy_keyed WHERE id <= 10 OR id = 50`);
    assert.equal(rows[0].n, 0);
  });

  test('TRUNCATE empties the target, and what follows it in the batch is applied after', async () => {
    await snapshot('truncated');
    await source.query(`UPDATE truncated SET v = 'before' WHERE id < 10`);
    await source.query(`TRUNCATE truncated`);
    await source.query(`INSERT INTO truncated VALUES (1, 'one'), (2, 'two'), (3, 'three')`);
    await catchUp('truncated');
    const sum = await same('truncated', ['id', 'v']);
    assert.equal(sum.rows, 3);
  });

  test('TOASTed values that updates leave unchanged keep their value in the target', async () => {
    await snapshot('toasted');
    const before = await target.query(`SELECT md5(string_agg(big, '' ORDER BY id)) AS m FROM copy_toasted`);
    await source.query(`UPDATE toasted SET n = n + 1`);
    await source.query(`UPDATE toasted SET n = n + 1 WHERE id % 2 = 0`);
    await source.query(`UPDATE toasted SET big = 'short now' WHERE id = 3`);
    const p = await catchUp('toasted');
    assert.ok(p.rowsApplied >= 20);
    await same('toasted', ['id', 'n', 'big']);
    const after = await target.query(`SELECT md5(string_agg(big, '' ORDER BY id)) AS m, count(*) FILTER (WHERE big IS NULL)::int AS nulls FROM copy_toasted WHERE id <> 3`);
    assert.equal(after.rows[0].nulls, 0);
    assert.notEqual(before.rows[0].m, null);
  });

  test('a column added to the source mid-stream is added to the target (schemaChanges: evolve) and carried', async () => {
    await snapshot('growing');
    await source.query(`UPDATE growing SET v = 'pre' WHERE id <= 5`);
    await source.query(`ALTER TABLE growing ADD COLUMN note text`);
    await source.query(`UPDATE growing SET note = 'noted ' || id WHERE id % 3 = 0; INSERT INTO growing VALUES (1000, 'new', 'with note')`);
    await catchUp('growing');
    const { rows } = await target.query(`SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'copy_growing'::regclass AND attname = 'note'`);
    assert.equal(rows[0]?.t, 'text');
    await same('growing', ['id', 'v', 'note']);
  });

  test('a partitioned source publishes through its root: changes in every partition, and rows moving between them, arrive', async () => {
    await snapshot('parted');
    const { rows } = await source.query(`SELECT pubviaroot FROM pg_publication WHERE pubname = 'lbw_src'`);
    assert.equal(rows[0].pubviaroot, true);
    await source.query(`
      UPDATE parted SET v = 'u' || id WHERE id % 4 = 0;
      DELETE FROM parted WHERE id % 9 = 0;
      UPDATE parted SET region = 'eu' WHERE id = 1;
      INSERT INTO parted VALUES (2001, 'eu', 'x'), (2002, 'us', 'y');`);
    await catchUp('parted');
    await same('parted', ['id', 'region', 'v'], ['id', 'region']);
  });

  test('pipelines sharing a slot: one waiting for its snapshot holds the slot back, and replayed transactions are skipped by their checkpoint', async () => {
    await snapshot('shared_a');
    await cdc.join(ctx, { pipeline: 'shared_b' }); // joined, still copying: the reader must not confirm past its start
    const bStart = (await cdc.status(ctx, { pipeline: 'shared_b' })).startLsn!;
    await source.query(`UPDATE shared_a SET v = 'a1'; UPDATE shared_b SET v = 'b1' WHERE id <= 10`);
    const first = await catchUp('shared_a');
    assert.ok(first.rowsApplied >= 50);
    const slot = await cdc.status(ctx, { pipeline: 'shared_a' });
    assert.ok(slot.confirmedLsn && compareLsn(slot.confirmedLsn, bStart) <= 0, `confirmed ${slot.confirmedLsn} stays at b's start ${bStart}`);
    await same('shared_a', ['id', 'v']);
    await snapshot('shared_b');
    // The reader starts again at the slot's confirmed position: a's transactions come again and are skipped.
    await source.query(`UPDATE shared_b SET v = 'b2' WHERE id > 40`);
    const second = await catchUp('shared_a');
    await same('shared_a', ['id', 'v']);
    await same('shared_b', ['id', 'v']);
    const aState = await cdc.status(ctx, { pipeline: 'shared_a' });
    assert.equal(aState.rowsApplied, slot.rowsApplied, 'shared_a wrote nothing twice');
    assert.ok(second.rowsApplied >= 10);
    const left = await cdc.leave(ctx, { pipeline: 'shared_a', dropSlot: true });
    assert.deepEqual(left, { slotDropped: false, stillUsedBy: ['shared_b'] });
    const last = await cdc.leave(ctx, { pipeline: 'shared_b', dropSlot: true });
    assert.equal(last.slotDropped, true);
    const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = 'lbw_shared'`);
    assert.equal(rows[0].n, 0);
  });

  test("the emulator's Postgres front passes a replication connection through, logged in with a token", async () => {
    const before = emu.logins.accepted;
    await snapshot('fronted');
    await source.query(`UPDATE fronted SET v = 'g' || id WHERE id % 2 = 0; DELETE FROM fronted WHERE id > 90`);
    const p = await catchUp('fronted');
    assert.equal(p.rowsApplied, 55, "45 updated rows and 10 deleted (5 of them updated first: collapsed)");
    await same('fronted', ['id', 'v']);
    assert.ok(emu.logins.accepted > before, `${emu.logins.accepted} logins through the front`);
    const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_stat_replication WHERE application_name = 'lakebase-worker'`);
    assert.equal(rows[0].n, 0, 'the replication connection is closed after the stream stops');
  });

  test('a slot dropped behind the worker is a non-retryable failure naming the slot', async () => {
    await snapshot('doomed');
    await source.query(`SELECT pg_drop_replication_slot('lbw_doomed')`);
    await assert.rejects(catchUp('doomed'), (err: Error) => {
      assert.ok(err instanceof SyncError, `${err.name}: ${err.message}`);
      assert.equal(err.type, 'LakebaseCdcSlotMissing');
      assert.match(err.message, /replication slot "lbw_doomed" does not exist/);
      return true;
    });
    const status = await cdc.status(ctx, { pipeline: 'doomed' });
    assert.equal(status.slotExists, false);
    assert.match(status.warnings.join(' '), /lbw_doomed/);
  });
});
