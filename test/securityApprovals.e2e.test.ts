import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { rawPublicKey } from '../src/auth/signedDecisions';
import { jobProgress } from '../src/client';
import { parseConfig } from '../src/config/load';
import { createLogger } from '../src/logger';
import type { JobProgress } from '../src/workflows';
import { cleanUp } from './helpers/cleanup';
import { runCli, shown } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { runWorkerInBackground, startTemporal, uniqueQueue } from './helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** An error's message with its causes' (a workflow or update failure wraps the activity's reason). */
const chain = (err: unknown): string => (err instanceof Error ? `${err.message} ${chain(err.cause)}` : '');
const keys = { alice: generateKeyPairSync('ed25519').privateKey, bob: generateKeyPairSync('ed25519').privateKey, mallory: generateKeyPairSync('ed25519').privateKey };

describe('approvals that hold: only while awaiting, signed by a configured approver, not by the starter (CLI, real dev server)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let stopWorker: () => Promise<void>;
  let file: string;
  const keyFile: Record<keyof typeof keys, string> = { alice: '', bob: '', mallory: '' };

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('secappr')]);
    await db.client.query('CREATE TABLE audit (note text)');
    const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-appr-'));
    for (const [name, key] of Object.entries(keys) as [keyof typeof keys, KeyObject][]) {
      keyFile[name] = path.join(dir, `${name}.pem`);
      await writeFile(keyFile[name], key.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
    }
    const taskQueue = uniqueQueue('appr');
    const local = { profile: 'local', environment: 'test' };
    // Mallory holds a key, but it is not among the identities.
    const raw = {
      temporal: { address: env.address, taskQueue },
      profiles: { local: { auth: { method: 'pat', token: 'x' }, environments: { test: db.environment } } },
      identities: { alice: { publicKey: rawPublicKey(keys.alice) }, bob: { publicKey: rawPublicKey(keys.bob) } },
      jobs: {
        // The read step takes a moment, so a decision sent right after the start arrives before the gate.
        gated: { ...local, approval: true, params: { n: { type: 'integer' } }, steps: [{ name: 'look', kind: 'read', sql: 'SELECT pg_sleep(3), :n::int AS n' }, { name: 'note', kind: 'write', sql: `INSERT INTO audit VALUES ('gated ' || :n)` }] },
      },
    };
    file = path.join(dir, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(raw));
    ({ stop: stopWorker } = await runWorkerInBackground({ config: parseConfig(raw, {}), logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue }));
  });

  after(() => cleanUp(() => stopWorker?.(), () => env?.teardown(), () => db?.close()));

  const cli = (...args: string[]) => runCli([...args, '--config', file]);
  async function startGated(n: number, as: keyof typeof keys = 'alice'): Promise<string> {
    const r = await cli('job', 'run', '--job', 'gated', '--param', `n=${n}`, '--no-wait', '--key-file', keyFile[as]);
    assert.equal(r.code, 0, shown(r));
    return /^started (\S+)$/m.exec(r.stdout)![1]!;
  }
  async function progressOf(id: string, until?: (p: JobProgress) => boolean): Promise<JobProgress> {
    for (const deadline = Date.now() + 30_000; ; await sleep(100)) {
      const p = await jobProgress(env.client, id).catch(() => undefined);
      if (p && (!until || until(p))) return p;
      assert.ok(Date.now() < deadline, `job ${id} never reached the expected state: ${JSON.stringify(p)}`);
    }
  }
  const notes = async () => (await db.client.query<{ note: string }>('SELECT note FROM audit ORDER BY note')).rows.map((r) => r.note);

  test('a decision before the gate (the old approve signal, or the CLI) does not pre-approve the job', async () => {
    const id = await startGated(1);
    // What an attacker with namespace access sends: the old signal, right after the start.
    await env.client.workflow.getHandle(id).signal('approve', { by: 'bob' });
    const early = await cli('job', 'approve', id, '--key-file', keyFile.bob);
    assert.notEqual(early.code, 0, shown(early));
    assert.match(early.stderr, /not awaiting approval/, shown(early));
    const p = await progressOf(id, (x) => x.status === 'awaiting approval');
    await sleep(1_000);
    assert.equal((await progressOf(id)).status, 'awaiting approval', 'the early decision approved the job');
    assert.deepEqual(await notes(), []);
    assert.equal(p.startedBy, 'alice');
    const late = await cli('job', 'approve', id, '--key-file', keyFile.bob);
    assert.equal(late.code, 0, shown(late));
    assert.match(late.stdout, /approved by bob/);
    const done = await env.client.workflow.getHandle(id).result();
    assert.equal(done.approvedBy, 'bob');
    assert.deepEqual(await notes(), ['gated 1']);
  });

  test('the starter cannot approve their own job', async () => {
    const id = await startGated(2);
    await progressOf(id, (x) => x.status === 'awaiting approval');
    const self = await cli('job', 'approve', id, '--key-file', keyFile.alice);
    assert.notEqual(self.code, 0, shown(self));
    assert.match(self.stderr, /alice started this job and may not approve it/, shown(self));
    assert.equal((await progressOf(id)).status, 'awaiting approval');
    // Withdrawing one's own job is allowed.
    const withdraw = await cli('job', 'reject', id, '--key-file', keyFile.alice, '--reason', 'changed my mind');
    assert.equal(withdraw.code, 0, shown(withdraw));
    await assert.rejects(env.client.workflow.getHandle(id).result(), (err) => /rejected by alice: changed my mind/.test(chain(err)));
    assert.deepEqual(await notes(), ['gated 1']);
  });

  test("a forged approver (a name typed, a key not configured, bob's name signed with mallory's key) is refused", async () => {
    const id = await startGated(3);
    await progressOf(id, (x) => x.status === 'awaiting approval');
    const typed = await cli('job', 'approve', id, '--by', 'bob');
    assert.notEqual(typed.code, 0, shown(typed));
    const unknownKey = await cli('job', 'approve', id, '--key-file', keyFile.mallory);
    assert.notEqual(unknownKey.code, 0, shown(unknownKey));
    assert.match(unknownKey.stderr, /not under identities/, shown(unknownKey));
    // Past the CLI: an update naming bob, signed by mallory, straight to the workflow.
    const handle = env.client.workflow.getHandle(id);
    const { runId } = await handle.describe();
    const statement = JSON.stringify({ v: 1, action: 'approve', by: 'bob', job: 'gated', workflowId: id, runId, at: Date.now() });
    const signed = { statement, signature: sign(null, Buffer.from(statement), keys.mallory).toString('base64') };
    await assert.rejects(handle.executeUpdate('approve', { args: [{ by: 'bob', signed }] }), (err) => /signature is not bob's/.test(chain(err)));
    await assert.rejects(handle.executeUpdate('approve', { args: [{ by: 'bob' }] }), (err) => /must be signed/.test(chain(err)));
    assert.equal((await progressOf(id)).status, 'awaiting approval');
    // A job needing approval cannot be started unsigned (the starter would be unknown).
    const unsigned = await cli('job', 'run', '--job', 'gated', '--param', 'n=4', '--no-wait');
    assert.notEqual(unsigned.code, 0, shown(unsigned));
    assert.match(unsigned.stderr, /needs approval by someone other than whoever starts it/);
    const bob = await cli('job', 'reject', id, '--key-file', keyFile.bob);
    assert.equal(bob.code, 0, shown(bob));
    assert.deepEqual(await notes(), ['gated 1']);
  });
});
