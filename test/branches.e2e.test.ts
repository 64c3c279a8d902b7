import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { jobProgress, startJob } from '../src/client';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { LakebaseEmulator } from '../src/emulator';
import { createLogger } from '../src/logger';
import type { JobProgress } from '../src/workflows';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';
import { cleanUp } from './helpers/cleanup';

const SECRET_A = `dose${randomBytes(16).toString('hex')}`;
const SECRET_B = `dose${randomBytes(16).toString('hex')}`;
const ROOT = 'projects/shop/branches/production/endpoints/primary';
const CREATE_PATH = '/api/2.0/postgres/projects/shop/branches';

/** The job's failure: WorkflowFailedError → ActivityFailure → ApplicationFailure. */
async function failureOf(p: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await p.then(() => assert.fail('the job should fail'), (e: unknown) => e);
  assert.ok(err instanceof WorkflowFailedError, String(err));
  const app = err.cause instanceof ActivityFailure ? err.cause.cause : err.cause;
  assert.ok(app instanceof ApplicationFailure, String(app));
  return app;
}

describe('job run --branch: a job tried on a Lakebase branch (emulator branches, real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let emu: LakebaseEmulator;
  let config: Config;
  let taskQueue: string;
  let stopWorker: () => Promise<void>;
  // A fresh session per read: the emulator's branch copy (CREATE DATABASE … TEMPLATE) ends the sessions on the parent.
  const total = async () => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query('SELECT sum(cents)::int AS t FROM prices')).rows[0].t as number;
    } finally {
      await c.end();
    }
  };

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('branches')]);
    await db.client.query(`CREATE TABLE prices (id int PRIMARY KEY, cents int NOT NULL); INSERT INTO prices SELECT g, g * 100 FROM generate_series(1, 50) g;`);
    await db.client.end();
    emu = await new LakebaseEmulator({
      upstream: ADMIN_URL,
      servicePrincipals: [{ clientId: 'sp-a', clientSecret: SECRET_A }, { clientId: 'sp-b', clientSecret: SECRET_B }],
      endpoints: [ROOT],
      databases: [db.name],
      projectManagers: ['sp-a'],
    }).start();
    taskQueue = uniqueQueue('branches');
    const environment = (branch: string) => ({ project: 'shop', branch, endpoint: 'primary', port: emu.postgres.port, database: db.name, user: 'sp-a', ssl: { mode: 'disable' } });
    const steps = [
      { name: 'double', kind: 'write', sql: 'UPDATE prices SET cents = cents * 2' },
      { name: 'total', kind: 'read', sql: 'SELECT sum(cents)::int AS t FROM prices' },
    ];
    config = parseConfig({
      temporal: { taskQueue },
      profiles: {
        lb: {
          auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'sp-a', clientSecret: SECRET_A },
          environments: { prod: environment('production'), ghost: environment('nosuch') },
        },
        // CAN USE only: may not create branches.
        reader: {
          auth: { method: 'm2m', workspaceHost: emu.workspaceUrl, clientId: 'sp-b', clientSecret: SECRET_B },
          environments: { prod: { ...environment('production'), user: 'sp-b' } },
        },
      },
      jobs: {
        'double-prices': { profile: 'lb', environment: 'prod', steps },
        'double-then-fail': { profile: 'lb', environment: 'prod', steps: [steps[0], { name: 'boom', kind: 'write', sql: 'UPDATE prices SET cents = cents / 0' }] },
        'reader-job': { profile: 'reader', environment: 'prod', steps },
      },
    }, {});
    ({ stop: stopWorker } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue }));
  });

  after(() =>
    cleanUp(
      () => stopWorker?.(),
      () => env?.teardown(),
      () => emu?.stop(),
      () => db?.close(),
    ),
  );

  const run = (job: string, branch: { name: string; create?: boolean; deleteAfter?: boolean; ttl?: string }, environment?: string) =>
    startJob(env.client, { job, params: {}, taskQueue, config, branch, environment });
  const exists = (id: string) => emu.branches.list().some((b) => b.name === `projects/shop/branches/${id}`);
  const creations = (id: string) => emu.branches.created.filter((n) => n === `projects/shop/branches/${id}`).length;

  test('a created branch is a copy: the write steps change the copy, the parent keeps its data, and the branch is deleted after', async () => {
    const before = await total();
    const handle = await run('double-prices', { name: 'try-double', create: true, deleteAfter: true });
    assert.match(handle.workflowId, /^job:double-prices:prod@try-double:/);
    const r = await handle.result();
    assert.equal(r.status, 'done');
    assert.equal(r.steps.find((s) => s.name === 'total')!.rows![0]!.t, String(before * 2), 'the branch saw the parent data and doubled it');
    assert.equal(await total(), before, "the parent's data is untouched");
    assert.deepEqual(r.branch, { name: 'try-double', endpoint: 'primary', created: true, expireTime: r.branch!.expireTime, deleted: true });
    assert.ok(r.branch!.expireTime, 'created with an expiry (spec.ttl) as a safety net');
    assert.equal(creations('try-double'), 1);
    assert.equal(exists('try-double'), false, 'deleted after the run');
  });

  test('a kept branch: created without --delete-branch-after it stays, and a later run on it (--branch alone) sees its data', async () => {
    const before = await total();
    const first = await (await run('double-prices', { name: 'kept-copy', create: true, ttl: '2h' })).result();
    assert.equal(first.branch!.deleted, undefined);
    const left = (Date.parse(first.branch!.expireTime!) - Date.now()) / 1000;
    assert.ok(left > 7000 && left <= 7200, `expires in ${left} s`);
    assert.equal(exists('kept-copy'), true);
    const second = await (await run('double-prices', { name: 'kept-copy' })).result();
    assert.equal(second.steps.find((s) => s.name === 'total')!.rows![0]!.t, String(before * 4), 'the second run continued on the same copy');
    assert.equal(second.branch!.created, false);
    assert.equal(await total(), before);
  });

  test('a failing step: the job fails with the step’s error, and the created branch is still deleted', async () => {
    const before = await total();
    const handle = await run('double-then-fail', { name: 'try-fail', create: true, deleteAfter: true });
    const app = await failureOf(handle.result());
    assert.equal(app.type, 'LakebaseDataError');
    assert.match(app.message, /step boom.*division by zero/);
    assert.equal(exists('try-fail'), false, 'deleted although a step failed');
    assert.equal(creations('try-fail'), 1);
    const p: JobProgress = await jobProgress(env.client, handle.workflowId);
    assert.equal(p.branch!.deleted, true);
    assert.equal(await total(), before);
  });

  test('a create whose answer is lost is retried without making a second branch', async () => {
    const posts = emu.requests(CREATE_PATH);
    // The emulator creates the branch, then answers 503: the worker cannot know it succeeded.
    emu.failNext(CREATE_PATH, { status: 503, count: 1, afterHandling: true });
    const r = await (await run('double-prices', { name: 'lost-answer', create: true, deleteAfter: true })).result();
    assert.equal(r.status, 'done');
    assert.equal(emu.requests(CREATE_PATH), posts + 2, 'the create was sent twice');
    assert.equal(creations('lost-answer'), 1, 'one branch was made');
    assert.equal(r.branch!.deleted, true);
    assert.equal(exists('lost-answer'), false);
  });

  test('a create whose long-running operation fails inside Lakebase: LakebaseOperationFailed, not retried, nothing left behind', async () => {
    const posts = emu.requests(CREATE_PATH);
    emu.branches.failNextCopy({ error_code: 'INTERNAL_ERROR', message: 'copying database: the copy broke' });
    const t0 = Date.now();
    const app = await failureOf((await run('double-prices', { name: 'op-fails', create: true, deleteAfter: true })).result());
    assert.equal(app.type, 'LakebaseOperationFailed');
    assert.equal(app.nonRetryable, true);
    assert.match(app.message, /operation projects\/shop\/branches\/op-fails\/operations\/\S+ failed: INTERNAL_ERROR copying database: the copy broke/);
    assert.equal(emu.requests(CREATE_PATH), posts + 1, 'not retried');
    assert.ok(Date.now() - t0 < 15_000, 'no retry backoff');
    assert.equal(exists('op-fails'), false);
  });

  test('a name taken by a branch this run did not make fails at once, and that branch is left alone', async () => {
    assert.equal(exists('kept-copy'), true);
    const posts = emu.requests(CREATE_PATH);
    const app = await failureOf((await run('double-prices', { name: 'kept-copy', create: true, deleteAfter: true })).result());
    assert.equal(app.type, 'LakebaseBranchExists');
    assert.equal(app.nonRetryable, true);
    assert.match(app.message, /projects\/shop\/branches\/kept-copy already exists .*not made by this run; pick another --branch name/);
    assert.equal(emu.requests(CREATE_PATH), posts + 1, 'not retried');
    assert.equal(exists('kept-copy'), true, 'not deleted');
  });

  test('a missing parent branch fails fast, naming the environment and the fix', async () => {
    const t0 = Date.now();
    const app = await failureOf((await run('double-prices', { name: 'from-ghost', create: true, deleteAfter: true }, 'ghost')).result());
    assert.equal(app.type, 'LakebaseBranchNotFound');
    assert.match(app.message, /the parent branch projects\/shop\/branches\/nosuch \(environment ghost's branch\) does not exist; fix profiles\.lb\.environments\.ghost\.branch/);
    assert.ok(Date.now() - t0 < 10_000, 'no retries');
    assert.equal(creations('from-ghost'), 0);
  });

  test('a run on a branch that does not exist (without --create-branch) fails fast with the fix', async () => {
    const app = await failureOf((await run('double-prices', { name: 'never-made' })).result());
    assert.equal(app.type, 'LakebaseBranchNotFound');
    assert.match(app.message, /projects\/shop\/branches\/never-made does not exist; add --create-branch/);
  });

  test('an identity without CAN MANAGE gets 403: LakebaseBranchPermissionDenied, not retried, with the fix', async () => {
    const posts = emu.requests(CREATE_PATH);
    const app = await failureOf((await run('reader-job', { name: 'no-rights', create: true, deleteAfter: true })).result());
    assert.equal(app.type, 'LakebaseBranchPermissionDenied');
    assert.match(app.message, /HTTP 403: PERMISSION_DENIED .*needs CAN MANAGE on project shop/);
    assert.equal(emu.requests(CREATE_PATH), posts + 1);
  });
});
