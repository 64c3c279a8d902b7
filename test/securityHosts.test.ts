import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCredentialProvider } from '../src/auth/credentials';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';

describe('bearer tokens never go to a plain-HTTP workspace', () => {
  const provider = (workspaceHost: string, env: NodeJS.ProcessEnv = {}) => {
    const config = parseConfig({ profiles: { p: { auth: { method: 'pat', token: 'dapi-secret-token', workspaceHost }, environments: { e: { host: 'h', database: 'd', user: 'u' } } } } }, {});
    return createCredentialProvider({ config, logger: createLogger({ level: 'silent' }), env });
  };

  test('http:// is refused for any host but loopback, before any token is used', async () => {
    await assert.rejects(provider('http://dbc-1234.cloud.databricks.com').workspace('p'), /profiles\.p\.auth\.workspaceHost: http:\/\/dbc-1234\.cloud\.databricks\.com is plain HTTP/);
    await assert.rejects(provider('http://10.0.0.7:8765').workspace('p'), /is plain HTTP/);
  });

  test('loopback, https and hosts named in LAKEBASE_INSECURE_HTTP_HOSTS are accepted', async () => {
    for (const host of ['http://127.0.0.1:8765', 'http://localhost:8765', 'https://dbc-1234.cloud.databricks.com'])
      assert.equal((await provider(host).workspace('p')).bearer, 'dapi-secret-token', host);
    assert.equal((await provider('http://lakebase-emulator:8765', { LAKEBASE_INSECURE_HTTP_HOSTS: 'lakebase-emulator' }).workspace('p')).bearer, 'dapi-secret-token');
  });
});
