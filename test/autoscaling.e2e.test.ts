import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createCredentialProvider } from '../src/auth/credentials';
import { ConfigError, parseConfig } from '../src/config/load';
import { diagnoseConnection } from '../src/db/diagnose';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { cleanUp } from './helpers/cleanup';

const SP_SECRET = `dose${randomBytes(16).toString('hex')}`;
const ENDPOINT = 'projects/shop/branches/production/endpoints/primary';
const logger = createLogger({ level: 'silent' });

describe('Lakebase Autoscaling environments: project/branch/endpoint, host lookup, credential TTL (emulator)', () => {
  let emu: LakebaseEmulator;
  let db: TestDatabase;

  before(async () => {
    db = await createTestDatabase('autoscale');
    emu = await new LakebaseEmulator({ upstream: ADMIN_URL, servicePrincipals: [{ clientId: 'sp-a', clientSecret: SP_SECRET }], endpoints: [ENDPOINT] }).start();
  });
  after(() =>
    cleanUp(
      () => emu?.stop(),
      () => db?.close(),
    ),
  );

  const config = (env: Record<string, unknown>) =>
    parseConfig({
      profiles: {
        lb: {
          auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'sp-a', clientSecret: SP_SECRET },
          environments: { main: { port: emu.postgres.port, database: db.name, user: 'sp-a', ssl: { mode: 'disable' }, ...env } },
        },
      },
    }, {});

  test('the host is looked up once through Get Endpoint, the credential is asked for that endpoint, and the login works', async () => {
    const cfg = config({ project: 'shop', branch: 'production', endpoint: 'primary' });
    const credentials = createCredentialProvider({ config: cfg, logger });
    const pools = createPoolRegistry({ config: cfg, credentials, logger });
    const creds = emu.requests('/api/2.0/postgres/credentials');
    try {
      const c = await pools.connect('lb', 'main');
      try {
        assert.equal((await c.query('SELECT current_database() AS d')).rows[0].d, db.name);
      } finally {
        c.release();
      }
      assert.equal(await credentials.host('lb', 'main'), emu.postgres.host);
      assert.equal(emu.requests(`/api/2.0/postgres/${ENDPOINT}`), 1, 'looked up once, then cached');
      assert.equal(emu.requests('/api/2.0/postgres/credentials'), creds + 1);
    } finally {
      await pools.end();
    }
  });

  test('ttlSeconds is sent as ttl and bounds the credential; the config and the API both refuse a TTL outside 300–3600 s', async () => {
    const cfg = config({ project: 'shop', branch: 'production', endpoint: 'primary', credential: { type: 'autoscaling', endpoint: ENDPOINT, ttlSeconds: 600 } });
    const t = await createCredentialProvider({ config: cfg, logger }).acquire('lb', 'main');
    const left = (t.expiresAt - Date.now()) / 1000;
    assert.ok(left > 590 && left <= 600, `credential lives ${left} s`);

    assert.throws(() => config({ host: 'h', credential: { type: 'autoscaling', endpoint: ENDPOINT, ttlSeconds: 120 } }), (e: ConfigError) =>
      e.problems.some((p) => /credential\.ttlSeconds: expected 300–3600 seconds/.test(p)));
    const bearer = (await (await fetch(`${emu.workspaceUrl}/oidc/v1/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`sp-a:${SP_SECRET}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=all-apis',
    })).json() as { access_token: string }).access_token;
    const res = await fetch(`${emu.workspaceUrl}/api/2.0/postgres/credentials`, { method: 'POST', headers: { authorization: `Bearer ${bearer}` }, body: JSON.stringify({ endpoint: ENDPOINT, ttl: '7200s' }) });
    assert.equal(res.status, 400);
    assert.match(((await res.json()) as { message: string }).message, /at least 300 seconds .* at most 3600 seconds/);
  });

  test('a Postgres API answering 503 to the lookup is retryable and not cached; the next attempt gets the host', async () => {
    const cfg = config({ project: 'shop', branch: 'production', endpoint: 'primary' });
    const credentials = createCredentialProvider({ config: cfg, logger });
    emu.failNext(`/api/2.0/postgres/${ENDPOINT}`, { status: 503, count: 1 });
    await assert.rejects(credentials.host('lb', 'main'), (err: Error & { type?: string; retryable?: boolean }) => {
      assert.equal(err.type, 'LakebaseApiUnavailable', 'the Postgres API, not the token endpoint');
      assert.equal(err.retryable, true);
      return true;
    });
    assert.equal(await credentials.host('lb', 'main'), emu.postgres.host);
  });

  test('config: host or all of project/branch/endpoint', () => {
    for (const [env, re] of [
      [{ project: 'shop' }, /an Autoscaling environment names all of project, branch and endpoint/],
      [{ host: 'h', project: 'shop', branch: 'b', endpoint: 'e' }, /give host or project\/branch\/endpoint, not both/],
      [{}, /expected host, or project, branch and endpoint/],
    ] as const)
      assert.throws(() => config(env), (e: ConfigError) => e.problems.some((p) => re.test(p)), JSON.stringify(env));
  });

  test('test-connection shows the endpoint step: the looked-up host, or the 404 with the fix', async () => {
    const ok = await diagnoseConnection({ config: config({ project: 'shop', branch: 'production', endpoint: 'primary' }), credentials: createCredentialProvider({ config: config({ project: 'shop', branch: 'production', endpoint: 'primary' }), logger }), profile: 'lb', environment: 'main' });
    assert.deepEqual(ok.steps.slice(0, 3).map((s) => [s.step, s.ok]), [['config', true], ['endpoint', true], ['dns', true]]);
    assert.equal(ok.steps[1]!.detail, `${ENDPOINT} → host ${emu.postgres.host}`);
    assert.ok(ok.steps.every((s) => s.ok), JSON.stringify(ok.steps));

    const badCfg = config({ project: 'shop', branch: 'nosuch', endpoint: 'primary' });
    const bad = await diagnoseConnection({ config: badCfg, credentials: createCredentialProvider({ config: badCfg, logger }), profile: 'lb', environment: 'main' });
    const step = bad.steps.find((s) => s.step === 'endpoint')!;
    assert.equal(step.ok, false);
    assert.match(step.detail, /HTTP 404: NOT_FOUND .*check project, branch and endpoint of environment main/);
    assert.match(step.fix ?? '', /Lakebase console/);
    assert.ok(bad.steps.filter((s) => s.step !== 'config' && s.step !== 'endpoint').every((s) => s.skipped));
  });
});
