// Issue 30 item 6 wired: a sync's source side logs in with a READ_ONLY database credential scoped to
// the table it reads (the emulator grants exactly that), its sessions are read-only, and the sync
// (plan, chunks, hard deletes, verify) runs on it; the target keeps the writable credential.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { parseConfig } from '../src/config/load';
import { relationChecksum } from '../src/db/checksum';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { createLakebaseWorker } from '../src/worker';
import { cleanUp } from './helpers/cleanup';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const PAT = 'dapi-rosource-test-0123456789abcdef';
const USER = 'alice@example.com';

describe('a sync reads its source with a READ_ONLY credential (emulator on real PostgreSQL, real Temporal)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let emu: LakebaseEmulator;

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('rosource')]);
    await db.client.query(`CREATE TABLE public.orders (id int PRIMARY KEY, v text);
      INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
      CREATE TABLE public.payroll (id int, salary int)`);
    emu = await new LakebaseEmulator({ upstream: ADMIN_URL, users: [{ email: USER, pats: [PAT] }], databaseInstances: ['shop-instance'] }).start();
  });
  after(() => cleanUp(() => emu?.stop(), () => db?.close(), () => env?.teardown()));

  test('upsert with hard deletes and checksum verify: the source logs in READ_ONLY on public.orders only; the copy is exact', async () => {
    const taskQueue = uniqueQueue('rosource');
    const config = parseConfig(
      {
        temporal: { address: env.address, taskQueue },
        worker: { opsPort: 0 },
        profiles: {
          shop: {
            auth: { method: 'pat', token: PAT, workspaceHost: emu.workspaceUrl },
            environments: {
              main: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: USER, ssl: { mode: 'disable' }, credential: { type: 'provisioned', instanceName: 'shop-instance', catalog: 'shop_uc' } },
            },
          },
        },
        pipelines: {
          orders: {
            source: { profile: 'shop', environment: 'main', table: 'orders' },
            target: { profile: 'shop', environment: 'main', table: 'orders_copy' },
            key: ['id'],
            mode: 'upsert',
            deletes: 'hard',
            verify: 'checksums',
            batchRows: 1000,
          },
        },
      },
      {},
    );
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'error' }), connection: env.nativeConnection, taskQueue });
    const run = (tag: string) => env.client.workflow.execute('dataSync', { taskQueue, workflowId: `sync:orders:${tag}:${Date.now()}`, args: [{ pipeline: 'orders' }] });
    await worker.runUntil(async () => {
      await run('first');
      await db.client.query(`DELETE FROM orders WHERE id % 100 = 0; UPDATE orders SET v = 'changed' WHERE id % 77 = 0`);
      await run('second');
    });
    const cols = ['id', 'v'];
    assert.deepEqual(await relationChecksum(db.client, 'orders_copy', cols, ['id']), await relationChecksum(db.client, 'orders', cols, ['id']));
    const grants = emu.tokens
      .all()
      .map((t) => emu.tokens.valid(t)?.readOnly)
      .filter((g) => g !== undefined);
    assert.ok(grants.length > 0, 'a READ_ONLY credential was requested');
    for (const g of grants) assert.deepEqual(g.tables, ['public.orders'], 'scoped to the source table');
  });
});
