import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { diagnoseConnection } from '../src/db/diagnose';
import { createPoolRegistry } from '../src/db/pools';
import { createLogger } from '../src/logger';
import { startTlsPostgres, type TlsPostgres } from './helpers/tlsPostgres';
import { missingTool } from './helpers/tools';

const logger = createLogger({ level: 'silent' });

describe('database TLS is verified by default, and require with a CA verifies like libpq (a TLS-only PostgreSQL with a local CA)', { skip: missingTool('openssl') }, () => {
  let server: TlsPostgres;
  let config: Config;

  before(async () => {
    server = await startTlsPostgres();
    const env = (host: string, ssl?: Record<string, unknown>) => ({ host, port: server.port, database: 'postgres', user: 'postgres', ...(ssl && { ssl }) });
    config = parseConfig({
      profiles: {
        pg: {
          auth: { method: 'pat', token: 'postgres' },
          environments: {
            // No ssl block at all: what a new user writes.
            unsaid: env('localhost'),
            unsaidWithCa: env('localhost', { caFile: server.file('ca.crt') }),
            requireOtherCa: env('localhost', { mode: 'require', caFile: server.file('other-ca.crt') }),
            requireCaByIp: env('127.0.0.1', { mode: 'require', caFile: server.file('ca.crt') }),
          },
        },
      },
    }, {});
  });

  after(async () => {
    await server?.stop();
  });

  async function connect(environment: string): Promise<void> {
    const pools = createPoolRegistry({ config, logger, credentials: createCredentialProvider({ config, logger }) });
    try {
      (await pools.connect('pg', environment)).release();
    } finally {
      await pools.end();
    }
  }

  test('an environment without ssl settings is verify-full: an untrusted server certificate is refused', async () => {
    assert.equal(config.profiles.pg!.environments.unsaid!.ssl.mode, 'verify-full');
    await assert.rejects(connect('unsaid'), /self-signed|unable to verify|certificate/i);
    await connect('unsaidWithCa');
  });

  test('require with a ca verifies the chain (verify-ca): a certificate of another CA is refused, the right CA connects by IP', async () => {
    await assert.rejects(connect('requireOtherCa'), /self-signed|unable to verify|certificate/i);
    await connect('requireCaByIp');
  });

  test('test-connection explains a verification failure and never recommends skipping it', async () => {
    const r = await diagnoseConnection({ config, credentials: createCredentialProvider({ config, logger }), profile: 'pg', environment: 'unsaid' });
    const tls = r.steps.find((s) => s.step === 'tls')!;
    assert.equal(tls.ok, false);
    assert.match(tls.detail, /server certificate not trusted \(SELF_SIGNED_CERT_IN_CHAIN\): set ssl\.ca or ssl\.caFile/);
    assert.doesNotMatch(tls.detail, /skip|mode require|rejectUnauthorized/i);
  });
});
