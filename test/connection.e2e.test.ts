import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import YAML from 'yaml';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { diagnoseConnection, formatReport } from '../src/db/diagnose';
import { createPoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { startTlsPostgres, type TlsPostgres } from './helpers/tlsPostgres';
import { missingTool } from './helpers/tools';

const run = promisify(execFile);
const logger = createLogger({ level: 'silent' });

describe('SSL modes, client certificates and Test Connection against a real TLS-only PostgreSQL', { skip: missingTool('openssl') }, () => {
  let server: TlsPostgres;
  let config: Config;
  let rawConfig: Record<string, unknown>;

  before(async () => {
    server = await startTlsPostgres();
    const env = (host: string, ssl: Record<string, unknown>, user = 'postgres') => ({ host, port: server.port, database: 'postgres', user, ssl, defaultSchema: user === 'certuser' ? 'app' : undefined });
    rawConfig = {
      profiles: {
        pg: {
          auth: { method: 'pat', token: 'postgres' },
          environments: {
            require: env('localhost', { mode: 'require' }),
            verifyFull: env('localhost', { mode: 'verify-full', caFile: server.file('ca.crt') }),
            verifyCaByIp: env('127.0.0.1', { mode: 'verify-ca', caFile: server.file('ca.crt') }),
            wrongHost: env('127.0.0.1', { mode: 'verify-full', caFile: server.file('ca.crt') }),
            wrongCa: env('localhost', { mode: 'verify-full', caFile: server.file('other-ca.crt') }),
            plain: env('localhost', { mode: 'disable' }),
          },
        },
        mtls: {
          auth: { method: 'pat', token: 'certpass' },
          environments: {
            withCert: env('localhost', { mode: 'verify-full', caFile: server.file('ca.crt'), certFile: server.file('client.crt'), keyFile: server.file('client.key') }, 'certuser'),
            withoutCert: env('localhost', { mode: 'verify-full', caFile: server.file('ca.crt') }, 'certuser'),
          },
        },
      },
    };
    config = parseConfig(rawConfig, {});
  });

  after(async () => {
    await server?.stop();
  });

  async function connect(profile: string, environment: string): Promise<string> {
    const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    try {
      const c = await pools.connect(profile, environment);
      const { rows } = await c.query<{ ssl: boolean }>('SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
      c.release();
      return rows[0]!.ssl ? 'tls' : 'plain';
    } finally {
      await pools.end();
    }
  }

  const report = (profile: string, environment: string) =>
    diagnoseConnection({ config, credentials: createCredentialProvider({ config, logger }), profile, environment });

  test('require, verify-full (right CA and name) and verify-ca (by IP) connect over TLS', async () => {
    assert.equal(await connect('pg', 'require'), 'tls');
    assert.equal(await connect('pg', 'verifyFull'), 'tls');
    assert.equal(await connect('pg', 'verifyCaByIp'), 'tls');
  });

  test('a wrong CA is a clear "server certificate not trusted" error', async () => {
    await assert.rejects(connect('pg', 'wrongCa'), (err: Error) => {
      assert.match(err.message, /self-signed|unable to verify|certificate/i);
      return true;
    });
    const r = await report('pg', 'wrongCa');
    const tls = r.steps.find((s) => s.step === 'tls')!;
    assert.equal(tls.ok, false);
    assert.match(tls.detail, /^server certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN\): set ssl\.ca or ssl\.caFile/);
    assert.ok(r.steps.filter((s) => ['token', 'login', 'version'].includes(s.step)).every((s) => s.skipped));
  });

  test('verify-full with a host name the certificate does not list is a clear mismatch error', async () => {
    await assert.rejects(connect('pg', 'wrongHost'), /IP: 127\.0\.0\.1 is not in the cert's list/);
    const r = await report('pg', 'wrongHost');
    assert.match(r.steps.find((s) => s.step === 'tls')!.detail, /server certificate does not match host "127\.0\.0\.1" \(ssl\.mode verify-full checks the name\)/);
  });

  test('ssl disable against a TLS-only server says TLS is required', async () => {
    const r = await report('pg', 'plain');
    const login = r.steps.find((s) => s.step === 'login')!;
    assert.equal(login.ok, false);
    assert.match(login.detail, /the server accepts this login only over TLS: set ssl\.mode to verify-full \(or verify-ca\)/);
  });

  test('mutual TLS: with the client certificate it logs in; without, a clear "client certificate required"', async () => {
    assert.equal(await connect('mtls', 'withCert'), 'tls');
    const r = await report('mtls', 'withoutCert');
    assert.match(r.steps.find((s) => s.step === 'login')!.detail, /the server requires a client certificate: set ssl\.cert and ssl\.key/);
  });

  test('Test Connection of a healthy environment reports every step, with the certificate and no secret', async () => {
    const r = await report('mtls', 'withCert');
    assert.equal(r.ok, true, formatReport(r));
    assert.deepEqual(r.steps.map((s) => s.step), ['config', 'dns', 'tcp', 'tls', 'token', 'login', 'version', 'schema', 'permissions', 'extensions']);
    const text = formatReport(r);
    assert.match(text, /tls .* verify-full: server certificate CN=localhost; valid until .* \(verified\)/);
    assert.match(text, /current_schema\(\) = app/);
    assert.match(text, /schema app: USAGE yes, CREATE yes/);
    assert.match(text, /PostgreSQL \d+/);
    assert.ok(!text.includes('certpass'), 'the password is not printed');
  });

  test('the CLI prints the report and exits non-zero on failure', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-tc-'));
    const file = path.join(dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(rawConfig));
    const cli = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
    const ok = await run(process.execPath, [cli, 'test-connection', '--profile', 'mtls', '--env', 'withCert', '--config', file]);
    assert.match(ok.stdout, /^OK$/m);
    const bad = await run(process.execPath, [cli, 'test-connection', '--profile', 'pg', '--env', 'wrongCa', '--config', file]).then(
      () => assert.fail('should exit 1'),
      (e: { code: number; stdout: string }) => e,
    );
    assert.equal(bad.code, 1);
    assert.match(bad.stdout, /✗ tls .*server certificate not trusted/);
    assert.match(bad.stdout, /^FAILED$/m);
    // A healthy and a broken run, kept for docs/test-connection.md.
    process.env.TEST_CONNECTION_OUTPUT && (await writeFile(process.env.TEST_CONNECTION_OUTPUT, `${ok.stdout}\n${bad.stdout}`));
  });

  test('an idle pooled connection closed by the server does not crash the worker; the next query works', async () => {
    const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    try {
      const c = await pools.connect('pg', 'verifyFull');
      const pid = (await c.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
      c.release();
      const admin = new pg.Client({ host: 'localhost', port: server.port, user: 'postgres', password: 'postgres', database: 'postgres', ssl: { rejectUnauthorized: false } });
      await admin.connect();
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await admin.end();
      await new Promise((r) => setTimeout(r, 200));
      const again = await pools.connect('pg', 'verifyFull');
      assert.equal((await again.query<{ one: number }>('SELECT 1 AS one')).rows[0]!.one, 1);
      again.release();
    } finally {
      await pools.end();
    }
  });
});
