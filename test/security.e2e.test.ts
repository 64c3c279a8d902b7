import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { keyId, type SealingKey } from '../src/auth/sealed';
import { startJob } from '../src/client';
import { EncryptionCodec } from '../src/codec/encryption';
import { createCodecServer } from '../src/codec/server';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { createOpsServer } from '../src/ops';
import { redactSecrets } from '../src/redact';
import { findTemporalCli, temporalExecutable } from '../src/provision/temporal';
import { dataConverterFor, temporalConnectionOptions } from '../src/temporalConnection';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../src/workflows/searchAttributes';
import { CHROMIUM, launchChromium } from './helpers/browser';
import { capturingLogger } from './helpers/capture';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const run = promisify(execFile);
const key = (): SealingKey => {
  const k = randomBytes(32);
  return { id: keyId(k), key: k };
};

describe('payload encryption codec', () => {
  const payload = { metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('{"card":"4111"}') };

  test('round-trips, hides the plaintext, and decodes after key rotation', async () => {
    const [oldKey, newKey] = [key(), key()];
    const [encoded] = await new EncryptionCodec([oldKey]).encode([payload]);
    assert.ok(!Buffer.from(encoded!.data!).toString('latin1').includes('4111'));
    assert.equal(new TextDecoder().decode(encoded!.metadata!['encryption-key-id']), oldKey.id);
    const [decoded] = await new EncryptionCodec([newKey, oldKey]).decode([encoded!]);
    assert.equal(new TextDecoder().decode(decoded!.data!), '{"card":"4111"}');
    await assert.rejects(new EncryptionCodec([newKey]).decode([encoded!]), /encrypted with key .* not among this process's keys/);
  });
});

describe('secret scrubbing', () => {
  test('tokens, PATs and passwords in text are redacted', () => {
    const text = redactSecrets(
      'connect postgres://svc:hunter2@db.example.com/x failed; Authorization: Bearer abc.def.ghijklmnop; token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.sig-part; pat dapi0123456789abcdef0123456789abcdef; client_secret=s3cr3t&x=1',
    );
    for (const secret of ['hunter2', 'abc.def.ghijklmnop', 'eyJhbGciOiJSUzI1NiJ9', 'dapi0123456789abcdef', 's3cr3t']) assert.ok(!text.includes(secret), `${secret} survived: ${text}`);
    assert.match(text, /postgres:\/\/svc:\*\*\*@db\.example\.com/);
  });
});

describe('Temporal connection options', () => {
  test('plain, mTLS and API key', () => {
    const t = (extra: Record<string, unknown>) => parseConfig({ temporal: { address: 'ns.acct.tmprl.cloud:7233', ...extra } }, {}).temporal;
    assert.deepEqual(temporalConnectionOptions(t({})), { address: 'ns.acct.tmprl.cloud:7233' });
    const mtls = temporalConnectionOptions(t({ tls: { cert: 'CERT', key: 'KEY', ca: 'CA', serverName: 'ns.tmprl.cloud' } }));
    assert.deepEqual(mtls.tls, { serverNameOverride: 'ns.tmprl.cloud', serverRootCACertificate: Buffer.from('CA'), clientCertPair: { crt: Buffer.from('CERT'), key: Buffer.from('KEY') } });
    const cloud = temporalConnectionOptions(t({ apiKey: 'key-123' }));
    assert.equal(cloud.apiKey, 'key-123');
    assert.equal(cloud.tls, true);
    assert.throws(() => parseConfig({ temporal: { tls: { cert: 'CERT' } } }, {}), /temporal\.tls: a client certificate needs both cert/);
  });
});

describe('encrypted history, codec server for the UI, metrics and health (real dev server with UI)', () => {
  const keys = [key()];
  const env0 = { LAKEBASE_SECRET_KEYS: keys[0]!.key.toString('hex') };
  const codecToken = randomBytes(16).toString('hex');
  const CONFIDENTIAL = `CONFIDENTIAL-${randomBytes(4).toString('hex')}`;
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let client: Client;
  let codec: ReturnType<typeof createCodecServer>;
  let codecUrl: string;
  let ui: string;
  let workflowId: string;
  let stop: () => Promise<void>;
  let ops: ReturnType<typeof createOpsServer>;
  let opsUrl: string;
  let securityConfig: Config;
  const capture = capturingLogger();

  before(async () => {
    process.env.LAKEBASE_SECRET_KEYS = env0.LAKEBASE_SECRET_KEYS;
    await startTemporal().then((e) => e.teardown()); // installs the quiet runtime logger once
    codec = createCodecServer({ codec: new EncryptionCodec(keys), origins: [], token: codecToken });
    await new Promise<void>((r) => codec.listen(0, '127.0.0.1', r));
    codecUrl = `http://127.0.0.1:${(codec.address() as AddressInfo).port}`;
    const executable = await temporalExecutable();
    env = await TestWorkflowEnvironment.createLocal({
      server: { executable, ui: true, searchAttributes: LAKEBASE_SEARCH_ATTRIBUTES, log: { format: 'pretty', level: 'error' }, extraArgs: ['--ui-codec-endpoint', codecUrl] },
    });
    ui = `http://localhost:${Number(env.address.split(':').pop()) + 1000}`;
    codec.close();
    codec = createCodecServer({ codec: new EncryptionCodec(keys), origins: [ui], token: codecToken });
    await new Promise<void>((r) => codec.listen(Number(codecUrl.split(':').pop()), '127.0.0.1', r));
    db = await createTestDatabase('sec');
    await db.client.query('CREATE TABLE notes (note text); CREATE TABLE people (email text PRIMARY KEY)');
    const config = (securityConfig = testConfig(db, {}, 'sec', {
      temporal: { address: env.address, taskQueue: 'sec', encryptPayloads: true },
      jobs: {
        note: { profile: 'local', environment: 'test', params: { note: { type: 'text' } }, steps: [{ name: 'write', kind: 'write', sql: 'INSERT INTO notes VALUES (:note)' }] },
        leaky: { profile: 'local', environment: 'test', steps: [{ name: 'boom', kind: 'sql', sql: `SELECT 'postgres://svc:hunter2-secret@db.example.com/x'::int` }] },
        // A unique violation: PostgreSQL's detail quotes the row value ("Key (email)=(…) already exists").
        rowleak: { profile: 'local', environment: 'test', params: { email: { type: 'text' } }, steps: [{ name: 'twice', kind: 'write', sql: 'INSERT INTO people VALUES (:email), (:email)' }] },
      },
    }));
    client = new Client({ connection: env.connection, dataConverter: dataConverterFor(config.temporal) });
    const { worker: w, stop: stopWorker } = await runWorkerInBackground({ config, logger: capture.logger, connection: env.nativeConnection, taskQueue: 'sec' });
    stop = stopWorker;
    ops = createOpsServer({ metrics: w.metrics, ready: () => w.ready() });
    await new Promise<void>((r) => ops.listen(0, '127.0.0.1', r));
    opsUrl = `http://127.0.0.1:${(ops.address() as AddressInfo).port}`;
    const h = await startJob(client, { job: 'note', params: { note: CONFIDENTIAL }, taskQueue: 'sec', config });
    await h.result();
    workflowId = h.workflowId;
    await (await startJob(client, { job: 'leaky', params: {}, taskQueue: 'sec', config })).result().catch(() => undefined);
  });

  after(() =>
    cleanUp(
      () => stop?.(),
      () => ops?.close(),
      () => codec?.close(),
      () => env?.teardown(),
      () => db?.close(),
      () => { delete process.env.LAKEBASE_SECRET_KEYS; },
    ),
  );

  test('the raw history (`temporal workflow show --output json`) holds ciphertext only; the job still ran', async () => {
    const cli = (await findTemporalCli())!;
    const { stdout } = await run(cli, ['workflow', 'show', '--address', env.address, '--workflow-id', workflowId, '--output', 'json'], { maxBuffer: 1 << 24 });
    assert.match(stdout, /binary\/encrypted|YmluYXJ5L2VuY3J5cHRlZA==/, 'payloads are marked encrypted');
    assert.ok(!stdout.includes(CONFIDENTIAL) && !stdout.includes(Buffer.from(CONFIDENTIAL).toString('base64').slice(0, 12)), 'the parameter is not in plaintext');
    assert.equal((await db.client.query('SELECT note FROM notes')).rows[0].note, CONFIDENTIAL);
  });

  async function rawHistory(job: string): Promise<{ id: string; text: string }> {
    const cli = (await findTemporalCli())!;
    const list = await run(cli, ['workflow', 'list', '--address', env.address, '--query', `LakebaseJob = '${job}'`, '--output', 'json']);
    const id = (JSON.parse(list.stdout) as { execution: { workflowId: string } }[])[0]!.execution.workflowId;
    const { stdout } = await run(cli, ['workflow', 'show', '--address', env.address, '--workflow-id', id, '--output', 'json'], { maxBuffer: 1 << 24 });
    return { id, text: stdout };
  }

  /** The failure as a key holder reads it: through a client with the codec. */
  async function decodedFailure(id: string): Promise<string> {
    const err = await client.workflow.getHandle(id).result().then(() => assert.fail('the job should have failed'), (e: unknown) => e);
    const messages: string[] = [];
    for (let e: unknown = err; e instanceof Error; e = e.cause) messages.push(e.message, e.stack ?? '');
    return messages.join('\n');
  }

  test('a failure quoting a connection string keeps the password out of history and logs', async () => {
    const { id, text } = await rawHistory('leaky');
    assert.ok(!text.includes('hunter2-secret'));
    assert.ok(!text.includes('db.example.com'), 'with encryption on, the failure message itself is encrypted');
    assert.ok(!capture.text().includes('hunter2-secret'));
    const decoded = await decodedFailure(id);
    assert.match(decoded, /postgres:\/\/svc:\*\*\*@db\.example\.com/, 'decoded, it reads as before, password scrubbed');
    assert.ok(!decoded.includes('hunter2-secret'));
  });

  test('a database error quoting a row value is not in plaintext history: message and stack are encrypted; key holders read them', async () => {
    const email = `row-value-${randomBytes(4).toString('hex')}@example.com`;
    await (await startJob(client, { job: 'rowleak', params: { email }, taskQueue: 'sec', config: securityConfig })).result().catch(() => undefined);
    const { id, text } = await rawHistory('rowleak');
    assert.match(text, /"failure"/, 'the run failed');
    assert.ok(!text.includes(email) && !text.includes(Buffer.from(email).toString('base64').slice(0, 16)), 'the row value is not in the raw history');
    assert.ok(!text.includes('duplicate key value'), 'nor is the message around it');
    assert.match(text, /Encoded failure/, 'the SDK marks the message as moved into the encrypted payload');
    const decoded = await decodedFailure(id);
    assert.match(decoded, new RegExp(`duplicate key value violates unique constraint.*SQLSTATE 23505.*Key \\(email\\)=\\(${email.replace(/\./g, '\\.')}\\) already exists`, 's'));
  });

  test('the codec server refuses callers without the token and decodes for those with it', async () => {
    const payloads = { payloads: (await new EncryptionCodec(keys).encode([{ metadata: { encoding: new TextEncoder().encode('json/plain') }, data: new TextEncoder().encode('"hello"') }])).map((p) => ({
      metadata: Object.fromEntries(Object.entries(p.metadata!).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
      data: Buffer.from(p.data!).toString('base64'),
    })) };
    const refused = await fetch(`${codecUrl}/decode`, { method: 'POST', body: JSON.stringify(payloads), headers: { 'content-type': 'application/json' } });
    assert.equal(refused.status, 401);
    const ok = await fetch(`${codecUrl}/decode`, { method: 'POST', body: JSON.stringify(payloads), headers: { 'content-type': 'application/json', authorization: `Bearer ${codecToken}` } });
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { payloads: { data: string }[] };
    assert.equal(Buffer.from(body.payloads[0]!.data, 'base64').toString(), '"hello"');
    const preflight = await fetch(`${codecUrl}/decode`, { method: 'OPTIONS', headers: { origin: ui, 'access-control-request-method': 'POST' } });
    assert.equal(preflight.headers.get('access-control-allow-origin'), ui);
  });

  test('in the Temporal UI, a person holding the codec token sees the decoded input; without it, not', async (t) => {
    if (!existsSync(CHROMIUM)) return t.skip('no Chromium (.ci/run installs it)');
    const browser = await launchChromium();
    try {
      const page = async (headers: Record<string, string>) => {
        const ctx = await browser.newContext({ extraHTTPHeaders: headers, viewport: { width: 1500, height: 1000 } });
        const p = await ctx.newPage();
        await p.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
        await p.getByText('Completed', { exact: true }).first().waitFor({ timeout: 30_000 });
        await p.waitForTimeout(2000);
        return p;
      };
      const withToken = await page({ authorization: `Bearer ${codecToken}` });
      await withToken.getByText(CONFIDENTIAL).first().waitFor({ timeout: 15_000 });
      await withToken.screenshot({ path: 'test/artifacts/ui-decoded-input.png' });
      const without = await page({});
      assert.equal(await without.getByText(CONFIDENTIAL).count(), 0, 'without the token the input stays encrypted');
      await without.screenshot({ path: 'test/artifacts/ui-encrypted-input.png' });
    } finally {
      await browser.close();
    }
  });

  test('/healthz, /readyz and /metrics answer; metrics count job steps', async () => {
    assert.equal((await fetch(`${opsUrl}/healthz`)).status, 200);
    const ready = await fetch(`${opsUrl}/readyz`);
    assert.equal(ready.status, 200, await ready.clone().text());
    assert.match(await ready.text(), /worker RUNNING; \d+ database pool\(s\) answer/);
    const metrics = await (await fetch(`${opsUrl}/metrics`)).text();
    assert.match(metrics, /lakebase_job_steps_total\{job="note",outcome="ok"\} 1/);
    // Trust auth never asks for a password here, so no token is requested; the series is declared.
    assert.match(metrics, /# TYPE lakebase_token_requests_total counter/);
    assert.match(metrics, /# TYPE lakebase_chunk_duration_seconds histogram/);
    assert.match(metrics, /lakebase_worker_process_resident_memory_bytes/);
  });
});
