// A plain PostgreSQL (trust or peer auth) as a first user meets it: `auth: { method: none }` logs in
// sending no password; an empty or unset password gets one clear problem, not contradictory ones; a
// profile without auth that finds no Databricks credential points at the local choices.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createCredentialProvider } from '../src/auth/credentials';
import { ConfigError, parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';

const logger = createLogger({ level: 'silent' });
const environments = { local: { host: '127.0.0.1', user: 'postgres', ssl: { mode: 'disable' } } };

function problemsOf(raw: unknown, env: NodeJS.ProcessEnv = {}): string[] {
  try {
    parseConfig(raw, env);
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err));
    return err.problems;
  }
  assert.fail('the config was accepted');
}

describe('auth: { method: none } for a server that asks for no password', () => {
  let db: TestDatabase;
  before(async () => {
    db = await createTestDatabase('noneauth');
  });
  after(() => db?.close());

  test('a profile with method none logs in to the real local server (trust auth) and sends no password', async () => {
    const config = parseConfig({ profiles: { local: { auth: { method: 'none' }, environments: { test: db.environment } } } }, {});
    const credentials = createCredentialProvider({ config, logger });
    const token = await credentials.acquire('local', 'test');
    assert.equal(token.token, '', 'no password');
    assert.equal(credentials.cache.fetches, 1);
    const pools = createPoolRegistry({ config, credentials, logger });
    try {
      const client = await pools.connect('local', 'test');
      try {
        const r = await client.query<{ db: string }>('select current_database() as db');
        assert.equal(r.rows[0]?.db, db.name);
      } finally {
        client.release();
      }
    } finally {
      await pools.end();
    }
  });

  test('a server that does ask for a password: the login fails saying method none sends none and what to use', async () => {
    // The emulator's Postgres front asks every login for a password.
    const emu = await new LakebaseEmulator({ upstream: ADMIN_URL }).start();
    try {
      const env = { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'postgres', ssl: { mode: 'disable' } };
      const config = parseConfig({ profiles: { local: { auth: { method: 'none' }, environments: { test: env } } } }, {});
      const pools = createPoolRegistry({ config, credentials: createCredentialProvider({ config, logger }), logger });
      try {
        await assert.rejects(pools.connect('local', 'test'), /local\/test: the server asked for a password, but profiles\.local\.auth is method none.*method: password/);
      } finally {
        await pools.end();
      }
    } finally {
      await emu.stop();
    }
  });

  test('method none takes no secret and cannot look a host up or exchange a credential', () => {
    assert.match(problemsOf({ profiles: { local: { auth: { method: 'none', password: 'x' }, environments } } }).join('\n'), /profiles\.local\.auth\.password: unknown key/);
    const autoscaling = { prod: { project: 'p', branch: 'b', endpoint: 'e', user: 'u' } };
    assert.match(problemsOf({ profiles: { local: { auth: { method: 'none' }, environments: autoscaling } } }).join('\n'), /profiles\.local\.environments\.prod\.project: looking up the host needs a Databricks token/);
    const credential = { local: { ...environments.local, credential: { type: 'provisioned', instanceName: 'i' } } };
    assert.match(problemsOf({ profiles: { local: { auth: { method: 'none' }, environments: credential } } }).join('\n'), /profiles\.local\.environments\.local\.credential: /);
  });

  test('an unknown method lists none among the choices', () => {
    assert.match(problemsOf({ profiles: { local: { auth: { method: 'trust' }, environments } } }).join('\n'), /profiles\.local\.auth\.method: expected method: pat, m2m, federation, databricks, password or none/);
  });
});

describe('an empty or unset password: one clear problem', () => {
  test('password: "" is one problem at its path, pointing at method none; no "exactly one of" beside it', () => {
    const problems = problemsOf({ profiles: { local: { auth: { method: 'password', password: '' }, environments } } });
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(problems[0] ?? '', /^profiles\.local\.auth\.password: expected a non-empty password.*method: none/);
  });

  test('password: ${PGPASSWORD} with PGPASSWORD unset is one problem naming the variable', () => {
    const problems = problemsOf({ profiles: { local: { auth: { method: 'password', password: '${PGPASSWORD}' }, environments } } }, {});
    assert.deepEqual(problems, ['profiles.local.auth.password: environment variable PGPASSWORD is not set; export it or use ${PGPASSWORD:-default}']);
  });

  test('unset host and token variables are named once each, without the schema repeating them', () => {
    const problems = problemsOf({ profiles: { a: { auth: { method: 'pat', token: '${DATABRICKS_TOKEN}' }, environments: { prod: { host: '${LAKEBASE_HOST}', user: 'u' } } } } }, {});
    assert.deepEqual(problems, [
      'profiles.a.auth.token: environment variable DATABRICKS_TOKEN is not set; export it or use ${DATABRICKS_TOKEN:-default}',
      'profiles.a.environments.prod.host: environment variable LAKEBASE_HOST is not set; export it or use ${LAKEBASE_HOST:-default}',
    ]);
  });

  test('neither password nor passwordFile is still named', () => {
    assert.match(problemsOf({ profiles: { local: { auth: { method: 'password' }, environments } } }).join('\n'), /profiles\.local\.auth: expected exactly one of password or passwordFile/);
  });
});

describe('a profile without auth that finds no Databricks credential', () => {
  test('the unified-auth error points at method password and method none for a plain PostgreSQL', async () => {
    const config = parseConfig({ profiles: { local: { environments } } }, {});
    // No DATABRICKS_* and a HOME without ~/.databrickscfg.
    const credentials = createCredentialProvider({ config, logger, env: { HOME: '/nonexistent-home' } });
    await assert.rejects(credentials.acquire('local', 'local'), (err: Error) => {
      assert.match(err.message, /profiles\.local\.auth: Databricks unified auth found no complete credential/);
      assert.match(err.message, /plain PostgreSQL.*auth: \{ method: password, password: \$\{PGPASSWORD\} \}.*auth: \{ method: none \}/);
      return true;
    });
  });
});
