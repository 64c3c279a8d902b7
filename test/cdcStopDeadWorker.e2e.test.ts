import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import YAML from 'yaml';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import type { Config } from '../src/config/schema';
import { createLogger } from '../src/logger';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import { createLakebaseWorker } from '../src/worker';
import { startTemporal, uniqueQueue } from './helpers/temporal';

// Finding cdc-stop-after-worker-kill (generative seed 13): `cdc stop` while the worker running the
// stream segment is dead. The cancel cannot reach the dead worker, so the segment ends in a
// heartbeat timeout; the stop must still end the stream cleanly (slot dropped when asked).

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('cdc stop while the stream segment runs on a SIGKILLed worker', () => {
  let env: TestWorkflowEnvironment;
  let base: string;
  let cluster: EmbeddedCluster;
  let source: pg.Client;
  let raw: Record<string, unknown>;
  let config: Config;

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdc-stopdead-'));
    cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical' } });
    await cluster.init();
    [env] = await Promise.all([startTemporal(), cluster.start()]);
    source = new pg.Client({ connectionString: cluster.url });
    await source.connect();
    await source.query(`CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 500) g`);
    const environment = { host: '127.0.0.1', port: cluster.options.port, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' } };
    raw = {
      temporal: { address: env.address, taskQueue: 'unused' },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { db: environment } } },
      pipelines: {
        items: { source: { profile: 'local', environment: 'db', table: 'items' }, target: { profile: 'local', environment: 'db', table: 'items_copy' }, mode: 'cdc', key: ['id'], cdc: { batchMs: 200 } },
      },
    };
    config = parseConfig(raw);
  });

  after(async () => {
    await source?.end();
    await cluster?.stop();
    await env?.teardown();
    if (base) await rm(base, { recursive: true, force: true });
  });

  test('the stop ends the stream as stopped and drops the slot, though the segment timed out', async () => {
    const taskQueue = uniqueQueue('cdc-stopdead');
    const file = path.join(base, 'lakebase.yaml');
    await writeFile(file, YAML.stringify({ ...raw, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
    const child = spawn(process.execPath, [path.join(__dirname, '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, LOG_LEVEL: 'warn' },
    });
    const exited = new Promise((r) => child.once('exit', r));
    // A long segment (still running when the worker dies), and a heartbeat timeout longer than the
    // dead worker's sticky queue holds the stop's workflow task (10 s): the cancel is requested of
    // the dead attempt, which then times out (the server retries no attempt whose cancel was asked).
    const { slot, workflowId } = await startCdc(env.client, { config, pipeline: 'items', taskQueue, stream: { runSeconds: 120, heartbeatTimeout: '20 seconds' } });
    for (let p = (await cdcProgress(env.client, config, 'items')).progress; p?.pipelines.items !== 'streaming'; p = (await cdcProgress(env.client, config, 'items')).progress) await sleep(200);
    await source.query(`UPDATE items SET v = 'x' WHERE id <= 10`);
    await sleep(1_500); // the segment is reading the slot on the child
    child.kill('SIGKILL');
    await exited;
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    const stopped = await worker.runUntil(() => stopCdc(env.client, { config, pipeline: 'items', dropSlot: true, timeoutMs: 90_000 }));
    assert.equal(stopped.ended?.stopped, true, JSON.stringify(stopped));
    const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    assert.equal(rows[0].n, 0, 'the stop dropped the slot');
    // RECORD_HISTORY=<release> saves this run's history for test/replay.test.ts (the patched stop's shape).
    const release = process.env.RECORD_HISTORY;
    if (release && /^[\w.-]+$/.test(release)) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      const dir = path.join(__dirname, 'replay', 'histories', release);
      await mkdir(dir, { recursive: true });
      await writeFile(path.join(dir, 'cdcStream-stop-dead-worker.json'), JSON.stringify({ workflowId, history }, null, 1));
    }
  });

  test('a segment\'s start-to-close is a backstop a long source transaction cannot reach; the heartbeat timeout guards liveness', async () => {
    const taskQueue = uniqueQueue('cdc-backstop');
    const worker = await createLakebaseWorker({ config, logger: createLogger({ level: 'silent' }), connection: env.nativeConnection, taskQueue });
    await worker.runUntil(async () => {
      const runSeconds = 2;
      const { workflowId } = await startCdc(env.client, { config, pipeline: 'items', taskQueue, stream: { runSeconds, heartbeatTimeout: '5 seconds' } });
      const seconds = (d: { seconds?: unknown } | null | undefined) => Number(String(d?.seconds ?? 0));
      let scheduled: { startToClose: number; heartbeat: number } | undefined;
      for (const deadline = Date.now() + 60_000; !scheduled; await sleep(200)) {
        assert.ok(Date.now() < deadline, 'no stream segment was scheduled within 60 s');
        const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
        const a = events?.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'cdcStream')?.activityTaskScheduledEventAttributes;
        if (a) scheduled = { startToClose: seconds(a.startToCloseTimeout), heartbeat: seconds(a.heartbeatTimeout) };
      }
      // Before: runSeconds + 600, so a segment waiting over ten minutes for a commit timed out and the next received the transaction again.
      assert.ok(scheduled.startToClose >= 30 * 86_400, `segment start-to-close ${scheduled.startToClose} s`);
      assert.equal(scheduled.heartbeat, 5);
      const stopped = await stopCdc(env.client, { config, pipeline: 'items', dropSlot: true, timeoutMs: 60_000 });
      assert.equal(stopped.ended?.stopped, true);
    });
  });
});
