// A worker started before its Temporal frontend answers (compose brings both up at once; a pod
// restarts while the server does) waits for it (worker.temporalWaitSeconds) instead of exiting,
// then registers its search attributes and runs what it is given. Found by the generative suite
// (seed 1988637040): a worker restarted just as the dev server restarted exited, and nothing ran.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import YAML from 'yaml';
import { findTemporalCli } from '../src/provision/temporal';
import { CLI, runCli, shown } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { uniqueQueue } from './helpers/temporal';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const children: ChildProcess[] = [];
let db: TestDatabase;
before(async () => {
  db = await createTestDatabase('waitfortemporal');
  await db.client.query('CREATE TABLE src (id int PRIMARY KEY, v text); INSERT INTO src SELECT g, md5(g::text) FROM generate_series(1, 500) g');
});
after(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  await db?.close();
});

test('a worker started while Temporal is down waits for it, then runs a sync', async (t) => {
  const temporal = await findTemporalCli();
  if (!temporal) return t.skip('no Temporal CLI (npm test builds one with Go, or downloads it)');
  const port = await freePort();
  const taskQueue = uniqueQueue('waitfortemporal');
  const raw = {
    temporal: { address: `127.0.0.1:${port}`, taskQueue },
    profiles: { local: { auth: { method: 'pat', token: 'trust' }, environments: { test: db.environment } } },
    pipelines: { orders: { source: { profile: 'local', environment: 'test', table: 'src' }, target: { profile: 'local', environment: 'test', table: 'dst' }, key: ['id'] } },
    worker: { opsPort: 0, temporalWaitSeconds: 90 },
  };
  const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-waitfortemporal-')), 'lakebase.yaml');
  await writeFile(file, YAML.stringify(raw));
  let log = '';
  const worker = spawn(process.execPath, [CLI, 'worker', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn', LAKEBASE_WORKER_FROM_SOURCE: '1' } });
  children.push(worker);
  worker.stdout!.on('data', (d: Buffer) => (log += d));
  worker.stderr!.on('data', (d: Buffer) => (log += d));
  // Long enough for the worker to have tried and been refused a few times.
  for (let i = 0; i < 300 && !/Temporal does not answer yet/.test(log); i++) await sleep(100);
  await sleep(3_000);
  assert.equal(worker.exitCode, null, `the worker exited while Temporal was down:\n${log}`);
  assert.match(log, /"reason":"connection refused: nothing listens there".*Temporal does not answer yet; retrying \(worker\.temporalWaitSeconds\)/);

  const server = spawn(temporal, ['server', 'start-dev', '--headless', '--port', String(port), '--http-port', String(await freePort()), '--metrics-port', String(await freePort()), '--log-level', 'error'], { stdio: 'ignore' });
  children.push(server);
  const r = await runCli(['sync', 'start', '--pipeline', 'orders', '--wait', '--config', file], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, `${shown(r)}\n--- worker\n${log}`);
  assert.equal((await db.client.query('SELECT count(*)::int AS n FROM dst')).rows[0].n, 500);
  assert.equal(worker.exitCode, null, log);
});
