import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { createCdcActivities } from '../src/activities/cdc';
import { toActivityFailure } from '../src/activities/failures';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { classifySqlError } from '../src/db/errors';
import { createPoolRegistry, type PoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { createMetrics } from '../src/metrics';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import type { CallContext } from '../src/sync';
import { SyncError } from '../src/sync';
import { createCdcEngine, type CdcEngine } from '../src/sync/cdc';

// A slot the source invalidates (max_slot_wal_keep_size, on a private embedded server): wal_status and
// safe_wal_size in status and metrics, and a typed non-retryable failure with the fix (it was
// "unknown, retryable" SQLSTATE 55000, retried for ever).

describe('cdc slot health: wal_status, safe_wal_size, and an invalidated slot (embedded PostgreSQL, max_slot_wal_keep_size = 1MB)', () => {
  let base: string;
  let cluster: EmbeddedCluster;
  let source: pg.Client;
  let pools: PoolRegistry;
  let cdc: CdcEngine;
  let ctx: CallContext;
  let activities: ReturnType<typeof createCdcActivities>;
  const metrics = createMetrics();

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdc-slot-'));
    cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical', max_slot_wal_keep_size: '1MB', wal_keep_size: '0' } });
    await cluster.init();
    await cluster.start();
    const admin = new pg.Client({ connectionString: cluster.url });
    await admin.connect();
    await admin.query('CREATE DATABASE src');
    await admin.query('CREATE DATABASE tgt');
    await admin.end();
    source = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/src') });
    await source.connect();
    await source.query(`CREATE TABLE orders (id int PRIMARY KEY, v text); INSERT INTO orders SELECT g, 'v' || g FROM generate_series(1, 100) g; CREATE TABLE junk (id int, pad text)`);
    const env = (database: string) => ({ host: '127.0.0.1', port: cluster.options.port, database, user: 'postgres', ssl: { mode: 'disable' } });
    const config = parseConfig({
      temporal: { taskQueue: 'cdc-slot' },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: env('src'), tgt: env('tgt') } } },
      pipelines: {
        orders: { source: { profile: 'local', environment: 'src', table: 'orders' }, target: { profile: 'local', environment: 'tgt', table: 'orders' }, mode: 'cdc', key: ['id'], cdc: { slot: 'lbw_fragile', batchMs: 200 } },
      },
    });
    const logger = createLogger({ level: 'silent' });
    const credentials = createCredentialProvider({ config, logger });
    pools = createPoolRegistry({ config, logger, credentials });
    ctx = { connect: (profile, environment) => pools.connect(profile, environment) };
    cdc = createCdcEngine({
      config,
      replicationConfig: async (profile, environment) => {
        (await pools.connect(profile, environment)).release();
        const { host, port, database, user, password, ssl } = pools.get(profile, environment).options;
        return { host, port, database, user, password, ssl };
      },
    });
    activities = createCdcActivities({ config, pools, credentials, metrics });
  });

  after(async () => {
    await pools?.end();
    await source?.end();
    await cluster?.stop();
    if (base) await rm(base, { recursive: true, force: true });
  });

  const metric = async (name: string) => (await metrics.registry.getSingleMetricAsString(name)).split('\n').filter((l) => !l.startsWith('#')).join('\n');

  test('a reserved slot shows wal_status and the WAL left before it would be invalidated, in status and metrics', async () => {
    await cdc.join(ctx, { pipeline: 'orders' });
    const s = await activities.cdcStatus({ pipeline: 'orders' });
    assert.equal(s.walStatus, 'reserved');
    assert.ok(typeof s.safeWalSize === 'number' && s.safeWalSize > 0, `safe_wal_size ${s.safeWalSize}`);
    assert.match(await metric('lakebase_cdc_slot_wal_status'), /lakebase_cdc_slot_wal_status\{slot="lbw_fragile",status="reserved"\} 1/);
    assert.match(await metric('lakebase_cdc_slot_wal_status'), /lakebase_cdc_slot_wal_status\{slot="lbw_fragile",status="lost"\} 0/);
    assert.match(await metric('lakebase_cdc_slot_safe_wal_bytes'), new RegExp(`lakebase_cdc_slot_safe_wal_bytes\\{slot="lbw_fragile"\\} ${s.safeWalSize}`));
  });

  test('an invalidated slot: status and metrics say lost with the fix; reading it is a non-retryable LakebaseCdcSlotInvalidated; the join refuses it', async () => {
    // Nobody reads the slot while the source writes far past max_slot_wal_keep_size; a checkpoint invalidates it.
    for (let i = 0; i < 4; i++) await source.query(`INSERT INTO junk SELECT g, repeat(md5(g::text), 16) FROM generate_series(1, 20000) g; SELECT pg_switch_wal()`);
    await source.query('CHECKPOINT');
    const { rows } = await source.query(`SELECT wal_status FROM pg_replication_slots WHERE slot_name = 'lbw_fragile'`);
    assert.equal(rows[0].wal_status, 'lost');

    const s = await activities.cdcStatus({ pipeline: 'orders' });
    assert.equal(s.walStatus, 'lost');
    assert.match(s.warnings.join('\n'), /replication slot "lbw_fragile" was invalidated by the source.*fix: drop the slot \(cdc stop --drop-slot/);
    assert.match(await metric('lakebase_cdc_slot_wal_status'), /status="lost"\} 1/);

    // What the source answers a reader: SQLSTATE 55000, typed as an invalidated slot with the fix, not retried.
    await cdc.finishSnapshot(ctx, { pipeline: 'orders' });
    const err = await cdc.stream(ctx, { pipeline: 'orders', untilLsn: await cdc.currentLsn(ctx, { pipeline: 'orders' }) }).then(() => null, (e: unknown) => e);
    assert.ok(err, 'reading an invalidated slot fails');
    const cls = classifySqlError(err);
    assert.equal(cls.type, 'LakebaseCdcSlotInvalidated', `${(err as Error).message} → ${JSON.stringify(cls)}`);
    assert.equal(cls.retryable, false);
    const failure = toActivityFailure(err, 'cdcStream(orders) on slot lbw_fragile');
    assert.ok(failure instanceof ApplicationFailure && failure.nonRetryable);
    assert.match(failure.message, /fix: slot "lbw_fragile" was invalidated .*cdc stop --drop-slot/);

    await assert.rejects(cdc.join(ctx, { pipeline: 'orders' }), (e: Error) => {
      assert.ok(e instanceof SyncError && e.type === 'LakebaseCdcSlotInvalidated', `${e.name}: ${e.message}`);
      return true;
    });
    // The way out the message names: drop the slot, start again.
    const left = await cdc.leave(ctx, { pipeline: 'orders', dropSlot: true });
    assert.equal(left.slotDropped, true);
    assert.equal((await cdc.join(ctx, { pipeline: 'orders' })).createdSlot, true);
  });
});
