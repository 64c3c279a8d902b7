import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, CancelledFailure, WorkflowExecutionAlreadyStartedError, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import YAML from 'yaml';
import { rawPublicKey } from '../src/auth/signedDecisions';
import { approveJob, jobProgress, rejectJob, startJob } from '../src/client';
import { bindJobParams, JobParamError } from '../src/config/jobParams';
import type { Config } from '../src/config/schema';
import { compileNamedParams } from '../src/db/namedParams';
import { createLogger } from '../src/logger';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const CLI = path.join(__dirname, '..', 'bin', 'lakebase-worker.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// Alice starts approval jobs, bob approves them: each signs with an Ed25519 key the worker knows the public half of.
const alice = { by: 'alice', key: generateKeyPairSync('ed25519').privateKey };
const bob = { by: 'bob', key: generateKeyPairSync('ed25519').privateKey };
const identities = { alice: { publicKey: rawPublicKey(alice.key) }, bob: { publicKey: rawPublicKey(bob.key) } };

describe('named parameters', () => {
  test('become $n, leaving strings, identifiers, comments, dollar quotes and casts alone', () => {
    const c = compileNamedParams(`select ':no', ":nor", $$ :neither $$, now()::date, :day::date -- :comment\n, :tenant, :day, :count.n /* :x */`);
    assert.equal(c.text, `select ':no', ":nor", $$ :neither $$, now()::date, $1::date -- :comment\n, $2, $1, $3 /* :x */`);
    assert.deepEqual(c.names, ['day', 'tenant', 'count.n']);
  });
});

describe('operational jobs end to end (real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let config: Config;
  let taskQueue: string;
  let stopWorker: () => Promise<void>;

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('jobs')]);
    await db.client.query(`
      CREATE TABLE orders (id int PRIMARY KEY, day date NOT NULL, tenant int NOT NULL, total numeric(12,2) NOT NULL);
      INSERT INTO orders SELECT g, '2026-11-23'::date + (g % 2), 1 + g % 3, g FROM generate_series(1, 300) g;
      CREATE TABLE daily (day date, tenant int, orders int, total numeric, PRIMARY KEY (day, tenant));
      CREATE TABLE audit (note text, at timestamptz DEFAULT now());
      CREATE TABLE a (v int); CREATE TABLE b (v int); CREATE TABLE c (v int);
    `);
    taskQueue = uniqueQueue('jobs');
    const local = { profile: 'local', environment: 'test' };
    config = testConfig(db, {}, taskQueue, {
      identities,
      jobs: {
          'refresh-aggregates': {
            ...local,
            description: 'Refresh the daily aggregates',
            params: { day: { type: 'date' }, tenant: { type: 'integer', min: 1, required: false } },
            steps: [
              { name: 'count', kind: 'read', sql: 'SELECT count(*)::int AS n, sum(total) AS total FROM orders WHERE day = :day AND (:tenant::int IS NULL OR tenant = :tenant)' },
              { name: 'clear', kind: 'write', sql: 'DELETE FROM daily WHERE day = :day', transaction: 'swap' },
              { name: 'fill', kind: 'write', sql: 'INSERT INTO daily SELECT day, tenant, count(*), sum(total) FROM orders WHERE day = :day GROUP BY 1, 2', transaction: 'swap' },
              { name: 'note', kind: 'write', sql: `INSERT INTO audit (note) VALUES ('refreshed ' || :day || ': ' || :count.n || ' orders')` },
            ],
          },
          'three-steps': {
            ...local,
            params: {},
            steps: [
              { name: 'one', kind: 'write', sql: 'INSERT INTO a VALUES (1)', transaction: 't' },
              { name: 'two', kind: 'write', sql: 'INSERT INTO b VALUES (2)', transaction: 't' },
              { name: 'three', kind: 'write', sql: 'INSERT INTO c VALUES (3 / 0)', transaction: 't' },
            ],
          },
          'tag-tenant': {
            ...local,
            params: { tenant: { type: 'integer', min: 1 }, label: { type: 'text', pattern: '[a-z0-9-]{1,20}' }, note: { type: 'text', required: false } },
            approval: true,
            steps: [
              { name: 'check', kind: 'read', sql: 'SELECT count(*)::int AS n FROM orders WHERE tenant = :tenant' },
              { name: 'write', kind: 'write', sql: `INSERT INTO audit (note) VALUES (:label || ' ' || :tenant || ' ' || coalesce(:note, '') || ' ' || :check.n)` },
            ],
          },
          'slow': { ...local, steps: [{ name: 'sleep', kind: 'write', sql: 'INSERT INTO a SELECT 99 FROM pg_sleep(30)', transaction: 'long' }] },
      },
    });
    ({ stop: stopWorker } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue }));
  });

  after(() =>
    cleanUp(
      () => stopWorker?.(),
      () => env?.teardown(),
      () => db?.close(),
    ),
  );

  const start = (job: string, params: Record<string, string | number | null>, extra: { dryRun?: boolean } = {}) =>
    startJob(env.client, { job, params, taskQueue, config, signingKey: alice.key, ...extra });

  test('a job reads, writes in a transaction, and uses a read step’s output in a later step', async () => {
    const handle = await start('refresh-aggregates', { day: '2026-11-24' });
    assert.match(handle.workflowId, /^job:refresh-aggregates:test:[0-9a-f]{12}$/);
    const r = await handle.result();
    assert.equal(r.status, 'done');
    assert.deepEqual(r.steps.map((s) => s.name), ['count', 'clear', 'fill', 'note']);
    assert.equal(r.steps[0]!.rows![0]!.n, '150');
    const { rows } = await db.client.query(`SELECT sum(orders)::int AS n FROM daily WHERE day = '2026-11-24'`);
    assert.equal(rows[0].n, 150);
    assert.equal((await db.client.query(`SELECT note FROM audit ORDER BY at DESC LIMIT 1`)).rows[0].note, 'refreshed 2026-11-24: 150 orders');
    const desc = await handle.describe();
    assert.equal(desc.typedSearchAttributes.get({ name: 'LakebaseJob', type: 'KEYWORD' } as never), 'refresh-aggregates');
  });

  test('a failing third step rolls back the whole transaction: nothing from steps 1–2 remains', async () => {
    const handle = await start('three-steps', {});
    const err = await handle.result().then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof ActivityFailure);
    const app = err.cause.cause;
    assert.ok(app instanceof ApplicationFailure);
    assert.equal(app.type, 'LakebaseDataError');
    assert.match(app.message, /job three-steps, step three \(transaction t rolled back\) failed: division by zero; SQLSTATE 22012/);
    for (const t of ['a', 'b', 'c']) assert.equal((await db.client.query(`SELECT count(*)::int AS n FROM ${t}`)).rows[0].n, 0, `table ${t} is empty`);
  });

  test('parameter errors (missing, wrong type, injection in a patterned text) fail at once, naming the parameter', async () => {
    const cases: [Record<string, string | number | null>, RegExp][] = [
      [{ label: 'ok' }, /tenant: required integer parameter is missing/],
      [{ tenant: 'abc', label: 'ok' }, /tenant: expected an integer, got "abc"/],
      [{ tenant: 0, label: 'ok' }, /tenant: expected an integer ≥ 1, got 0/],
      [{ tenant: 1, label: "x'); DROP TABLE orders; --" }, /label: expected text matching \/\[a-z0-9-\]\{1,20\}\/, got "x'\); DROP TABLE orders; --"/],
      [{ tenant: 1, label: 'ok', extra: 'x' }, /extra: job "tag-tenant" has no parameter "extra"/],
    ];
    for (const [params, expected] of cases) {
      assert.throws(() => bindJobParams('tag-tenant', config.jobs['tag-tenant']!, params), (e: unknown) => e instanceof JobParamError && expected.test(e.message));
      // The worker applies the same rules, whatever a client sends.
      const err = await (await start('tag-tenant', params)).result().then(() => assert.fail('should fail'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError);
      const app = (err.cause as ActivityFailure).cause as ApplicationFailure;
      assert.equal(app.type, 'LakebaseJobParamError');
      assert.match(app.message, expected);
    }
    assert.equal((await db.client.query(`SELECT to_regclass('orders') IS NOT NULL AS ok`)).rows[0].ok, true);
  });

  test('approval gate: the job waits before writing, a duplicate start is rejected, approval lets it finish; values are bound, never interpolated', async () => {
    const params = { tenant: 2, label: 'vip', note: "'); DELETE FROM orders; --" };
    const handle = await start('tag-tenant', params);
    let p = await jobProgress(env.client, handle.workflowId).catch(() => undefined);
    for (; p?.status !== 'awaiting approval'; p = await jobProgress(env.client, handle.workflowId).catch(() => undefined)) await sleep(50);
    assert.deepEqual(p.steps.map((s) => s.name), ['check'], 'reads ran, writes wait');
    await assert.rejects(start('tag-tenant', params), WorkflowExecutionAlreadyStartedError);
    assert.deepEqual(await approveJob(env.client, handle.workflowId, bob), { approved: true });
    const r = await handle.result();
    assert.equal(r.approvedBy, 'bob');
    assert.equal(r.startedBy, 'alice');
    assert.equal(r.rowsWritten, 1);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM orders')).rows[0].n, 300);
    assert.equal((await db.client.query(`SELECT note FROM audit ORDER BY at DESC LIMIT 1`)).rows[0].note, "vip 2 '); DELETE FROM orders; -- 100");
  });

  test('job run (the CLI) waits by default: it says when the job awaits approval and ends with the result once approved; --no-wait only starts it', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-jobcli-'));
    const file = path.join(dir, 'lakebase.yaml');
    const tagTenant = config.jobs['tag-tenant']!;
    // The CLI's config names the same job and queue; the worker runs it with its own config.
    const aliceKey = path.join(dir, 'alice.pem');
    await writeFile(aliceKey, alice.key.export({ format: 'pem', type: 'pkcs8' }));
    await writeFile(file, YAML.stringify({
      identities,
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'x' }, environments: { test: db.environment } } },
      jobs: { 'tag-tenant': { profile: 'local', environment: 'test', approval: true, params: { tenant: { type: 'integer', min: 1 }, label: { type: 'text' } }, steps: tagTenant.steps.map(({ name, kind, sql }) => ({ name, kind, sql })) } },
    }));
    const cli = spawn(process.execPath, [CLI, 'job', 'run', '--job', 'tag-tenant', '--param', 'tenant=3', '--param', 'label=cli-wait', '--key-file', aliceKey, '--config', file], {
      env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', LAKEBASE_PROGRESS_INTERVAL_MS: '200' },
    });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d));
    cli.stderr.on('data', (d: Buffer) => (out += d));
    const exited = new Promise<number | null>((resolve) => cli.on('exit', resolve));
    try {
      const deadline = Date.now() + 60_000;
      while (!/awaiting approval — lakebase-worker job approve (\S+) /.test(out)) {
        assert.ok(Date.now() < deadline && cli.exitCode === null, `no approval notice:\n${out}`);
        await sleep(100);
      }
      const id = /awaiting approval — lakebase-worker job approve (\S+) /.exec(out)![1]!;
      assert.match(out, new RegExp(`^started ${id}$`, 'm'));
      assert.deepEqual(await approveJob(env.client, id, bob), { approved: true });
      assert.equal(await exited, 0, out);
      assert.match(out, /^tag-tenant: done; 2 steps, 1 row written$/m);
    } finally {
      if (cli.exitCode === null) cli.kill('SIGKILL');
    }
    const detached = await new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn(process.execPath, [CLI, 'job', 'run', '--job', 'tag-tenant', '--param', 'tenant=3', '--param', 'label=cli-nowait', '--no-wait', '--key-file', aliceKey, '--config', file], {
        env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' },
      });
      let o = '';
      c.stdout.on('data', (d: Buffer) => (o += d));
      c.stderr.on('data', (d: Buffer) => (o += d));
      c.on('exit', (code) => resolve({ code, out: o }));
    });
    assert.equal(detached.code, 0, detached.out);
    assert.match(detached.out, /^started job:tag-tenant:\S+\n(  Temporal UI: \S+\n)?$/);
    await rejectJob(env.client, detached.out.split('\n')[0]!.replace(/^started /, ''), alice, 'only started to show --no-wait').catch(() => undefined);
  });

  test('a dry run validates, EXPLAINs read and write steps, and writes nothing', async () => {
    const before = (await db.client.query('SELECT count(*)::int AS n FROM audit')).rows[0].n;
    const r = await (await start('refresh-aggregates', { day: '2026-11-23' }, { dryRun: true })).result();
    assert.equal(r.status, 'dry run');
    assert.deepEqual(r.plan!.explain!.map((e) => e.step), ['count', 'clear', 'fill', 'note']);
    assert.match(r.plan!.explain![1]!.plan, /Delete on daily/);
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM audit')).rows[0].n, before);
    assert.equal((await db.client.query(`SELECT count(*)::int AS n FROM daily WHERE day = '2026-11-23'`)).rows[0].n, 0);
  });

  test('cancelling a running job rolls back its running step', async () => {
    const handle = await start('slow', {});
    for (let p = await jobProgress(env.client, handle.workflowId).catch(() => undefined); p?.status !== 'running'; p = await jobProgress(env.client, handle.workflowId).catch(() => undefined)) await sleep(50);
    await sleep(500);
    await handle.cancel();
    const err = await handle.result().then(() => assert.fail('should be cancelled'), (e: unknown) => e);
    assert.ok(err instanceof WorkflowFailedError);
    assert.ok(err.cause instanceof CancelledFailure || err.cause instanceof ActivityFailure, String(err.cause));
    assert.equal((await handle.describe()).status.name, 'CANCELLED');
    // The workflow waits for the step's rollback before it reports CANCELLED.
    const active = await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND state = 'active' AND pid <> pg_backend_pid()`);
    assert.equal(active.rows[0].n, 0, 'the sleeping statement was stopped');
    assert.equal((await db.client.query('SELECT count(*)::int AS n FROM a WHERE v = 99')).rows[0].n, 0);
  });

  test('the visibility query by LakebaseJob finds the runs', async () => {
    let ids: string[] = [];
    for (let i = 0; i < 50 && ids.length === 0; i++) {
      ids = [];
      for await (const w of env.client.workflow.list({ query: `LakebaseJob = 'refresh-aggregates' AND LakebaseEnvironment = 'test'` })) ids.push(w.workflowId);
      if (ids.length === 0) await sleep(200);
    }
    assert.ok(ids.some((id) => id.startsWith('job:refresh-aggregates:test:')), ids.join(','));
  });
});
