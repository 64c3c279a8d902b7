import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { createCredentialProvider } from '../src/auth/credentials';
import { resolveDatabricksAuth } from '../src/auth/unifiedAuth';
import { parseConfig } from '../src/config/load';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { cleanUp } from './helpers/cleanup';

const PAT = `dapi${randomBytes(16).toString('hex')}`;
const SP_SECRET = `dose${randomBytes(16).toString('hex')}`;
const logger = createLogger({ level: 'silent' });

describe('Databricks unified auth (DATABRICKS_* environment, ~/.databrickscfg) against the emulator', () => {
  let emu: LakebaseEmulator;
  let db: TestDatabase;
  let home: string;

  before(async () => {
    db = await createTestDatabase('unified');
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      servicePrincipals: [{ clientId: 'sp-unified', clientSecret: SP_SECRET }],
      users: [{ email: 'alice@example.com', pats: [PAT] }],
    }).start();
    home = await mkdtemp(path.join(os.tmpdir(), 'lbw-home-'));
  });

  after(() =>
    cleanUp(
      () => emu?.stop(),
      () => db?.close(),
      () => home && rm(home, { recursive: true, force: true }),
    ),
  );

  const environment = (user: string) => ({ host: emu.postgres.host, port: emu.postgres.port, database: db.name, user, ssl: { mode: 'disable' } });

  /** Logs in through the emulator's Postgres front with the password the provider hands out. */
  async function loginWith(password: string, user: string): Promise<string> {
    const c = new pg.Client({ host: emu.postgres.host, port: emu.postgres.port, database: db.name, user, password });
    await c.connect();
    try {
      return (await c.query('SELECT current_database() AS d')).rows[0].d as string;
    } finally {
      await c.end();
    }
  }

  test('a profile without auth reads [DEFAULT] of ~/.databrickscfg (M2M) and logs in through the emulator', async () => {
    await writeFile(path.join(home, '.databrickscfg'), `# written by the test\n[DEFAULT]\nhost = ${emu.workspaceUrl}\nclient_id = sp-unified\nclient_secret = ${SP_SECRET}\n\n[other]\nhost = https://elsewhere.example\ntoken = nope\n`);
    const config = parseConfig({ profiles: { lb: { environments: { test: environment('sp-unified') } } } }, {});
    assert.equal(config.profiles.lb!.auth.method, 'databricks');
    const before = emu.requests('/oidc/v1/token');
    const provider = createCredentialProvider({ config, logger, env: { HOME: home } });
    const t = await provider.acquire('lb', 'test');
    assert.equal(t.identity, 'sp-unified');
    assert.equal(emu.requests('/oidc/v1/token'), before + 1);
    assert.equal(await loginWith(t.token, 'sp-unified'), db.name);
  });

  test('DATABRICKS_HOST/DATABRICKS_TOKEN win over the file; a PAT is picked before M2M', async () => {
    const r = resolveDatabricksAuth({}, { HOME: home, DATABRICKS_HOST: emu.workspaceUrl, DATABRICKS_TOKEN: PAT });
    assert.equal(r.method, 'pat');
    assert.equal(r.sources.host, 'env DATABRICKS_HOST');
    assert.equal(r.sources.token, 'env DATABRICKS_TOKEN');
    // client_id/secret still came from the file, but PAT is first in the SDKs' order.
    assert.match(r.sources.clientId ?? '', /\.databrickscfg \[DEFAULT\] client_id$/);

    const config = parseConfig({ profiles: { lb: { auth: { method: 'databricks' }, environments: { test: environment('alice@example.com') } } } }, {});
    const provider = createCredentialProvider({ config, logger, env: { HOME: home, DATABRICKS_HOST: emu.workspaceUrl, DATABRICKS_TOKEN: PAT } });
    const t = await provider.acquire('lb', 'test');
    assert.equal(t.token, PAT);
    assert.equal(await loginWith(t.token, 'alice@example.com'), db.name);
  });

  test('explicit config beats the environment, the profile comes from config, then DATABRICKS_CONFIG_PROFILE, and DATABRICKS_CONFIG_FILE moves the file', async () => {
    const file = path.join(home, 'custom.cfg');
    await writeFile(file, `[staging]\nhost = ${emu.workspaceUrl}\ntoken = ${PAT}\n\n[prod]\nhost = https://prod.example\nclient_id = from-file\nclient_secret = s\n`);
    const env = { HOME: home, DATABRICKS_CONFIG_FILE: file, DATABRICKS_CONFIG_PROFILE: 'staging', DATABRICKS_HOST: 'https://from-env.example' };
    const viaEnvProfile = resolveDatabricksAuth({}, env);
    assert.equal(viaEnvProfile.method, 'pat');
    assert.equal(viaEnvProfile.workspaceHost, 'https://from-env.example'); // env beats the file
    assert.equal(viaEnvProfile.sources.token, `${file} [staging] token`);

    const explicit = resolveDatabricksAuth({ profile: 'prod', host: 'https://explicit.example' }, env, 'profiles.lb.auth');
    assert.equal(explicit.method, 'm2m');
    assert.equal(explicit.workspaceHost, 'https://explicit.example');
    assert.equal(explicit.sources.host, 'profiles.lb.auth.host');
    assert.equal(explicit.method === 'm2m' && explicit.clientId, 'from-file');

    assert.throws(() => resolveDatabricksAuth({ profile: 'nosuch' }, env), /profile "nosuch" \(from auth\.profile\) is not in .*custom\.cfg/);
  });

  test('nothing complete found: a non-retryable LakebaseAuthConfigError saying what was found where and what is missing, no secret in it', async () => {
    const empty = await mkdtemp(path.join(os.tmpdir(), 'lbw-empty-home-'));
    try {
      const config = parseConfig({ profiles: { lb: { environments: { test: environment('x') } } } }, {});
      const provider = createCredentialProvider({ config, logger, env: { HOME: empty, DATABRICKS_HOST: emu.workspaceUrl, DATABRICKS_CLIENT_SECRET: SP_SECRET } });
      await assert.rejects(provider.acquire('lb', 'test'), (err: Error & { type?: string; retryable?: boolean }) => {
        assert.equal(err.type, 'LakebaseAuthConfigError');
        assert.equal(err.retryable, false);
        assert.match(err.message, /host from env DATABRICKS_HOST; clientSecret from env DATABRICKS_CLIENT_SECRET/);
        assert.match(err.message, /\.databrickscfg: not read \(ENOENT\)/);
        assert.match(err.message, /personal access token, missing token \(env DATABRICKS_TOKEN/);
        assert.match(err.message, /OAuth M2M, missing clientId \(profiles\.lb\.auth\.clientId, env DATABRICKS_CLIENT_ID/);
        assert.ok(!err.message.includes(SP_SECRET));
        return true;
      });
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });
});
