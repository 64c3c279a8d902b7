import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { capturingLogger } from './helpers/capture';
import { cleanUp } from './helpers/cleanup';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startIdp, type TestIdp } from './helpers/idp';

/** The same claims as `token`, unsigned (`alg: none`), as an attacker who read alice's JWT would forge it. */
function forgeUnsigned(token: string): string {
  const claims = token.split('.')[1]!;
  return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${claims}.FORGED`;
}

describe('login-idp identities: caches and pools are keyed by the verified token, never by its claims (oidc-provider, emulator)', () => {
  let db: TestDatabase;
  let idpA: TestIdp;
  let idpB: TestIdp;
  let emu: LakebaseEmulator;
  const capture = capturingLogger();

  before(async () => {
    // Two IdPs issuing the same `sub` (the client id) to two different people.
    [db, idpA, idpB] = await Promise.all([
      createTestDatabase('secid'),
      startIdp([{ clientId: 'shared-app', email: 'alice@example.com' }]),
      startIdp([{ clientId: 'shared-app', email: 'mallory@example.com' }]),
    ]);
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      users: [{ email: 'alice@example.com' }, { email: 'mallory@example.com' }],
      federationPolicies: [
        { name: 'idp-a', issuer: idpA.issuer, audiences: ['databricks'], subjectClaim: 'email' },
        { name: 'idp-b', issuer: idpB.issuer, audiences: ['databricks'], subjectClaim: 'email' },
      ],
    }).start();
  });

  after(() => cleanUp(() => emu?.stop(), () => idpA?.stop(), () => idpB?.stop(), () => db?.close()));

  function provider(idlePoolEvictMs?: number) {
    const config = parseConfig(
      {
        profiles: {
          people: {
            auth: { method: 'federation', workspaceHost: emu.workspaceUrl, subjectToken: { source: 'login-idp' } },
            environments: { test: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'alice@example.com', ssl: { mode: 'disable' } } },
          },
        },
      },
      {},
    );
    const credentials = createCredentialProvider({ config, logger: capture.logger });
    return { credentials, pools: createPoolRegistry({ config, credentials, logger: capture.logger, ...(idlePoolEvictMs && { idlePoolEvictMs }) }) };
  }

  test("a forged alg:none JWT with alice's sub gets neither alice's token nor her pool", async () => {
    const { credentials, pools } = provider();
    const real = await idpA.token('shared-app');
    const alice = await credentials.acquire('people', 'test', { idpToken: real });
    const forged = { idpToken: forgeUnsigned(real) };
    assert.notEqual(credentials.identityKey('people', forged), credentials.identityKey('people', { idpToken: real }));
    assert.notEqual(pools.get('people', 'test', forged), pools.get('people', 'test', { idpToken: real }), 'the forger shares alice\'s pool');
    // The forged token goes to the exchange, which refuses it.
    const got = await credentials.acquire('people', 'test', forged).then((t) => t.token, (err: Error) => err);
    assert.notEqual(got, alice.token, "the forged JWT was handed alice's Databricks token");
    assert.ok(got instanceof Error && /TOKEN_INVALID/.test(got.message), String(got));
    await assert.rejects(pools.connect('people', 'test', forged), /TOKEN_INVALID/);
    await pools.end();
  });

  test('two IdPs issuing the same sub are two identities', async () => {
    const { credentials, pools } = provider();
    const [fromA, fromB] = [await idpA.token('shared-app'), await idpB.token('shared-app')];
    const sub = (t: string) => (JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString('utf8')) as { sub: string }).sub;
    assert.equal(sub(fromA), sub(fromB), 'the fixture must share a sub');
    const a = await credentials.acquire('people', 'test', { idpToken: fromA });
    const b = await credentials.acquire('people', 'test', { idpToken: fromB });
    assert.equal(a.identity, 'alice@example.com');
    assert.equal(b.identity, 'mallory@example.com', "mallory's token got alice's cache entry");
    assert.notEqual(a.token, b.token);
    assert.notEqual(pools.get('people', 'test', { idpToken: fromA }), pools.get('people', 'test', { idpToken: fromB }));
    await pools.end();
  });

  test("an idle per-user pool is closed and its session forgotten; a busy one is kept", async () => {
    const { pools } = provider(300);
    const session = { idpToken: await idpA.token('shared-app') };
    const client = await pools.connect('people', 'test', session);
    const first = pools.get('people', 'test', session);
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(pools.get('people', 'test', session), first, 'a pool with a connection checked out was closed');
    client.release();
    await new Promise((r) => setTimeout(r, 800));
    assert.deepEqual(pools.stats(), [], 'the idle pool is still open');
    assert.notEqual(pools.get('people', 'test', session), first);
    await pools.end();
  });

  test("a re-login token of another person is refused, fresh or from the cache", async () => {
    const { credentials, pools } = provider();
    const [alice, mallory] = [await idpA.token('shared-app'), await idpB.token('shared-app')];
    // Mallory's own run put her token in this worker's cache.
    assert.equal((await credentials.acquire('people', 'test', { idpToken: mallory })).identity, 'mallory@example.com');
    await assert.rejects(credentials.acquire('people', 'test', { idpToken: mallory, expectedIdentity: 'alice@example.com' }), /speaks for mallory@example\.com, but this run belongs to alice@example\.com/);
    const fresh = await idpB.token('shared-app');
    await assert.rejects(credentials.acquire('people', 'test', { idpToken: fresh, expectedIdentity: 'alice@example.com' }), /this run belongs to alice@example\.com/);
    assert.equal((await credentials.acquire('people', 'test', { idpToken: alice, expectedIdentity: 'alice@example.com' })).identity, 'alice@example.com');
    await pools.end();
  });
});
