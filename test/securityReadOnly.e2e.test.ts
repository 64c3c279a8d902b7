import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCredentialProvider } from '../src/auth/credentials';
import { fetchDatabaseCredential, readOnlyClaims } from '../src/auth/databricks';
import { LakebaseReadOnlyCredentialError } from '../src/auth/errors';
import { parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { capturingLogger } from './helpers/capture';
import { cleanUp } from './helpers/cleanup';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';

const PAT = 'dapi-readonly-test-0123456789abcdef';
const USER = 'alice@example.com';

describe('least privilege: READ_ONLY database credentials (item 6; emulator on real PostgreSQL)', () => {
  let db: TestDatabase;
  let emu: LakebaseEmulator;
  const capture = capturingLogger();

  before(async () => {
    db = await createTestDatabase('secro');
    await db.client.query('CREATE TABLE public.orders (id int primary key, v text); INSERT INTO orders VALUES (1, $$a$$); CREATE TABLE public.payroll (id int, salary int); INSERT INTO payroll VALUES (1, 100)');
    emu = await new LakebaseEmulator({ upstream: ADMIN_URL, users: [{ email: USER, pats: [PAT] }], databaseInstances: ['shop-instance'] }).start();
  });
  after(() => cleanUp(() => emu?.stop(), () => db?.close()));

  function registry() {
    const environment = (credential: Record<string, unknown>) => ({ host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: USER, ssl: { mode: 'disable' }, credential });
    const config = parseConfig(
      {
        profiles: {
          shop: {
            auth: { method: 'pat', token: PAT, workspaceHost: emu.workspaceUrl },
            environments: {
              // With the Unity Catalog catalog: the credential names the tables it may read.
              scoped: environment({ type: 'provisioned', instanceName: 'shop-instance', catalog: 'shop_uc' }),
              // Without it: read-only, every table.
              whole: environment({ type: 'provisioned', instanceName: 'shop-instance' }),
            },
          },
        },
      },
      {},
    );
    const credentials = createCredentialProvider({ config, logger: capture.logger });
    return { credentials, pools: createPoolRegistry({ config, credentials, logger: capture.logger }) };
  }

  const rawToken = (claims: unknown) =>
    fetch(`${emu.workspaceUrl}/api/2.0/database/credentials`, {
      method: 'POST',
      headers: { authorization: `Bearer ${PAT}`, 'content-type': 'application/json' },
      body: JSON.stringify({ instance_names: ['shop-instance'], claims }),
    });

  test('the request carries claims: READ_ONLY on the tables as full Unity Catalog names (catalog known), unscoped otherwise', () => {
    const scoped = readOnlyClaims({ type: 'provisioned', instanceName: 'i', catalog: 'shop_uc' }, { readOnly: true, tables: ['orders', 'sales.items', 'public.orders'] });
    assert.deepEqual(scoped, [{ permission_set: 'READ_ONLY', resources: [{ table_name: 'shop_uc.public.orders' }, { table_name: 'shop_uc.sales.items' }] }]);
    assert.deepEqual(readOnlyClaims({ type: 'autoscaling', endpoint: 'projects/p/branches/b/endpoints/e' }, { readOnly: true, tables: ['orders'] }), [{ permission_set: 'READ_ONLY' }]);
  });

  test('a read-only side reads, and its write fails with a typed error naming the READ_ONLY credential', async () => {
    const { pools } = registry();
    const c = await pools.connect('shop', 'scoped', undefined, { readOnly: true, tables: ['public.orders'] });
    try {
      assert.deepEqual((await c.query('select v from orders')).rows, [{ v: 'a' }]);
      assert.equal((await c.query('show default_transaction_read_only')).rows[0].default_transaction_read_only, 'on');
      const err = await c.query(`insert into orders values (2, 'b')`).then(() => undefined, (e: unknown) => e);
      assert.ok(err instanceof LakebaseReadOnlyCredentialError, String(err));
      assert.equal(err.code, '25006');
      assert.match(err.message, /shop\/scoped: this connection logged in with a READ_ONLY database credential \(requested to read public\.orders\)/);
      // Turning the session setting off does not give it write access: the credential's role has none.
      await c.query('set default_transaction_read_only = off');
      const again = await c.query(`update orders set v = 'x'`).then(() => undefined, (e: unknown) => e);
      assert.ok(again instanceof LakebaseReadOnlyCredentialError, String(again));
      assert.equal(again.code, '42501');
      // Scoped to orders: another table does not read either.
      await assert.rejects(c.query('select * from payroll'), (e: Error & { code?: string }) => e.code === '42501');
    } finally {
      c.release();
    }
    // The same profile/environment without `access` is another pool with a writable credential.
    const w = await pools.connect('shop', 'scoped');
    try {
      await w.query(`insert into orders values (3, 'c')`);
      assert.equal((await w.query('show default_transaction_read_only')).rows[0].default_transaction_read_only, 'off');
    } finally {
      w.release();
    }
    assert.equal((await db.client.query('select count(*)::int n from orders')).rows[0].n, 2, 'only the writable connection wrote');
    await pools.end();
  });

  test('the emulator enforces it at login: a raw READ_ONLY token cannot write however the session is set', async () => {
    const { token } = await fetchDatabaseCredential(emu.workspaceUrl, PAT, { type: 'provisioned', instanceName: 'shop-instance' }, 'r1', { readOnly: true });
    const c = new pg.Client({ host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: USER, password: token, options: '-c default_transaction_read_only=off' });
    await c.connect();
    try {
      assert.equal((await c.query('show default_transaction_read_only')).rows[0].default_transaction_read_only, 'on', 'the client startup option must not win');
      assert.equal((await c.query('select count(*)::int n from payroll')).rows[0].n, 1, 'unscoped: every table reads');
      await assert.rejects(c.query(`insert into payroll values (2, 1)`), (e: Error & { code?: string }) => e.code === '25006');
      await c.query(`select set_config('default_transaction_read_only', 'off', false)`);
      for (const write of [`insert into payroll values (2, 1)`, 'delete from orders', 'truncate payroll', 'create table public.mine (x int)', 'drop table orders'])
        await assert.rejects(c.query(write), (e: Error & { code?: string }) => e.code === '42501' || e.code === '42P01', write);
      await assert.rejects(c.query('set role postgres'), (e: Error & { code?: string }) => e.code === '42501');
      await assert.rejects(c.query('set session authorization postgres'), (e: Error & { code?: string }) => e.code === '42501');
    } finally {
      await c.end();
    }
    // A token without claims writes as before.
    const { token: rw } = await fetchDatabaseCredential(emu.workspaceUrl, PAT, { type: 'provisioned', instanceName: 'shop-instance' }, 'r2');
    const w = new pg.Client({ host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: USER, password: rw });
    await w.connect();
    await w.query('insert into payroll values (9, 9)').finally(() => w.end());
  });

  test('without a credential exchange (native login) the side still gets a read-only session and the typed error', async () => {
    const config = parseConfig({ profiles: { local: { auth: { method: 'none' }, environments: { test: db.environment } } } }, {});
    const credentials = createCredentialProvider({ config, logger: capture.logger });
    const pools = createPoolRegistry({ config, credentials, logger: capture.logger });
    const c = await pools.connect('local', 'test', undefined, { readOnly: true });
    try {
      await assert.rejects(c.query('delete from orders'), (e: unknown) => e instanceof LakebaseReadOnlyCredentialError && e.code === '25006' && /requested to read only\), so it cannot write/.test(e.message));
    } finally {
      c.release();
    }
    await pools.end();
  });

  test('malformed claims are refused as the API would', async () => {
    const r = await rawToken([{ permission_set: 'READ_ONLY', resources: [{ table_name: 'public.orders' }] }]);
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(await r.json()), /full Unity Catalog name/);
    assert.equal((await rawToken([{ permission_set: 'WRITE' }])).status, 400);
  });
});
