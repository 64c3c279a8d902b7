import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { rawPublicKey } from '../src/auth/signedDecisions';
import { jobProgress, rejectJob, startJob } from '../src/client';
import type { Config } from '../src/config/schema';
import { compileNamedParams } from '../src/db/namedParams';
import { createLogger } from '../src/logger';
import { cleanUp } from './helpers/cleanup';
import { createTestDatabase, testConfig, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const chain = (err: unknown): string => (err instanceof Error ? `${err.message} ${chain(err.cause)}` : '');

describe('the placeholder scanner', () => {
  test("reads E'\\'' escape strings: a :name inside one is text, the one after it a parameter", () => {
    const c = compileNamedParams(String.raw`SELECT E'it\'s :inside', e'a\\', :after, 'plain '':quoted''', :last`);
    assert.deepEqual(c.names, ['after', 'last']);
    assert.equal(c.text, String.raw`SELECT E'it\'s :inside', e'a\\', $1, 'plain '':quoted''', $2`);
  });
});

describe('read steps are reads, and dry runs cannot escape (real Temporal dev server, real PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let config: Config;
  let taskQueue: string;
  let stopWorker: () => Promise<void>;
  const alice = { by: 'alice', key: generateKeyPairSync('ed25519').privateKey };

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('secjobs')]);
    await db.client.query(`CREATE TABLE victims (id int); INSERT INTO victims SELECT generate_series(1, 10);`);
    taskQueue = uniqueQueue('secjobs');
    const local = { profile: 'local', environment: 'test' };
    config = testConfig(db, {}, taskQueue, {
      identities: { alice: { publicKey: rawPublicKey(alice.key) } },
      jobs: {
        'read-deletes': { ...local, steps: [{ name: 'sneaky', kind: 'read', sql: 'DELETE FROM victims WHERE id <= 3 RETURNING id' }] },
        'read-commits': { ...local, steps: [{ name: 'sneaky', kind: 'read', sql: 'SELECT 1; COMMIT; DELETE FROM victims WHERE id <= 3' }] },
        'dry-escape': { ...local, steps: [{ name: 'w', kind: 'write', sql: 'DELETE FROM victims WHERE id = 4; COMMIT; DELETE FROM victims WHERE id <= 5' }] },
        'snapshot-then-write': {
          ...local,
          approval: true,
          allowSelfApproval: true,
          steps: [
            { name: 'snap', kind: 'read', sql: 'SELECT id FROM victims', into: 'public.victims_snapshot' },
            { name: 'w', kind: 'write', sql: 'DELETE FROM victims WHERE id = 10' },
          ],
        },
      },
    });
    ({ stop: stopWorker } = await runWorkerInBackground({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue }));
  });

  after(() => cleanUp(() => stopWorker?.(), () => env?.teardown(), () => db?.close()));

  const count = async () => (await db.client.query<{ n: number }>('SELECT count(*)::int AS n FROM victims')).rows[0]!.n;
  const run = (job: string, extra: { dryRun?: boolean } = {}) => startJob(env.client, { job, params: {}, taskQueue, config, signingKey: alice.key, ...extra });

  test('a read step that deletes fails in its read-only transaction; nothing is deleted', async () => {
    const err = await (await run('read-deletes')).result().then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.match(chain(err), /read-only transaction/);
    assert.equal(await count(), 10);
  });

  test('a read step cannot COMMIT its way out of read-only: one statement only', async () => {
    const err = await (await run('read-commits')).result().then(() => assert.fail('should fail'), (e: unknown) => e);
    assert.match(chain(err), /multiple commands/);
    assert.equal(await count(), 10);
  });

  test('a dry run whose SQL holds COMMIT; DELETE deletes nothing', async () => {
    await (await run('dry-escape', { dryRun: true })).result().catch(() => undefined);
    assert.equal(await count(), 10);
  });

  test('a read kept into a table waits for approval before it creates the table', async () => {
    const handle = await run('snapshot-then-write');
    for (let p = await jobProgress(env.client, handle.workflowId).catch(() => undefined); p?.status !== 'awaiting approval'; p = await jobProgress(env.client, handle.workflowId).catch(() => undefined)) {
      assert.notEqual(p?.status, 'done');
      await sleep(100);
    }
    const p = await jobProgress(env.client, handle.workflowId);
    assert.deepEqual(p.steps, [], 'the into step ran before approval');
    assert.equal((await db.client.query(`SELECT to_regclass('public.victims_snapshot') AS t`)).rows[0].t, null);
    await rejectJob(env.client, handle.workflowId, alice, 'test over');
    await handle.result().catch(() => undefined);
    assert.equal(await count(), 10);
  });
});
