// Fault injection on real Temporal + real PostgreSQL: `npm run test:faults` runs this and writes
// docs/reliability.md from what each scenario observed (test/faults/helpers.ts `record`).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { createLogger } from '../../src/logger';
import { provisionPostgres, type ProvisionedPostgres } from '../../src/provision/postgres';
import { createLakebaseWorker } from '../../src/worker';
import type { DataSyncInput, SyncProgress } from '../../src/workflows';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { startTemporal, uniqueQueue } from '../helpers/temporal';
import { compare, FaultyProxy, record } from './helpers';

const ROWS = 200_000;
const COLS = ['id', 'payload', 'n'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = createLogger({ level: 'silent' });

describe('fault injection: nothing lost, nothing duplicated, every failure explained', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let other: ProvisionedPostgres;
  let otherDb: pg.Client;
  let proxy: FaultyProxy;
  let raw: Record<string, unknown>;
  let config: Config;

  before(async () => {
    // allSettled: whatever did start is assigned, so after() stops it even when another part
    // failed (a dev server left running would keep this file's process, and the suite, alive).
    const [e, d, o] = await Promise.allSettled([startTemporal(), createTestDatabase('faults'), provisionPostgres(() => undefined, { forceEmbedded: true })]);
    if (e.status === 'fulfilled') env = e.value;
    if (d.status === 'fulfilled') db = d.value;
    if (o.status === 'fulfilled') other = o.value;
    for (const r of [e, d, o]) if (r.status === 'rejected') throw r.reason;
    const fill = `CREATE TABLE src (id int PRIMARY KEY, payload text, n int); INSERT INTO src SELECT g, md5(g::text), g FROM generate_series(1, ${ROWS}) g;`;
    await db.client.query(fill);
    // Targets without a key: a chunk applied twice would show as duplicates.
    for (const t of ['kill', 'net', 'slow', 'lock', 'timeout', 'check', 'srcrestart']) await db.client.query(`CREATE TABLE dst_${t} (id int, payload text, n int)`);
    await db.client.query(`
      CREATE SEQUENCE slow_once;
      CREATE FUNCTION slow_once(i int) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN IF i = 100001 AND nextval('slow_once') = 1 THEN PERFORM pg_sleep(3); END IF; RETURN true; END $$;
      CREATE VIEW src_slow AS SELECT * FROM src WHERE slow_once(id);
    `);
    otherDb = await connectOther();
    await otherDb.query(fill);
    await otherDb.query('CREATE TABLE dst_tgtrestart (id int, payload text, n int)');
    // Parallel runs (sync engine v2): a keyless full-refresh target shows any slice loaded twice;
    // the upsert target starts with stale rows so chunks merge.
    await otherDb.query(`CREATE TABLE dst_pfull (id int, payload text, n int);
      CREATE TABLE dst_pupsert (id int PRIMARY KEY, payload text, n int);
      INSERT INTO dst_pupsert SELECT g, 'stale', -g FROM generate_series(1, ${ROWS}, 10) g;`);
    proxy = await new FaultyProxy({ host: db.environment.host, port: db.environment.port }).start();
    const u = new URL(other.url);
    const local = (table: string, e = 'test') => ({ profile: 'local', environment: e, table });
    const append = (source: unknown, target: unknown, extra: Record<string, unknown> = {}) => ({ source, target, key: ['id'], mode: 'append', batchRows: 10_000, ...extra });
    raw = {
      temporal: { address: env.address, taskQueue: 'unused' },
      profiles: {
        local: {
          auth: { method: 'pat', token: 'trust' },
          environments: {
            test: db.environment,
            proxied: { ...db.environment, host: '127.0.0.1', port: proxy.port, idleTimeoutMs: 1000 },
            impatient: { ...db.environment, statementTimeoutMs: 1500 },
          },
        },
        other: {
          auth: { method: 'pat', token: decodeURIComponent(u.password) || 'trust-auth-ignores-this' },
          environments: { test: { host: u.hostname, port: Number(u.port), database: 'postgres', user: 'postgres', ssl: { mode: 'disable' }, idleTimeoutMs: 1000 } },
        },
      },
      pipelines: {
        kill: append(local('src'), local('dst_kill')),
        net: append(local('src', 'proxied'), local('dst_net', 'proxied')),
        slow: append(local('src', 'proxied'), local('dst_slow', 'proxied')),
        lock: append(local('src'), local('dst_lock')),
        // One stream: planning a parallel run would read the view whole, and take the one slow row out of the chunks.
        timeout: append(local('src_slow', 'impatient'), local('dst_timeout', 'impatient'), { parallelism: 1 }),
        check: append(local('src'), local('dst_check')),
        srcrestart: append({ profile: 'other', environment: 'test', table: 'src' }, local('dst_srcrestart')),
        tgtrestart: append(local('src'), { profile: 'other', environment: 'test', table: 'dst_tgtrestart' }),
        pfull: append(local('src'), { profile: 'other', environment: 'test', table: 'dst_pfull' }, { mode: 'full-refresh', parallelism: 4 }),
        pupsert: append(local('src'), { profile: 'other', environment: 'test', table: 'dst_pupsert' }, { mode: 'upsert', parallelism: 4 }),
      },
    };
    config = parseConfig(raw, {});
  });

  after(async () => {
    await proxy?.stop();
    await otherDb?.end();
    await other?.stop();
    await env?.teardown();
    await db?.close();
  });

  async function connectOther(): Promise<pg.Client> {
    const c = new pg.Client({ connectionString: other.url });
    c.on('error', () => undefined); // the fault tests restart this server under it
    await c.connect();
    return c;
  }

  async function start(taskQueue: string, pipeline: string): Promise<WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>> {
    return env.client.workflow.start('dataSync', {
      taskQueue,
      workflowId: `sync:${pipeline}:${Date.now()}`,
      // Short heartbeat timeout: a chunk stuck on a dead connection is retried within seconds.
      args: [{ pipeline, heartbeatTimeout: '5 seconds' }],
    }) as Promise<WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>>;
  }

  async function chunksDone(h: WorkflowHandle, n: number) {
    for (;;) {
      const p = await h.query<SyncProgress>('progress').catch(() => undefined);
      if (p && p.chunks >= n) return;
      await sleep(20);
    }
  }

  async function withWorker<R>(fn: (q: string) => Promise<R>, taskQueue = uniqueQueue('faults')): Promise<R> {
    const w = await createLakebaseWorker({ config, logger, connection: env.nativeConnection, taskQueue });
    return w.runUntil(() => fn(taskQueue));
  }

  async function scenario(name: string, injected: string, expected: string, target: string, run: () => Promise<{ observed: string; recovery: number | null }>, client: pg.Client = db.client) {
    const { observed, recovery } = await run();
    const { lost, dup, equal } = await compare(client, 'src', target, COLS, 'id');
    await record({ scenario: name, injected, expected, observed: `${observed}; checksum ${equal ? 'equal' : 'DIFFERENT'}`, rowsLost: lost, rowsDuplicated: dup, recoverySeconds: recovery });
    assert.equal(lost, 0, 'rows lost');
    assert.equal(dup, 0, 'rows duplicated');
    assert.ok(equal, 'target checksum equals source');
  }

  test('worker SIGKILLed mid-chunk; a second worker takes over', async () => {
    await scenario('worker killed (SIGKILL) mid-sync', 'SIGKILL of the worker process after 3 chunks; a second worker started', 'the chunk in flight is redone by the second worker', 'dst_kill', async () => {
      const taskQueue = uniqueQueue('kill');
      const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-fault-')), 'lakebase.yaml');
      await writeFile(file, YAML.stringify({ ...raw, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
      const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], { stdio: 'ignore' });
      const h = await start(taskQueue, 'kill');
      await chunksDone(h, 3);
      child.kill('SIGKILL');
      const killedAt = Date.now();
      const r = await withWorker(() => h.result(), taskQueue);
      return { observed: `completed by the second worker; ${r.chunks} chunks`, recovery: (Date.now() - killedAt) / 1000 };
    });
  });

  test('network: connections blackholed for 8 s, then reset', async () => {
    await scenario('network cut (blackhole, then reset)', 'a TCP proxy swallows all bytes for 8 s after chunk 2, then resets every connection', 'the stuck chunk times out (heartbeat), is retried, the sync completes', 'dst_net', async () => {
      return withWorker(async (q) => {
        const h = await start(q, 'net');
        await chunksDone(h, 2);
        proxy.blackhole = true;
        const at = Date.now();
        await sleep(8_000);
        proxy.resetAll();
        proxy.blackhole = false;
        const r = await h.result();
        return { observed: `completed; ${r.chunks} chunks`, recovery: (Date.now() - at) / 1000 };
      });
    });
  });

  test('network: 20 ms of added latency per packet', async () => {
    proxy.latencyMs = 20;
    try {
      await scenario('slow network', '20 ms added to every packet in both directions', 'slower, complete', 'dst_slow', async () =>
        withWorker(async (q) => {
          const t0 = Date.now();
          const r = await (await start(q, 'slow')).result();
          return { observed: `completed in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${r.chunks} chunks`, recovery: null };
        }),
      );
    } finally {
      proxy.latencyMs = 0;
    }
  });

  test('a lock held on the target table for 5 s', async () => {
    await scenario('lock on the target', 'another session holds ACCESS EXCLUSIVE on the target for 5 s after chunk 2', 'the chunk waits for the lock, then commits', 'dst_lock', async () =>
      withWorker(async (q) => {
        const h = await start(q, 'lock');
        await chunksDone(h, 2);
        const locker = new pg.Client({ connectionString: db.url });
        await locker.connect();
        await locker.query('BEGIN; LOCK TABLE dst_lock IN ACCESS EXCLUSIVE MODE');
        const at = Date.now();
        await sleep(5_000);
        await locker.query('COMMIT');
        await locker.end();
        const r = await h.result();
        return { observed: `completed; ${r.chunks} chunks`, recovery: (Date.now() - at) / 1000 };
      }),
    );
  });

  test('a statement timeout on one chunk', async () => {
    await scenario('statement timeout', 'statement_timeout 1.5 s; one chunk’s source query sleeps 3 s the first time', 'SQLSTATE 57014, retried, completes', 'dst_timeout', async () =>
      withWorker(async (q) => {
        const h = await start(q, 'timeout');
        const r = await h.result();
        const attempts = ((await h.fetchHistory()).events ?? []).flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []);
        assert.ok(Math.max(...attempts) >= 2, 'the timed-out chunk was retried');
        return { observed: `completed; the timed-out chunk ran ${Math.max(...attempts)} times`, recovery: null };
      }),
    );
  });

  test('PostgreSQL restarted mid-sync: source side, then target side', async () => {
    await scenario('source PostgreSQL restarted', 'the source server (another database) is stopped for 2 s after chunk 2 and started again', 'connection errors are retried; completes', 'dst_srcrestart', async () =>
      withWorker(async (q) => {
        const h = await start(q, 'srcrestart');
        await chunksDone(h, 2);
        const at = Date.now();
        await other.restart!(2_000);
        const r = await h.result();
        return { observed: `completed; ${r.chunks} chunks`, recovery: (Date.now() - at) / 1000 };
      }),
    );
    const at = Date.now();
    const r = await withWorker(async (q) => {
      const h = await start(q, 'tgtrestart');
      await chunksDone(h, 2);
      await other.restart!(2_000);
      return h.result();
    });
    const recovery = (Date.now() - at) / 1000;
    await otherDb.end().catch(() => undefined);
    otherDb = await connectOther();
    const c = await compare(otherDb, 'src', 'dst_tgtrestart', COLS, 'id');
    await record({
      scenario: 'target PostgreSQL restarted',
      injected: 'the target server is stopped for 2 s after chunk 2 and started again',
      expected: 'the open chunk transaction is lost with the server, retried, completes',
      observed: `completed; ${r.chunks} chunks; checksum ${c.equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: c.lost,
      rowsDuplicated: c.dup,
      recoverySeconds: recovery,
    });
    assert.deepEqual([c.lost, c.dup, c.equal], [0, 0, true]);
  });

  for (const [pipeline, mode] of [['pfull', 'full refresh'], ['pupsert', 'upsert (merge)']] as const) {
    test(`parallel ${mode}: worker SIGKILLed, then the target PostgreSQL restarted, mid-run`, async () => {
      const taskQueue = uniqueQueue(pipeline);
      const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-fault-')), 'lakebase.yaml');
      await writeFile(file, YAML.stringify({ ...raw, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
      const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], { stdio: 'ignore' });
      const h = await start(taskQueue, pipeline);
      await chunksDone(h, 3);
      child.kill('SIGKILL');
      const killedAt = Date.now();
      const r = await withWorker(async () => {
        await chunksDone(h, 8);
        await other.restart!(2_000);
        return h.result();
      }, taskQueue);
      const recovery = (Date.now() - killedAt) / 1000;
      await otherDb.end().catch(() => undefined);
      otherDb = await connectOther();
      const c = await compare(otherDb, 'src', `dst_${pipeline}`, COLS, 'id');
      await record({
        scenario: `parallel ${mode}, 4 partitions at once`,
        injected: 'SIGKILL of the worker after 3 chunks (a second worker takes over), then the target server stopped for 2 s after chunk 8',
        expected: 'the slices in flight are redone from their own cursors; completes',
        observed: `completed in ${r.run} run(s); ${r.partitions?.total ?? 1} partitions, ${r.chunks} chunks; checksum ${c.equal ? 'equal' : 'DIFFERENT'}`,
        rowsLost: c.lost,
        rowsDuplicated: c.dup,
        recoverySeconds: recovery,
      });
      assert.deepEqual([c.lost, c.dup, c.equal], [0, 0, true]);
      assert.ok((r.partitions?.total ?? 0) > 1, 'the run was partitioned');
    });
  }

  test('load: 25 syncs and 25 jobs at once on small tables, plus a 1,000,000-row sync, on one worker', async () => {
    const small = Array.from({ length: 25 }, (_, i) => i);
    await db.client.query(`
      CREATE TABLE big AS SELECT g AS id, md5(g::text) AS payload, g AS n FROM generate_series(1, 1000000) g;
      ALTER TABLE big ADD PRIMARY KEY (id);
      CREATE TABLE big_copy (id int PRIMARY KEY, payload text, n int);
      CREATE TABLE touches (job int, at timestamptz DEFAULT now());
      ${small.map((i) => `CREATE TABLE s_${i} AS SELECT g AS id, md5(g::text) AS payload, g AS n FROM generate_series(1, 2000) g; ALTER TABLE s_${i} ADD PRIMARY KEY (id); CREATE TABLE t_${i} (LIKE s_${i} INCLUDING ALL);`).join('\n')}
    `);
    const local = (table: string) => ({ profile: 'local', environment: 'test', table });
    const taskQueue = uniqueQueue('load');
    const loadConfig = {
      ...raw,
      temporal: { address: env.address, taskQueue },
      worker: { opsPort: 0 },
      pipelines: {
        big: { source: local('big'), target: local('big_copy'), key: ['id'] },
        ...Object.fromEntries(small.map((i) => [`small-${i}`, { source: local(`s_${i}`), target: local(`t_${i}`), key: ['id'], batchRows: 500 }])),
      },
      jobs: { touch: { profile: 'local', environment: 'test', params: { i: { type: 'integer' } }, steps: [{ name: 'read', kind: 'read', sql: 'SELECT count(*) AS n FROM big WHERE id <= :i' }, { name: 'touch', kind: 'write', sql: 'INSERT INTO touches (job) VALUES (:i)' }] } },
    };
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-load-')), 'lakebase.yaml');
    await writeFile(file, YAML.stringify(loadConfig));
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], { stdio: 'ignore' });
    let peakMb = 0;
    const sampler = setInterval(() => {
      void import('node:fs/promises').then((fs) => fs.readFile(`/proc/${child.pid}/status`, 'utf8')).then((st) => {
        const kb = Number(/^VmRSS:\s+(\d+)/m.exec(st)?.[1] ?? 0);
        peakMb = Math.max(peakMb, Math.round(kb / 1024));
      }, () => undefined);
    }, 100);
    try {
      const t0 = Date.now();
      const handles: WorkflowHandle[] = [
        await start(taskQueue, 'big'),
        ...(await Promise.all(small.map((i) => start(taskQueue, `small-${i}`)))),
        ...(await Promise.all(small.map((i) => env.client.workflow.start('operationalJob', { taskQueue, workflowId: `job:touch:${i}:${Date.now()}`, args: [{ job: 'touch', params: { i } }] })))),
      ];
      await Promise.all(handles.map((h) => h.result()));
      const seconds = (Date.now() - t0) / 1000;
      // Activity schedule-to-start latency from the histories: how long tasks waited for the worker.
      const waits: number[] = [];
      for (const h of handles) {
        const events = (await h.fetchHistory()).events ?? [];
        const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6]));
        for (const e of events) {
          const a = e.activityTaskStartedEventAttributes;
          if (!a) continue;
          const at = scheduled.get(String(a.scheduledEventId));
          if (at !== undefined) waits.push(Number(e.eventTime!.seconds) * 1000 + (e.eventTime!.nanos ?? 0) / 1e6 - at);
        }
      }
      waits.sort((a, b) => a - b);
      const pct = (q: number) => Math.round(waits[Math.min(waits.length - 1, Math.floor(q * waits.length))] ?? 0);
      let lost = 0;
      let dup = 0;
      let equal = true;
      for (const [src, dst] of [['big', 'big_copy'], ...small.map((i) => [`s_${i}`, `t_${i}`])] as [string, string][]) {
        const c = await compare(db.client, src, dst, COLS, 'id');
        lost += c.lost;
        dup += c.dup;
        equal &&= c.equal;
      }
      const touched = (await db.client.query('SELECT count(DISTINCT job)::int AS n FROM touches')).rows[0].n;
      await record({
        scenario: 'load: 50 syncs and jobs + a 1 M-row sync at once',
        injected: '25 syncs of 2,000 rows, 25 two-step jobs and one 1,000,000-row upsert started together on one worker (20 activity slots)',
        expected: 'all complete; memory bounded; tasks wait for slots, not for ever',
        observed: `all ${handles.length} completed in ${seconds.toFixed(1)} s; ${touched}/25 jobs wrote; worker peak RSS ${peakMb} MB; activity schedule-to-start p50 ${pct(0.5)} ms, p95 ${pct(0.95)} ms, max ${Math.round(waits[waits.length - 1] ?? 0)} ms (${waits.length} activities); checksums ${equal ? 'equal' : 'DIFFERENT'}`,
        rowsLost: lost,
        rowsDuplicated: dup,
        recoverySeconds: null,
      });
      assert.deepEqual([lost, dup, equal, touched], [0, 0, true, 25]);
      assert.ok(peakMb > 0 && peakMb < 1024, `worker RSS stayed bounded (${peakMb} MB)`);
    } finally {
      clearInterval(sampler);
      child.kill('SIGTERM');
    }
  });

  test('disk-full style: a CHECK on the target starts failing mid-sync', async () => {
    await withWorker(async (q) => {
      const h = await start(q, 'check');
      await chunksDone(h, 2);
      await db.client.query('ALTER TABLE dst_check ADD CONSTRAINT stop_writes CHECK (n < 150000) NOT VALID');
      const err = await h.result().then(() => assert.fail('the sync should fail'), (e: unknown) => e);
      assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ActivityFailure && err.cause.cause instanceof ApplicationFailure);
      assert.equal(err.cause.cause.type, 'LakebaseConstraintError');
      // Each partition committed the rows from its lower bound up to its cursor; exactly those are there, once.
      const { rows } = await db.client.query<{ lower_bound: string | null; cursor: string[] | null }>(
        `SELECT lower_bound, cursor FROM lakebase_worker.sync_partition WHERE pipeline = 'check' AND cursor IS NOT NULL`,
      );
      const ranges = rows.map((r) => `(id ${r.lower_bound === null ? '> 0' : `>= ${Number(r.lower_bound)}`} AND id <= ${Number(r.cursor![0])})`);
      const committedRows = `(SELECT * FROM src WHERE ${ranges.join(' OR ') || 'false'})`;
      const committed = Number((await db.client.query(`SELECT count(*) AS n FROM ${committedRows} s`)).rows[0].n);
      assert.ok(committed > 0, 'some chunks committed before the CHECK');
      const c = await compare(db.client, committedRows, 'dst_check', COLS, 'id');
      await record({
        scenario: 'target rejects writes (CHECK starts failing)',
        injected: 'CHECK (n < 150000) added to the target after chunk 2',
        expected: 'non-retryable LakebaseConstraintError on the first failing chunk; committed chunks intact; no partial chunk',
        observed: `failed: ${err.cause.cause.type} (${err.cause.cause.message.slice(0, 90)}…); ${committed} rows committed in ${rows.length} partitions, none of the failing chunk`,
        rowsLost: c.lost,
        rowsDuplicated: c.dup,
        recoverySeconds: null,
      });
      assert.deepEqual([c.lost, c.dup, c.equal], [0, 0, true]);
    });
  });
});
