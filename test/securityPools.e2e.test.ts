import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { accessKey, createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { capturingLogger } from './helpers/capture';
import { cleanUp } from './helpers/cleanup';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startIdp, type TestIdp } from './helpers/idp';

// Issue 30 item 14: per-person pools are evicted when idle, and with them the person's tokens.
describe('idle per-person pools take their cached credentials with them (oidc-provider, emulator)', () => {
  let db: TestDatabase;
  let idp: TestIdp;
  let emu: LakebaseEmulator;
  const capture = capturingLogger();

  before(async () => {
    [db, idp] = await Promise.all([createTestDatabase('secpool'), startIdp([{ clientId: 'app', email: 'alice@example.com' }])]);
    await db.client.query('CREATE TABLE public.orders (id int)');
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      users: [{ email: 'alice@example.com' }],
      databaseInstances: ['shop'],
      federationPolicies: [{ name: 'idp', issuer: idp.issuer, audiences: ['databricks'], subjectClaim: 'email' }],
    }).start();
  });
  after(() => cleanUp(() => emu?.stop(), () => idp?.stop(), () => db?.close()));

  test('after eviction neither the OAuth token nor the database credentials (writable or READ_ONLY) stay cached', async () => {
    const config = parseConfig(
      {
        profiles: {
          people: {
            auth: { method: 'federation', workspaceHost: emu.workspaceUrl, subjectToken: { source: 'login-idp' } },
            environments: { test: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'alice@example.com', ssl: { mode: 'disable' }, credential: { type: 'provisioned', instanceName: 'shop' } } },
          },
        },
      },
      {},
    );
    const credentials = createCredentialProvider({ config, logger: capture.logger });
    const pools = createPoolRegistry({ config, credentials, logger: capture.logger, idlePoolEvictMs: 300 });
    const session = { idpToken: await idp.token('app') };
    const access = { readOnly: true as const, tables: ['public.orders'] };
    const id = credentials.identityKey('people', session);
    const keys = [`oauth|people|${id}`, `db|people|test|${id}|`, `db|people|test|${id}|${accessKey(access)}`];
    for (const a of [undefined, access]) (await pools.connect('people', 'test', session, a)).release();
    assert.deepEqual(keys.map((k) => credentials.cache.peek(k) !== undefined), [true, true, true], 'the fixture must cache all three');
    await new Promise((r) => setTimeout(r, 900));
    assert.deepEqual(pools.stats(), [], 'the idle pools are still open');
    assert.deepEqual(keys.map((k) => credentials.cache.peek(k) !== undefined), [false, false, false], 'a token outlived its pool');
    // The person comes back: new pools, new credentials.
    const c = await pools.connect('people', 'test', session, access);
    assert.equal((await c.query('select count(*)::int n from orders')).rows[0].n, 0);
    c.release();
    await pools.end();
  });
});
