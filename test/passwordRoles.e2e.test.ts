import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createCredentialProvider } from '../src/auth/credentials';
import { ConfigError, parseConfig } from '../src/config/load';
import { createPoolRegistry } from '../src/db/pools';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { cleanUp } from './helpers/cleanup';

const PASSWORD = `pw-${randomBytes(12).toString('hex')}`;
const PAT = `dapi${randomBytes(16).toString('hex')}`;
const logger = createLogger({ level: 'silent' });

describe('native Postgres password roles and pool lifetime limits (emulator in front of PostgreSQL)', () => {
  let emu: LakebaseEmulator;
  let db: TestDatabase;
  let dir: string;

  before(async () => {
    db = await createTestDatabase('pwrole');
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      passwordRoles: [{ role: 'app_rw', password: PASSWORD }],
      users: [{ email: 'alice@example.com', pats: [PAT] }],
    }).start();
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-pw-'));
  });

  after(() =>
    cleanUp(
      () => emu?.stop(),
      () => db?.close(),
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  const environment = (user: string, more: Record<string, unknown> = {}) => ({
    host: emu.postgres.host, port: emu.postgres.port, database: db.name, user, ssl: { mode: 'disable' }, ...more,
  });

  test('method: password (inline or passwordFile) logs in as the password role; no token request is made', async () => {
    const file = path.join(dir, 'pw');
    await writeFile(file, `${PASSWORD}\n`);
    const config = parseConfig({
      profiles: {
        inline: { auth: { method: 'password', password: PASSWORD }, environments: { test: environment('app_rw') } },
        fromFile: { auth: { method: 'password', passwordFile: file }, environments: { test: environment('app_rw') } },
      },
    }, {});
    const tokenCalls = emu.requests('/oidc/v1/token');
    const pools = createPoolRegistry({ config, credentials: createCredentialProvider({ config, logger }), logger });
    try {
      for (const profile of ['inline', 'fromFile']) {
        const c = await pools.connect(profile, 'test');
        try {
          assert.equal((await c.query('SELECT current_database() AS d')).rows[0].d, db.name);
        } finally {
          c.release();
        }
      }
    } finally {
      await pools.end();
    }
    assert.equal(emu.requests('/oidc/v1/token'), tokenCalls);
  });

  test('the emulator keeps the two kinds of role apart: a wrong password and a token for a password role are refused', async () => {
    const config = parseConfig({
      profiles: {
        wrong: { auth: { method: 'password', password: 'not-it' }, environments: { test: environment('app_rw') } },
        tokenForPwRole: { auth: { method: 'pat', token: PAT }, environments: { test: environment('app_rw') } },
      },
    }, {});
    const pools = createPoolRegistry({ config, credentials: createCredentialProvider({ config, logger }), logger });
    try {
      const refused = emu.logins.refused;
      await assert.rejects(pools.connect('wrong', 'test'));
      await assert.rejects(pools.connect('tokenForPwRole', 'test'));
      assert.ok(emu.logins.refused >= refused + 2);
    } finally {
      await pools.end();
    }
  });

  test('config: exactly one of password/passwordFile; no credential exchange with a password role; lifetime at most 3 days', () => {
    assert.throws(() => parseConfig({ profiles: { p: { auth: { method: 'password' }, environments: { e: environment('app_rw') } } } }, {}), (e: ConfigError) =>
      e.problems.some((p) => /profiles\.p\.auth: expected exactly one of password or passwordFile/.test(p)));
    assert.throws(
      () => parseConfig({ profiles: { p: { auth: { method: 'password', password: 'x' }, environments: { e: environment('app_rw', { credential: { type: 'autoscaling', endpoint: 'projects/a/branches/b/endpoints/c' } }) } } } }, {}),
      (e: ConfigError) => e.problems.some((p) => /environments\.e\.credential: a password role logs in with its own password/.test(p)) && !e.message.includes(PASSWORD),
    );
    assert.throws(() => parseConfig({ profiles: { p: { auth: { method: 'password', password: 'x' }, environments: { e: environment('app_rw', { maxConnectionLifetimeMs: 4 * 24 * 3600_000 }) } } } }, {}), (e: ConfigError) =>
      e.problems.some((p) => /maxConnectionLifetimeMs: expected a lifetime in milliseconds .*at most 3 days/.test(p)));
  });

  test('a pooled connection older than maxConnectionLifetimeMs is closed, and the next query opens a new session', async () => {
    const config = parseConfig({
      profiles: { p: { auth: { method: 'password', password: PASSWORD }, environments: { test: environment('app_rw', { maxConnectionLifetimeMs: 1000, idleTimeoutMs: 600_000 }) } } },
    }, {});
    const pools = createPoolRegistry({ config, credentials: createCredentialProvider({ config, logger }), logger });
    try {
      const pool = pools.get('p', 'test');
      const first = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      assert.equal(pool.totalCount, 1);
      await sleep(1600);
      assert.equal(pool.totalCount, 0, 'the idle connection past its lifetime was closed');
      const second = (await pool.query('SELECT pg_backend_pid() AS pid')).rows[0].pid as number;
      assert.notEqual(second, first);
    } finally {
      await pools.end();
    }
  });
});
