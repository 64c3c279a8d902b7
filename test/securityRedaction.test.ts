import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import { createTokenCache } from '../src/auth/tokenCache';
import { createMetrics } from '../src/metrics';
import { createOpsServer } from '../src/ops';
import { redactSecrets } from '../src/redact';
import { capturingLogger } from './helpers/capture';

/** Each case: text a library or a server might produce, and the secret in it that must not survive. */
const CORPUS: [string, string][] = [
  ["host=db.example.com user=svc password='s3cr3t pass' sslmode=verify-full", 's3cr3t pass'],
  ['host=db user=svc password="dq-secret-42" dbname=x', 'dq-secret-42'],
  ['password=plainsecret99 host=db', 'plainsecret99'],
  ['{"client_id":"sp","client_secret":"cs-0123456789"}', 'cs-0123456789'],
  ['{"access_token": "at-abcdefghijkl", "token_type": "Bearer"}', 'at-abcdefghijkl'],
  ['{"refresh_token":"rt-\\"quoted\\"-zz"}', 'rt-\\"quoted\\"-zz'],
  ['Authorization: Basic c3AtbTJtOmRvc2VzZWNyZXQ=', 'c3AtbTJtOmRvc2VzZWNyZXQ='],
  ['Authorization: Bearer abc.def.ghijklmnop', 'abc.def.ghijklmnop'],
  ['connect postgres://svc:p@ss@word@db.example.com:5432/x failed', 'p@ss@word'],
  ['connect postgres://svc:p@ss@word@db.example.com:5432/x failed', 'ss@word'],
  ['grant_type=client_credentials&client_secret=s3cr3t&scope=all-apis', 's3cr3t'],
  ['subject_token=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.sig-part&x=1', 'eyJhbGciOiJSUzI1NiJ9'],
  ['pat dapi0123456789abcdef0123456789abcdef in header', 'dapi0123456789abcdef'],
  ['sealed lbsealed:v2:ab12cd34:am9iOng:QUJDREVGR0g in input', 'QUJDREVGR0g'],
];

describe('redaction, tested from a corpus', () => {
  for (const [text, secret] of CORPUS)
    test(`free text: ${text.slice(0, 60)}`, () => {
      const out = redactSecrets(text);
      assert.ok(!out.includes(secret), `${JSON.stringify(secret)} survived: ${out}`);
    });

  test('log records: secrets nested at any depth, as keys or inside strings, are removed', () => {
    const capture = capturingLogger();
    const deep = { a: { b: { c: { d: { e: { password: 'deep-pw-1', note: 'postgres://u:deep-pw-2@h/db', list: [{ client_secret: 'deep-cs-3' }, 'access_token=deep-at-4'] } } } } } };
    capture.logger.warn(deep, 'nested');
    capture.logger.error({ err: new Error("login failed: password='deep-pw-5'") }, 'failed');
    const text = capture.text();
    for (const s of ['deep-pw-1', 'deep-pw-2', 'deep-cs-3', 'deep-at-4', 'deep-pw-5']) assert.ok(!text.includes(s), `${s} survived: ${text}`);
    assert.match(text, /nested/);
  });

  test('/readyz (unauthenticated) redacts pool and auth errors', async () => {
    const server = createOpsServer({ metrics: createMetrics(), ready: async () => ({ ok: false, detail: 'analytics/prod: connect postgres://svc:hunter2@db/x failed; client_secret=s3cr3t' }) });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const body = await (await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/readyz`)).text();
      assert.ok(!body.includes('hunter2') && !body.includes('s3cr3t'), body);
      assert.match(body, /analytics\/prod/);
    } finally {
      server.close();
    }
  });

  test('a native password gets no fingerprint (a short unsalted hash of it would be guessable)', async () => {
    const cache = createTokenCache();
    const t = await cache.get('k', async () => ({ token: 'Summer2026!', expiresAt: Date.now() + 60_000, identity: 'password', guessable: true }));
    assert.equal(t.fingerprint, 'none (password)');
  });
});
