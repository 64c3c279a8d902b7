import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { RetryState } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { createCredentialProvider } from '../src/auth/credentials';
import { generateSealKeyPair, loadSealPrivateKeys, loadSealPublicKey, seal } from '../src/auth/sealed';
import { startSync } from '../src/client';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { relationChecksum } from '../src/db/checksum';
import { LakebaseEmulator } from '../src/emulator';
import { createLakebaseWorker } from '../src/worker';
import type { DataSyncInput, SyncProgress } from '../src/workflows';
import { capturingLogger, historyText } from './helpers/capture';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { startIdp, type TestIdp } from './helpers/idp';
import { startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const COLUMNS = ['id', 'label', 'amount', 'meta'];
const PAT = `dapi${randomBytes(16).toString('hex')}`;
const SP_SECRET = `dose${randomBytes(16).toString('hex')}`;
// Clients hold the public half; only the worker holds the private one.
const SEAL_PAIR = generateSealKeyPair();
const SEAL_PUBLIC = loadSealPublicKey({ LAKEBASE_SEAL_PUBLIC_KEY: SEAL_PAIR.publicKey });
const SEAL_PRIVATE = loadSealPrivateKeys({ LAKEBASE_SEAL_PRIVATE_KEYS: SEAL_PAIR.privateKey });

describe('Lakebase authentication end to end (Temporal dev server, emulator in front of PostgreSQL, oidc-provider IdP)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let idp: TestIdp;
  let emu: LakebaseEmulator;
  let tokenDir: string;
  const secrets: string[] = [PAT, SP_SECRET];
  const handles: WorkflowHandle[] = [];
  const capture = capturingLogger();

  before(async () => {
    [env, db, idp] = await Promise.all([
      startTemporal(capture.logger),
      createTestDatabase('auth'),
      startIdp([
        { clientId: 'alice-app', email: 'alice@example.com' },
        { clientId: 'alice-short', email: 'alice@example.com', ttlSeconds: 1 },
        { clientId: 'alice-wrong-aud', email: 'alice@example.com', audience: 'not-databricks' },
        { clientId: 'workload-a' },
      ]),
    ]);
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      servicePrincipals: [{ clientId: 'sp-m2m', clientSecret: SP_SECRET }],
      users: [{ email: 'alice@example.com', pats: [PAT] }],
      databaseInstances: ['orders-instance'],
      federationPolicies: [
        { name: 'account-wide', issuer: idp.issuer, audiences: ['databricks'], subjectClaim: 'email' },
        { name: 'workload', issuer: idp.issuer, audiences: ['databricks'], servicePrincipal: 'sp-workload', subject: 'workload-a' },
        { name: 'other-issuer', issuer: 'http://127.0.0.1:9/other-idp', audiences: ['databricks'], servicePrincipal: 'sp-wrong-iss' },
        { name: 'dead-jwks', issuer: idp.issuer, audiences: ['databricks'], servicePrincipal: 'sp-dead-jwks', jwksUri: 'http://127.0.0.1:9/jwks' },
      ],
    }).start();
    await db.client.query(`
      CREATE TABLE src (id int PRIMARY KEY, label text, amount numeric(12,3), meta jsonb);
      INSERT INTO src SELECT g, 'label ' || g, g / 7.0, CASE WHEN g % 4 = 0 THEN NULL ELSE jsonb_build_object('g', g) END
      FROM generate_series(1, 600) g;
    `);
    for (const t of ['pat', 'm2m', 'm2m_cred', 'fed_static', 'fed_file', 'fed_login', 'ttl', 'revoked', 'relogin', 'economy1', 'economy2', 'economy3', 'economy4', 'bad'])
      await db.client.query(`CREATE TABLE dst_${t} (LIKE src INCLUDING ALL)`);
    tokenDir = await mkdtemp(path.join(os.tmpdir(), 'lbw-auth-'));
  });

  after(() =>
    cleanUp(
      () => emu?.stop(),
      () => idp?.stop(),
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  /** A config where every profile logs in through the emulator's Postgres front. */
  async function makeConfig(extra: { staticIdpToken?: string; tokenFile?: string; idleTimeoutMs?: number } = {}): Promise<Config> {
    const environment = (user: string, more: Record<string, unknown> = {}) => ({
      host: emu.postgres.host,
      port: emu.postgres.port,
      database: db.name,
      user,
      ssl: { mode: 'disable' },
      idleTimeoutMs: extra.idleTimeoutMs ?? 30_000,
      ...more,
    });
    const ws = emu.workspaceUrl;
    const profiles = {
      pat: { auth: { method: 'pat', token: PAT }, environments: { test: environment('alice@example.com') } },
      m2m: {
        auth: { method: 'm2m', workspaceHost: ws, clientId: 'sp-m2m', clientSecret: SP_SECRET },
        environments: { test: environment('sp-m2m'), cred: environment('sp-m2m', { credential: { type: 'provisioned', instanceName: 'orders-instance' } }) },
      },
      fedStatic: {
        auth: { method: 'federation', workspaceHost: ws, subjectToken: { source: 'static', token: extra.staticIdpToken ?? 'unset' } },
        environments: { test: environment('alice@example.com') },
      },
      fedFile: {
        auth: { method: 'federation', workspaceHost: ws, clientId: 'sp-workload', subjectToken: { source: 'static', tokenFile: extra.tokenFile ?? '/nonexistent' } },
        environments: { test: environment('sp-workload') },
      },
      fedLogin: {
        auth: { method: 'federation', workspaceHost: ws, subjectToken: { source: 'login-idp' } },
        environments: { test: environment('alice@example.com') },
      },
      wrongIss: {
        auth: { method: 'federation', workspaceHost: ws, clientId: 'sp-wrong-iss', subjectToken: { source: 'static', token: extra.staticIdpToken ?? 'unset' } },
        environments: { test: environment('sp-wrong-iss') },
      },
      deadJwks: {
        auth: { method: 'federation', workspaceHost: ws, clientId: 'sp-dead-jwks', subjectToken: { source: 'static', token: extra.staticIdpToken ?? 'unset' } },
        environments: { test: environment('sp-dead-jwks') },
      },
      notJwt: {
        auth: { method: 'federation', workspaceHost: ws, subjectToken: { source: 'static', token: 'this-is-not-a-jwt' } },
        environments: { test: environment('alice@example.com') },
      },
    };
    const pipe = (profile: string, target: string, environmentName = 'test', batchRows = 100) => ({
      source: { profile, environment: environmentName, table: 'public.src' },
      target: { profile, environment: environmentName, table: `public.dst_${target}` },
      key: ['id'],
      batchRows,
    });
    return parseConfig({
      profiles,
      pipelines: {
        pat: pipe('pat', 'pat'),
        m2m: pipe('m2m', 'm2m'),
        'm2m-cred': pipe('m2m', 'm2m_cred', 'cred'),
        'fed-static': pipe('fedStatic', 'fed_static'),
        'fed-file': pipe('fedFile', 'fed_file'),
        'fed-login': pipe('fedLogin', 'fed_login'),
        ttl: pipe('m2m', 'ttl', 'test', 10),
        revoked: pipe('m2m', 'revoked', 'test', 20),
        relogin: pipe('fedLogin', 'relogin'),
        ...Object.fromEntries([1, 2, 3, 4].map((i) => [`economy-${i}`, pipe('m2m', `economy${i}`, 'test', 2)])),
        'wrong-iss': pipe('wrongIss', 'bad'),
        'dead-jwks': pipe('deadJwks', 'bad'),
        'not-jwt': pipe('notJwt', 'bad'),
      },
    }, {});
  }

  async function runWithWorker<R>(config: Config, fn: (taskQueue: string) => Promise<R>): Promise<R> {
    const taskQueue = uniqueQueue('auth');
    const w = await createLakebaseWorker({ config, logger: capture.logger, connection: env.nativeConnection, taskQueue, sealingKeys: SEAL_PRIVATE });
    return w.runUntil(() => fn(taskQueue));
  }

  /** Starts a dataSync; an `idpToken` is sealed to the worker's public key for this workflow and pipeline, as the client does. */
  async function start(taskQueue: string, pipeline: string, extra: Partial<DataSyncInput> & { idpToken?: string } = {}): Promise<WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>> {
    const workflowId = `sync:${pipeline}:${Date.now()}-${Math.random()}`;
    const { idpToken: plain, ...rest } = extra;
    const handle = await env.client.workflow.start('dataSync', {
      taskQueue,
      workflowId,
      args: [{ pipeline, ...rest, ...(plain && { auth: { idpToken: seal(plain, SEAL_PUBLIC, { workflowId, scope: `pipeline:${pipeline}` }) } }) }],
    });
    handles.push(handle);
    return handle as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>;
  }

  async function assertSynced(target: string) {
    assert.deepEqual(await relationChecksum(db.client, `dst_${target}`, COLUMNS, ['id']), await relationChecksum(db.client, 'src', COLUMNS, ['id']));
  }

  async function idpToken(clientId: string): Promise<string> {
    const t = await idp.token(clientId);
    secrets.push(t);
    return t;
  }

  test('each auth method runs a dataSync end to end', async () => {
    const staticToken = await idpToken('alice-app');
    const tokenFile = path.join(tokenDir, 'workload.jwt');
    await writeFile(tokenFile, await idpToken('workload-a'));
    const config = await makeConfig({ staticIdpToken: staticToken, tokenFile });
    const loginToken = await idpToken('alice-app');
    await runWithWorker(config, async (q) => {
      const results = await Promise.all([
        start(q, 'pat'),
        start(q, 'm2m'),
        start(q, 'm2m-cred'),
        start(q, 'fed-static'),
        start(q, 'fed-file'),
        start(q, 'fed-login', { idpToken: loginToken }),
      ].map(async (h) => (await h).result()));
      for (const r of results) assert.equal(r.rowsWritten, 600);
      const identities = Object.fromEntries(results.map((r) => [r.pipeline, r.tokens.map((t) => t.identity)]));
      assert.deepEqual(identities, {
        pat: ['pat'],
        m2m: ['sp-m2m'],
        'm2m-cred': ['sp-m2m'],
        'fed-static': ['alice@example.com'],
        'fed-file': ['sp-workload'],
        'fed-login': ['alice@example.com'],
      });
    });
    for (const t of ['pat', 'm2m', 'm2m_cred', 'fed_static', 'fed_file', 'fed_login']) await assertSynced(t);
    assert.ok(emu.requests('/api/2.0/database/credentials') >= 1, 'the credential step was used');
  });

  test('a rotated workload token file is re-read on the next exchange', async () => {
    const tokenFile = path.join(tokenDir, 'rotating.jwt');
    await writeFile(tokenFile, 'not-a-jwt-yet');
    const config = await makeConfig({ tokenFile });
    const provider = createCredentialProvider({ config, logger: capture.logger });
    await assert.rejects(provider.acquire('fedFile', 'test'), { type: 'LakebaseTokenInvalid' });
    await writeFile(tokenFile, await idpToken('workload-a'));
    const t = await provider.acquire('fedFile', 'test');
    assert.equal(t.identity, 'sp-workload');
  });

  test('a wrong client secret is a non-retryable LakebaseAuthConfigError naming the profile', async () => {
    const config = parseConfig({
      profiles: { m2m: { auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'sp-m2m', clientSecret: 'wrong-secret' }, environments: { test: { host: 'h', user: 'sp-m2m' } } } },
    }, {});
    const provider = createCredentialProvider({ config, logger: capture.logger });
    await assert.rejects(provider.acquire('m2m', 'test'), (err: Error & { type?: string; retryable?: boolean }) => {
      assert.equal(err.type, 'LakebaseAuthConfigError');
      assert.equal(err.retryable, false);
      assert.match(err.message, /profile "m2m": the Databricks token endpoint rejected the client credentials \(invalid_client/);
      assert.ok(!err.message.includes('wrong-secret'));
      return true;
    });
  });

  test('a token endpoint answering 503 and 429 with Retry-After is retried until it recovers', async () => {
    const config = await makeConfig();
    emu.failNext('/oidc/v1/token', { status: 503, retryAfter: 1, count: 1 });
    const result = await runWithWorker(config, async (q) => {
      const handle = await start(q, 'm2m');
      // The 503 is consumed by the first attempt; queue a 429 for the second.
      emu.failNext('/oidc/v1/token', { status: 429, retryAfter: 1, count: 1 });
      const r = await handle.result();
      const attempts = ((await handle.fetchHistory()).events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
      assert.ok(Math.max(...attempts) >= 2, `the failing step was retried (attempts ${attempts.join(',')})`);
      return r;
    });
    assert.equal(result.done, true);
    await assertSynced('m2m');
  });

  test('100 concurrent callers share one token request', async () => {
    const config = await makeConfig();
    const provider = createCredentialProvider({ config, logger: capture.logger });
    const before = emu.requests('/oidc/v1/token');
    const tokens = await Promise.all(Array.from({ length: 100 }, () => provider.acquire('m2m', 'test')));
    assert.equal(emu.requests('/oidc/v1/token') - before, 1);
    assert.equal(new Set(tokens.map((t) => t.fingerprint)).size, 1);
  });

  test('1,000+ activity executions within one token lifetime cost exactly one token request', async () => {
    const config = await makeConfig({ idleTimeoutMs: 1 });
    const before = { tokens: emu.requests('/oidc/v1/token'), logins: emu.logins.accepted };
    // Four syncs side by side on one worker.
    const results = await runWithWorker(config, async (q) => Promise.all([1, 2, 3, 4].map(async (i) => (await start(q, `economy-${i}`)).result())));
    // planSync + token + one per chunk + finishSync, per sync
    const executions = results.reduce((n, r) => n + 3 + r.chunks, 0);
    assert.ok(executions >= 1000, `ran ${executions} activities`);
    assert.equal(emu.requests('/oidc/v1/token') - before.tokens, 1, 'one token request for the whole run');
    assert.ok(emu.logins.accepted - before.logins > 10, 'connections were closed and re-opened, each login reading the cache');
    for (const i of [1, 2, 3, 4]) await assertSynced(`economy${i}`);
    console.log(`token economy: ${executions} activity executions, ${emu.logins.accepted - before.logins} logins, 1 token request`);
  });

  test('tokens that live 2 s during a longer sync are refreshed ahead of expiry; nothing fails, nothing duplicates', async () => {
    emu.setTokenTtl(2);
    try {
      const config = await makeConfig({ idleTimeoutMs: 1 });
      const before = emu.requests('/oidc/v1/token');
      const started = Date.now();
      const result = await runWithWorker(config, async (q) => (await start(q, 'ttl')).result());
      const seconds = (Date.now() - started) / 1000;
      assert.equal(result.rowsWritten, 600);
      const requests = emu.requests('/oidc/v1/token') - before;
      assert.ok(seconds > 2, `the sync outlived one token (${seconds} s)`);
      assert.ok(requests >= 2, `tokens were refreshed (${requests} requests in ${seconds.toFixed(1)} s)`);
      await assertSynced('ttl');
    } finally {
      emu.setTokenTtl(3600);
    }
  });

  test('a revoked token (28P01 at login) is dropped, refreshed and the login retried', async () => {
    const config = await makeConfig({ idleTimeoutMs: 1 });
    const refusedBefore = emu.logins.refused;
    const result = await runWithWorker(config, async (q) => {
      const handle = await start(q, 'revoked');
      // Revoke every token as soon as the sync has written something.
      while ((await handle.query<SyncProgress>('progress')).chunks < 2) await new Promise((r) => setTimeout(r, 20));
      emu.tokens.expireAll('sp-m2m');
      return handle.result();
    });
    assert.equal(result.done, true);
    assert.ok(emu.logins.refused > refusedBefore, 'a login was refused after the revocation');
    await assertSynced('revoked');
  });

  for (const [name, pipeline, idpClient] of [
    ['wrong audience', 'fed-static', 'alice-wrong-aud'],
    ['wrong issuer', 'wrong-iss', 'alice-app'],
    ['not a JWT', 'not-jwt', undefined],
    ['JWKS unreachable', 'dead-jwks', 'alice-app'],
  ] as const) {
    test(`TOKEN_INVALID (${name}) fails the workflow on the first attempt with the resolution`, async () => {
      const config = await makeConfig({ staticIdpToken: idpClient ? await idpToken(idpClient) : undefined });
      await runWithWorker(config, async (q) => {
        const handle = await start(q, pipeline);
        const err = await handle.result().then(() => assert.fail('should fail'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError);
        assert.ok(err.cause instanceof ActivityFailure);
        assert.equal(err.cause.retryState, RetryState.NON_RETRYABLE_FAILURE);
        const app = err.cause.cause;
        assert.ok(app instanceof ApplicationFailure);
        assert.equal(app.type, 'LakebaseTokenInvalid');
        assert.match(app.message, /^Failed to process token: TOKEN_INVALID \(Ensure a valid federation policy has been configured\)/);
        assert.match(app.message, /Make sure the aud and iss configured in the Databricks federation policy/);
        const attempts = ((await handle.fetchHistory()).events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
        assert.deepEqual(attempts, [1]);
      });
    });
  }

  test('a sealed IdP token replayed in another workflow, or for another pipeline, does not open', async () => {
    const config = await makeConfig();
    const loginToken = await idpToken('alice-app');
    await runWithWorker(config, async (q) => {
      const first = await start(q, 'fed-login', { idpToken: loginToken });
      await first.result(); // it opens where it was sealed for
      // What anyone reading the first run's history can copy: its input, with the sealed token.
      const history = await first.fetchHistory();
      const started = history.events![0]!.workflowExecutionStartedEventAttributes!;
      const blob = (JSON.parse(Buffer.from(started.input!.payloads![0]!.data!).toString('utf8')) as DataSyncInput).auth!.idpToken;
      assert.match(blob, /^lbsealed:v2:/);
      const failureOf = async (h: WorkflowHandle) => {
        const err = await h.result().then(() => assert.fail('should fail'), (e: unknown) => e);
        assert.ok(err instanceof WorkflowFailedError);
        return (err.cause as ActivityFailure).cause as ApplicationFailure;
      };
      const elsewhere = await failureOf(await start(q, 'fed-login', { auth: { idpToken: blob } }));
      assert.equal(elsewhere.type, 'LakebaseAuthConfigError');
      assert.match(elsewhere.message, /does not open for workflow sync:fed-login:/);
      const otherPipeline = await failureOf(await start(q, 'relogin', { auth: { idpToken: blob } }));
      assert.match(otherPipeline.message, /sealed for pipeline:fed-login, not for pipeline:relogin/);
    });
  });

  test('login-idp without an IdP token fails with the documented message', async () => {
    const config = await makeConfig();
    await runWithWorker(config, async (q) => {
      const err = await (await start(q, 'fed-login')).result().then(() => assert.fail('should fail'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      const app = (err.cause as ActivityFailure).cause;
      assert.ok(app instanceof ApplicationFailure);
      assert.equal(app.type, 'LakebaseIdpTokenMissing');
      assert.match(app.message, /^IntegrationOAuthError: OAuth2 - "On-Behalf-Of Token Exchange" could not find identity provider token/);
    });
  });

  test('TOKEN_EXPIRED with login-idp: the sync waits for re-login, and a fresh token delivered by update resumes it', async () => {
    const expiring = await idpToken('alice-short');
    await new Promise((r) => setTimeout(r, 2_100)); // let it expire before the sync starts
    const config = await makeConfig();
    const result = await runWithWorker(config, async (q) => {
      const handle = await start(q, 'relogin', { idpToken: expiring });
      let progress: SyncProgress;
      do {
        await new Promise((r) => setTimeout(r, 50));
        progress = await handle.query<SyncProgress>('progress');
      } while (!progress.waitingForRelogin);
      const described = await handle.describe();
      assert.equal(described.status.name, 'RUNNING');
      const fresh = await idpToken('alice-app');
      const ack = await handle.executeUpdate<{ accepted: boolean }, [string]>('relogin', { args: [seal(fresh, SEAL_PUBLIC, { workflowId: handle.workflowId, scope: 'pipeline:relogin' })] });
      assert.deepEqual(ack, { accepted: true });
      return handle.result();
    });
    assert.equal(result.rowsWritten, 600);
    await assertSynced('relogin');
  });

  test('TOKEN_EXPIRED with a static token: the sync fails at once with the fix, it does not wait for a re-login', async () => {
    const expired = await idpToken('alice-short');
    await new Promise((r) => setTimeout(r, 2_100));
    const config = await makeConfig({ staticIdpToken: expired });
    await runWithWorker(config, async (q) => {
      const t0 = Date.now();
      const err = await (await start(q, 'fed-static')).result().then(() => assert.fail('should fail'), (e: unknown) => e);
      assert.ok(Date.now() - t0 < 30_000, 'failed at once');
      assert.ok(err instanceof WorkflowFailedError);
      const app = (err.cause as ActivityFailure).cause;
      assert.ok(app instanceof ApplicationFailure);
      assert.equal(app.type, 'LakebaseStaticTokenExpired');
      assert.match(app.message, /^Failed to process token: TOKEN_EXPIRED \[profile fedStatic, method federation, static token from subjectToken\.token\]/);
      assert.match(app.message, /a static token never renews itself.*subjectToken\.token/);
    });
  });

  test('a static tokenFile whose token expired is re-read with backoff: a rotation during the pauses gets through, none fails with TOKEN_EXPIRED', async () => {
    const file = path.join(tokenDir, 'rotating.jwt');
    const raw = {
      profiles: {
        fileStatic: {
          auth: { method: 'federation', workspaceHost: emu.workspaceUrl, subjectToken: { source: 'static', tokenFile: file } },
          environments: { test: { host: emu.postgres.host, port: emu.postgres.port, database: db.name, user: 'alice@example.com', ssl: { mode: 'disable' } } },
        },
      },
    };
    const provider = () => createCredentialProvider({ config: parseConfig(raw), logger: capture.logger, tokenFileRereadDelaysMs: [300, 300, 300] });
    const expired = await idpToken('alice-short');
    await new Promise((r) => setTimeout(r, 2_100));
    await writeFile(file, expired);
    const rotated = idpToken('alice-app').then((fresh) => new Promise((r) => setTimeout(r, 400)).then(() => writeFile(file, fresh)));
    const token = await provider().acquire('fileStatic', 'test');
    await rotated;
    assert.equal(token.identity, 'alice@example.com');

    await writeFile(file, expired);
    const t0 = Date.now();
    await assert.rejects(provider().acquire('fileStatic', 'test'), (err: Error & { type?: string }) => {
      assert.equal(err.type, 'LakebaseStaticTokenExpired');
      assert.match(err.message, /TOKEN_EXPIRED .*static token from tokenFile .*rotating\.jwt \(re-read 3 times\)/);
      return true;
    });
    assert.ok(Date.now() - t0 >= 900, 're-read three times with pauses first');
  });

  test('no token, secret or IdP JWT appears in worker logs or workflow history', async () => {
    assert.ok(handles.length >= 10, 'scans the histories of the runs above');
    const histories = (await Promise.all(handles.map(historyText))).join('\n');
    const logs = capture.text();
    assert.ok(logs.includes('token acquired'), 'the log was captured');
    const issued = emu.tokens.all();
    assert.ok(issued.length > 5);
    for (const secret of [...secrets, ...issued]) {
      assert.ok(!logs.includes(secret), `a secret (${secret.slice(0, 6)}…) is in the worker log`);
      assert.ok(!histories.includes(secret), `a secret (${secret.slice(0, 6)}…) is in workflow history`);
    }
  });
});
