// Fault injection on real Temporal + real PostgreSQL: `npm run test:faults` runs this and writes
// docs/reliability.md from what each scenario observed (test/faults/helpers.ts `record`).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ActivityFailure, ApplicationFailure, Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import YAML from 'yaml';
import { parseConfig } from '../../src/config/load';
import type { Config } from '../../src/config/schema';
import { createLogger } from '../../src/logger';
import { startCdc, cdcProgress, stopCdc } from '../../src/client/cdc';
import { failureText, formatActivityFailure, lastActivityFailure } from '../../src/client/runHealth';
import { relationChecksum } from '../../src/db/checksum';
import { EmbeddedCluster } from '../../src/provision/embeddedPostgres';
import { freePort, provisionPostgres, type ProvisionedPostgres } from '../../src/provision/postgres';
import { findTemporalCli } from '../../src/provision/temporal';
import { LAKEBASE_SEARCH_ATTRIBUTES } from '../../src/workflows/searchAttributes';
import { createLakebaseWorker } from '../../src/worker';
import type { VerifyReport } from '../../src/activities/types';
import type { DataSyncInput, SyncProgress, VerifyProgress } from '../../src/workflows';
import { createCollatedDatabase, createTestDatabase, type TestDatabase } from '../helpers/db';
import { startTemporal, uniqueQueue } from '../helpers/temporal';
import { compare, compareAcross, FaultyProxy, record } from './helpers';

const ROWS = 200_000;
const COLS = ['id', 'payload', 'n'];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const logger = createLogger({ level: 'silent' });

describe('fault injection: nothing lost, nothing duplicated, every failure explained', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  /** A source database on ICU en-US, for the text-keyed compare against the test database (libc C.UTF-8). */
  let icuDb: TestDatabase;
  let other: ProvisionedPostgres;
  let otherDb: pg.Client;
  let proxy: FaultyProxy;
  let raw: Record<string, unknown>;
  let config: Config;

  before(async () => {
    // allSettled: whatever did start is assigned, so after() stops it even when another part
    // failed (a dev server left running would keep this file's process, and the suite, alive).
    const [e, d, o, i] = await Promise.allSettled([
      startTemporal(), createTestDatabase('faults'), provisionPostgres(() => undefined, { forceEmbedded: true }), createCollatedDatabase('faults', 'icu'),
    ]);
    if (e.status === 'fulfilled') env = e.value;
    if (d.status === 'fulfilled') db = d.value;
    if (o.status === 'fulfilled') other = o.value;
    if (i.status === 'fulfilled') icuDb = i.value;
    for (const r of [e, d, o, i]) if (r.status === 'rejected') throw r.reason;
    const fill = `CREATE TABLE src (id int PRIMARY KEY, payload text, n int); INSERT INTO src SELECT g, md5(g::text), g FROM generate_series(1, ${ROWS}) g;`;
    await db.client.query(fill);
    // Targets without a key: a chunk applied twice would show as duplicates.
    for (const t of ['kill', 'net', 'slow', 'lock', 'timeout', 'check', 'srcrestart']) await db.client.query(`CREATE TABLE dst_${t} (id int, payload text, n int)`);
    await db.client.query(`
      -- Slow while the flag is up; the scenario lowers it once the first attempt sleeps. Only a read:
      -- a sync's source session is read-only.
      CREATE TABLE slow_flag (up boolean NOT NULL); INSERT INTO slow_flag VALUES (true);
      CREATE FUNCTION slow_once(i int) RETURNS boolean LANGUAGE plpgsql AS $$
      BEGIN IF i = 100001 AND (SELECT up FROM slow_flag) THEN PERFORM pg_sleep(3); END IF; RETURN true; END $$;
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
            icu: icuDb.environment,
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
        // resync: merge — the scenario is about merge chunks (compare-then-copy has its own below).
        pupsert: append(local('src'), { profile: 'other', environment: 'test', table: 'dst_pupsert' }, { mode: 'upsert', parallelism: 4, resync: 'merge' }),
        // Delete detection and verify: 100 buckets of about 2,000 rows, 4 at once, so a kill finds some done and some in flight.
        // resync: merge — this scenario is about delete detection after the chunks, not compare-then-copy.
        pdel: append(local('src_del'), local('dst_del'), { mode: 'upsert', batchRows: 2_000, parallelism: 4, deletes: 'hard', verify: 'checksums', resync: 'merge' }),
        // Compare-then-copy re-sync: 100 buckets of about 2,000 rows, 4 at once.
        presync: append(local('src_resync'), local('dst_resync'), { mode: 'upsert', batchRows: 2_000, parallelism: 4, deletes: 'hard' }),
        // The same, text-keyed, from a source that collates differently (ICU en-US → libc C.UTF-8).
        ptresync: append(local('src_tresync', 'icu'), local('dst_tresync'), { mode: 'upsert', batchRows: 2_000, parallelism: 4, deletes: 'hard' }),
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
    await icuDb?.close();
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
        await until('the chunk to reach the slow row', async () => {
          const { rows } = await db.client.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event = 'PgSleep'`);
          return rows[0].n > 0;
        }, 60_000);
        await db.client.query('UPDATE slow_flag SET up = false');
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

  // Delete detection and verify (issue 13): a worker killed while their bucket activities are in
  // flight. The kill moment is made certain with locks another session holds on the target: the
  // buckets block there (in flight, their connections open), the worker is SIGKILLed, a second
  // worker starts, and the locks are let go once the dead worker's buckets have been retried.

  /** Polls `ready` every 20 ms until it holds (a scenario's injection point). */
  async function until(what: string, ready: () => Promise<boolean>, timeoutMs = 120_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready())) {
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for ${what}`);
      await sleep(20);
    }
  }

  /** Activities of `type` the server sees started and not closed (in flight on some worker), with their attempts. */
  async function inFlight(h: WorkflowHandle, type: string): Promise<number[]> {
    const d = await h.describe();
    return (d.raw.pendingActivities ?? [])
      .filter((a) => a.activityType?.name === type && a.state === temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED)
      .map((a) => a.attempt ?? 1);
  }

  /** Backends waiting for a lock (another session's) in a statement on `table`: the buckets that are stuck. */
  async function blockedOn(table: string): Promise<number> {
    const { rows } = await db.client.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE $1`,
      [`%${table}%`],
    );
    return rows[0]!.n;
  }

  /** Attempts of `type` in the history (one per closed attempt, with the worker identity that ran it). */
  async function attemptsOf(h: WorkflowHandle, type: string) {
    const events = (await h.fetchHistory()).events ?? [];
    const scheduled = new Map(events.filter((e) => e.activityTaskScheduledEventAttributes).map((e) => [String(e.eventId), e.activityTaskScheduledEventAttributes!.activityType?.name]));
    return events.flatMap((e) => {
      const a = e.activityTaskStartedEventAttributes;
      return a && scheduled.get(String(a.scheduledEventId)) === type ? [{ attempt: a.attempt ?? 1, identity: a.identity ?? '?' }] : [];
    });
  }

  /**
   * Starts a worker process on a fresh task queue, starts the workflow, waits for `ready` (with
   * `locker` holding its locks), SIGKILLs the worker, starts a second one (in this process), waits
   * until the server has handed a dead worker's bucket to it (attempt ≥ 2), then commits `locker`.
   */
  async function killWhileBlocked<R>(opts: {
    start: (taskQueue: string) => Promise<WorkflowHandle>;
    lock: (locker: pg.Client) => Promise<void>;
    lockAfter?: (h: WorkflowHandle) => Promise<boolean>;
    ready: (h: WorkflowHandle) => Promise<boolean>;
    activity: string;
    finish: (h: WorkflowHandle) => Promise<R>;
  }) {
    const taskQueue = uniqueQueue('dvkill');
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'lbw-fault-')), 'lakebase.yaml');
    await writeFile(file, YAML.stringify({ ...raw, temporal: { address: env.address, taskQueue }, worker: { opsPort: 0 } }));
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], { stdio: 'ignore' });
    let released = false;
    try {
      if (!opts.lockAfter) await opts.lock(locker);
      const h = await opts.start(taskQueue);
      if (opts.lockAfter) {
        await until('the moment to lock', () => opts.lockAfter!(h));
        await opts.lock(locker);
      }
      await until(`${opts.activity} activities blocked in flight`, () => opts.ready(h));
      const inFlightAtKill = (await inFlight(h, opts.activity)).length;
      child.kill('SIGKILL');
      const killedAt = Date.now();
      const result = await withWorker(async () => {
        // The dead worker's buckets come back after the heartbeat timeout (5 s), as attempt 2 on this worker.
        await until(`a retry of ${opts.activity}`, async () => (await inFlight(h, opts.activity)).some((a) => a >= 2));
        await locker.query('COMMIT');
        released = true;
        return opts.finish(h);
      }, taskQueue);
      return { result, h, inFlightAtKill, recovery: (Date.now() - killedAt) / 1000 };
    } finally {
      child.kill('SIGKILL');
      if (!released) await locker.query('ROLLBACK').catch(() => undefined);
      await locker.end();
    }
  }

  const keysLeft = async (keys: number[]) => Number((await db.client.query(`SELECT count(*) AS n FROM dst_del WHERE id = ANY($1::int[])`, [keys])).rows[0].n);

  test('delete detection: worker SIGKILLed with deleteBucket activities in flight; a second worker finishes the run', async () => {
    await db.client.query(`CREATE TABLE src_del (id int PRIMARY KEY, payload text, n int); INSERT INTO src_del SELECT * FROM src;
      CREATE TABLE dst_del (id int PRIMARY KEY, payload text, n int)`);
    const first = await withWorker(async (q) => (await start(q, 'pdel')).result());
    assert.equal(first.rowsCopied, ROWS);
    // 1% of the source deleted, 1% changed.
    const deleted = (await db.client.query<{ id: number }>(`DELETE FROM src_del WHERE id % 100 = 7 RETURNING id`)).rows.map((r) => r.id);
    const changed = (await db.client.query(`UPDATE src_del SET payload = payload || '*' WHERE id % 100 = 9`)).rowCount;
    const upper = deleted.filter((id) => id > ROWS / 2);
    const { result: r, h, inFlightAtKill, recovery } = await killWhileBlocked({
      start: (q) => start(q, 'pdel'),
      // Row locks on the target rows of the upper half's deleted keys: those buckets stop at their DELETE.
      lock: async (locker) => {
        await locker.query('BEGIN');
        await locker.query(`SELECT id FROM dst_del WHERE id = ANY($1::int[]) FOR UPDATE`, [upper]);
      },
      ready: async (h) => {
        const p = await h.query<SyncProgress>('progress').catch(() => undefined);
        return (p?.deletes?.done ?? 0) > 0 && (await blockedOn('dst_del')) > 0 && (await inFlight(h, 'deleteBucket')).length > 0;
      },
      activity: 'deleteBucket',
      finish: (h) => (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result(),
    });
    const retried = (await attemptsOf(h, 'deleteBucket')).filter((a) => a.attempt >= 2).length;
    const left = await keysLeft(deleted);
    const merged = r.rowsWritten - (r.deletes?.rowsDeleted ?? 0);
    const { lost, dup, equal } = await compare(db.client, 'src_del', 'dst_del', COLS, 'id');
    await record({
      scenario: 'worker killed (SIGKILL) during delete detection',
      injected: `1% of 200,000 source rows deleted, 1% changed; the next sync's deleteBucket activities of the upper key half held at their DELETE by row locks; SIGKILL of the worker then, a second worker started, the locks let go`,
      expected: 'the killed buckets roll back and are redone once each; exactly the deleted keys leave the target; the reported count is the real one',
      observed:
        `completed by the second worker; ${r.deletes?.buckets} buckets, ${inFlightAtKill} in flight at the kill, ${retried} redone (attempt ≥ 2); ` +
        `${r.deletes?.rowsDeleted} rows reported deleted of ${deleted.length} deleted in the source, ${left} left; the chunks re-read ${r.rowsCopied} rows and wrote ${merged} (${changed} changed); ` +
        `the run's verify: ${r.verify?.report?.ok ? 'ok' : 'FAILED'}; checksum ${equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: lost,
      rowsDuplicated: dup,
      recoverySeconds: recovery,
    });
    assert.ok(inFlightAtKill > 0 && retried > 0, 'the kill landed while deleteBucket activities ran, and they were redone');
    assert.equal(r.deletes?.rowsDeleted, deleted.length, 'the run reports the rows it really deleted');
    assert.equal(r.deletes?.done, r.deletes?.buckets);
    assert.equal(left, 0, 'every deleted source key is gone from the target');
    assert.equal(merged, changed, 'the chunks wrote the changed rows and nothing else');
    assert.equal(r.verify?.report?.ok, true);
    assert.deepEqual([lost, dup, equal], [0, 0, true]);
  });

  test('compare-then-copy re-sync: worker SIGKILLed with resyncBucket activities in flight; a second worker finishes exactly', async () => {
    await db.client.query(`CREATE TABLE src_resync (id int PRIMARY KEY, payload text, n int); INSERT INTO src_resync SELECT * FROM src;
      CREATE TABLE dst_resync (id int PRIMARY KEY, payload text, n int)`);
    const first = await withWorker(async (q) => (await start(q, 'presync')).result());
    assert.equal(first.rowsCopied, ROWS);
    // 1% of the source deleted, 1% changed, 0.5% inserted past the end: the next run compares first.
    const deleted = (await db.client.query<{ id: number }>(`DELETE FROM src_resync WHERE id % 100 = 7 RETURNING id`)).rows.map((r) => r.id);
    const changed = (await db.client.query<{ id: number }>(`UPDATE src_resync SET payload = payload || '*' WHERE id % 100 = 9 RETURNING id`)).rows.map((r) => r.id);
    const inserted = (await db.client.query(`INSERT INTO src_resync SELECT g, md5(g::text), g FROM generate_series(${ROWS + 1}, ${ROWS + 1000}) g`)).rowCount ?? 0;
    const upper = changed.filter((id) => id > ROWS / 2);
    const { result: r, h, inFlightAtKill, recovery } = await killWhileBlocked({
      start: (q) => start(q, 'presync'),
      // Row locks on the target rows of the upper half's changed keys: those buckets stop at their merge.
      lock: async (locker) => {
        await locker.query('BEGIN');
        await locker.query(`SELECT id FROM dst_resync WHERE id = ANY($1::int[]) FOR UPDATE`, [upper]);
      },
      ready: async (h) => {
        const p = await h.query<SyncProgress>('progress').catch(() => undefined);
        return (p?.resync?.done ?? 0) > 0 && (await blockedOn('dst_resync')) > 0 && (await inFlight(h, 'resyncBucket')).length > 0;
      },
      activity: 'resyncBucket',
      finish: (h) => (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result(),
    });
    const retried = (await attemptsOf(h, 'resyncBucket')).filter((a) => a.attempt >= 2).length;
    const chunks = (await attemptsOf(h, 'syncChunk')).length;
    const rs = r.resync!;
    const { lost, dup, equal } = await compare(db.client, 'src_resync', 'dst_resync', COLS, 'id');
    await record({
      scenario: 'worker killed (SIGKILL) during a compare-then-copy re-sync',
      injected: `1% of 200,000 source rows deleted, 1% changed, 1,000 inserted; the next sync (upsert without cursor, so it compares first) has the resyncBucket activities of the upper key half held at their merge by row locks; SIGKILL of the worker then, a second worker started, the locks let go`,
      expected: 'the killed buckets roll back and are compared and written again, once each; exactly the changed, inserted and deleted rows are written; no chunk re-reads the table',
      observed:
        `completed by the second worker (${rs.method}: ${rs.reason}); ${rs.buckets} buckets, ${inFlightAtKill} in flight at the kill, ${retried} redone (attempt ≥ 2); ` +
        `${rs.rowsWritten} rows written (${changed.length} changed + ${inserted} inserted), ${rs.rowsDeleted} deleted (${deleted.length} in the source), ${rs.rowsCopied} copied, ${chunks} chunks; checksum ${equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: lost,
      rowsDuplicated: dup,
      recoverySeconds: recovery,
    });
    assert.equal(rs.method, 'compare', rs.reason);
    assert.ok(inFlightAtKill > 0 && retried > 0, 'the kill landed while resyncBucket activities ran, and they were redone');
    assert.equal(rs.done, rs.buckets);
    assert.equal(rs.rowsWritten, changed.length + inserted, 'written: the changed and inserted rows, each once');
    assert.equal(rs.rowsDeleted, deleted.length, 'deleted: exactly the keys gone from the source');
    assert.equal(chunks, 0, 'no chunk re-read the table');
    assert.deepEqual([lost, dup, equal], [0, 0, true]);
  });

  test('compare-then-copy re-sync of a text key between servers that collate differently: worker SIGKILLed mid-run; 0 lost', async () => {
    // Keys whose order differs between the two: 'B…' < 'a…' in C.UTF-8, 'a…' < 'B…' in ICU en-US (and '_', 'é', 'ß' elsewhere again).
    const key = (g: string) => `(ARRAY['a','B','é','Z','_','ß','b','A'])[1 + ${g} % 8] || lpad(${g}::text, 7, '0')`;
    await icuDb.client.query(`CREATE TABLE src_tresync (id text PRIMARY KEY, payload text, n int); INSERT INTO src_tresync SELECT ${key('g')}, md5(g::text), g FROM generate_series(1, ${ROWS}) g`);
    await db.client.query(`CREATE TABLE dst_tresync (id text PRIMARY KEY, payload text, n int)`);
    const first = await withWorker(async (q) => (await start(q, 'ptresync')).result());
    assert.equal(first.rowsCopied, ROWS);
    const deleted = (await icuDb.client.query<{ id: string }>(`DELETE FROM src_tresync WHERE n % 100 = 7 RETURNING id`)).rows.map((r) => r.id);
    const changed = (await icuDb.client.query<{ id: string }>(`UPDATE src_tresync SET payload = payload || '*' WHERE n % 100 = 9 RETURNING id`)).rows.map((r) => r.id);
    const inserted = (await icuDb.client.query(`INSERT INTO src_tresync SELECT ${key('g')} || 'x', md5(g::text), g FROM generate_series(${ROWS + 1}, ${ROWS + 1000}) g`)).rowCount ?? 0;
    // Buckets are key ranges in byte order: hold those at and above 'a' at their merge, so the ones below finish first.
    const upper = changed.filter((id) => Buffer.compare(Buffer.from(id), Buffer.from('a')) >= 0);
    const { result: r, h, inFlightAtKill, recovery } = await killWhileBlocked({
      start: (q) => start(q, 'ptresync'),
      lock: async (locker) => {
        await locker.query('BEGIN');
        await locker.query(`SELECT id FROM dst_tresync WHERE id = ANY($1::text[]) FOR UPDATE`, [upper]);
      },
      ready: async (h) => {
        const p = await h.query<SyncProgress>('progress').catch(() => undefined);
        return (p?.resync?.done ?? 0) > 0 && (await blockedOn('dst_tresync')) > 0 && (await inFlight(h, 'resyncBucket')).length > 0;
      },
      activity: 'resyncBucket',
      finish: (h) => (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result(),
    });
    const retried = (await attemptsOf(h, 'resyncBucket')).filter((a) => a.attempt >= 2).length;
    const chunks = (await attemptsOf(h, 'syncChunk')).length;
    const rs = r.resync!;
    const { lost, dup, equal } = await compareAcross(icuDb.client, 'src_tresync', db.client, 'dst_tresync', COLS, 'id');
    await record({
      scenario: 'worker killed (SIGKILL) during a compare-then-copy re-sync of a text key, source and target collating differently',
      injected: `a text key ('a0000002', 'B0000001', 'é…', '_…') in a source database on ICU en-US, the target on libc C.UTF-8; 1% of 200,000 source rows deleted, 1% changed, 1,000 inserted; the resyncBucket activities of the keys from 'a' on (byte order) held at their merge by row locks; SIGKILL of the worker then, a second worker started, the locks let go`,
      expected: 'both sides bucket the key in byte order (COLLATE "C"), so no row is copied or deleted by mistake; the killed buckets roll back and are redone once each; exactly the changed, inserted and deleted rows are written',
      observed:
        `completed by the second worker (${rs.method}: ${rs.reason}); ${rs.buckets} buckets, ${inFlightAtKill} in flight at the kill, ${retried} redone (attempt ≥ 2); ` +
        `${rs.rowsWritten} rows written (${changed.length} changed + ${inserted} inserted), ${rs.rowsDeleted} deleted (${deleted.length} in the source), ${rs.rowsCopied} copied, ${chunks} chunks; checksum ${equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: lost,
      rowsDuplicated: dup,
      recoverySeconds: recovery,
    });
    assert.equal(rs.method, 'compare', rs.reason);
    assert.ok(inFlightAtKill > 0 && retried > 0, 'the kill landed while resyncBucket activities ran, and they were redone');
    assert.equal(rs.done, rs.buckets);
    assert.equal(rs.rowsWritten, changed.length + inserted, 'written: the changed and inserted rows, each once');
    assert.equal(rs.rowsDeleted, deleted.length, 'deleted: exactly the keys gone from the source');
    assert.equal(chunks, 0, 'no chunk re-read the table');
    assert.deepEqual([lost, dup, equal], [0, 0, true]);
  });

  test('verify: worker SIGKILLed with verifyBucket activities in flight, in a sync and on its own; both finish with the right result', async () => {
    // Another 1% deleted and changed; the sync deletes them, then its verify is where the worker dies.
    const deleted = (await db.client.query<{ id: number }>(`DELETE FROM src_del WHERE id % 100 = 11 RETURNING id`)).rows.map((r) => r.id);
    await db.client.query(`UPDATE src_del SET payload = payload || '+' WHERE id % 100 = 13`);
    const sourceRows = ROWS - 2 * (ROWS / 100);
    // An ACCESS EXCLUSIVE lock on the target once a few verify buckets are done: the next ones stop at their first read of it.
    const lockTable = async (locker: pg.Client) => {
      await locker.query('BEGIN');
      await locker.query('LOCK TABLE dst_del IN ACCESS EXCLUSIVE MODE');
    };
    const verifyBlocked = async (h: WorkflowHandle) => (await blockedOn('dst_del')) > 0 && (await inFlight(h, 'verifyBucket')).length > 0;
    const inSync = await killWhileBlocked({
      start: (q) => start(q, 'pdel'),
      lockAfter: async (h) => ((await h.query<SyncProgress>('progress').catch(() => undefined))?.verify?.bucketsDone ?? 0) >= 2,
      lock: lockTable,
      ready: verifyBlocked,
      activity: 'verifyBucket',
      finish: (h) => (h as WorkflowHandle<(i: DataSyncInput) => Promise<SyncProgress>>).result(),
    });
    const r = inSync.result;
    const report = r.verify?.report;
    const retried = (await attemptsOf(inSync.h, 'verifyBucket')).filter((a) => a.attempt >= 2).length;
    const c = await compare(db.client, 'src_del', 'dst_del', COLS, 'id');
    await record({
      scenario: 'worker killed (SIGKILL) during a sync\'s verify',
      injected: 'another 1% deleted and 1% changed; after 2 verify buckets of the next sync, an ACCESS EXCLUSIVE lock on the target holds the next ones at their first read; SIGKILL of the worker then, a second worker started, the lock let go',
      expected: 'the killed buckets are compared again on the second worker; verify passes with every source row counted once',
      observed:
        `completed; verify (${report?.mode}) ${report?.ok ? 'ok' : 'FAILED'}: ${report?.buckets} buckets, ${inSync.inFlightAtKill} in flight at the kill, ${retried} redone; ` +
        `${report?.sourceRows} source / ${report?.targetRows} target rows compared (source has ${sourceRows}); ${r.deletes?.rowsDeleted} of ${deleted.length} deleted keys removed; checksum ${c.equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: c.lost,
      rowsDuplicated: c.dup,
      recoverySeconds: inSync.recovery,
    });
    assert.ok(inSync.inFlightAtKill > 0 && retried > 0, 'the kill landed while verifyBucket activities ran, and they were redone');
    assert.equal(report?.ok, true);
    assert.deepEqual([report?.sourceRows, report?.targetRows, report?.mismatches], [sourceRows, sourceRows, 0]);
    assert.equal(r.deletes?.rowsDeleted, deleted.length);
    assert.deepEqual([c.lost, c.dup, c.equal], [0, 0, true]);

    // On its own (`lakebase-worker verify`), against a target edited behind the worker's back: the
    // verify that survives the kill must still name exactly the edited rows.
    await db.client.query(`DELETE FROM dst_del WHERE id = 123456; UPDATE dst_del SET n = -1 WHERE id = 45678`);
    const alone = await killWhileBlocked({
      start: (q) => env.client.workflow.start('verifySync', { taskQueue: q, workflowId: `verify:pdel:${Date.now()}`, args: [{ pipeline: 'pdel', heartbeatTimeout: '5 seconds' }] }),
      lockAfter: async (h) => ((await h.query<VerifyProgress>('verifyProgress').catch(() => undefined))?.bucketsDone ?? 0) >= 2,
      lock: lockTable,
      ready: verifyBlocked,
      activity: 'verifyBucket',
      finish: (h) => h.result().then(() => assert.fail('verify passed a target edited behind its back'), (e: unknown) => e),
    });
    const err = alone.result;
    assert.ok(err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure, String(err));
    const failed = err.cause.details?.[0] as VerifyReport;
    const named = failed.differences.map((d) => `${d.kind}:${d.key[0]}`);
    const aloneRetried = (await attemptsOf(alone.h, 'verifyBucket')).filter((a) => a.attempt >= 2).length;
    await record({
      scenario: 'worker killed (SIGKILL) during `verify` on its own',
      injected: 'one target row deleted and one changed behind the worker; the verifySync workflow\'s buckets held by a lock on the target after 2 were done; SIGKILL of the worker, a second worker started, the lock let go',
      expected: 'LakebaseVerifyFailed naming exactly the two edited rows, as without the kill',
      observed: `failed as ${err.cause.type}: ${failed.mismatches} difference(s), ${named.join(', ')}; ${failed.buckets} buckets, ${alone.inFlightAtKill} in flight at the kill, ${aloneRetried} redone`,
      rowsLost: 0,
      rowsDuplicated: 0,
      recoverySeconds: alone.recovery,
    });
    assert.equal(err.cause.type, 'LakebaseVerifyFailed');
    assert.ok(alone.inFlightAtKill > 0 && aloneRetried > 0, 'the kill landed while verifyBucket activities ran, and they were redone');
    assert.deepEqual([failed.mismatches, named], [2, ['differs:45678', 'missing:123456']]);
  });

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

// CDC (issue 21): one stream of logical replication under a steady load of updates, inserts and
// deletes, through four faults in turn. After each, the load stops and the target must catch up
// to the source: no row lost, none duplicated, checksums equal. Its own servers, so each can be
// restarted: a source with wal_level=logical, a target, and a Temporal dev server on a database file.
describe('cdc fault injection: a stream under load keeps every change', () => {
  const CDC_COLS = ['id', 'qty', 'note'];
  let base: string;
  let sourceCluster: EmbeddedCluster;
  let targetCluster: EmbeddedCluster;
  let temporalServer: { port: number; dbFile: string; child?: ChildProcess };
  let client: Client;
  let source: pg.Pool;
  let target: pg.Pool;
  let cdcRaw: Record<string, unknown>;
  let cdcConfig: Config;
  let worker: ChildProcess | undefined;
  let file: string;
  let taskQueue: string;
  let slot: string;

  async function startTemporalServer(first: boolean): Promise<void> {
    const cli = await findTemporalCli();
    assert.ok(cli, 'no Temporal CLI');
    const attrs = first ? LAKEBASE_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=${k.type === 'INT' ? 'Int' : 'Keyword'}`]) : [];
    const child = spawn(cli, ['server', 'start-dev', '--headless', '--port', String(temporalServer.port), '--http-port', String(await freePort()), '--metrics-port', String(await freePort()), '--db-filename', temporalServer.dbFile, '--log-level', 'error', ...attrs], { stdio: 'ignore' });
    temporalServer.child = child;
    const deadline = Date.now() + 60_000;
    for (;;) {
      try {
        const c = await Connection.connect({ address: `127.0.0.1:${temporalServer.port}`, connectTimeout: 1_000 });
        await c.workflowService.getSystemInfo({});
        await c.close();
        return;
      } catch (err) {
        if (Date.now() > deadline || child.exitCode !== null) throw err;
        await sleep(200);
      }
    }
  }

  async function stopTemporalServer(): Promise<void> {
    const child = temporalServer.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  }

  function startWorker(): ChildProcess {
    // FAULT_WORKER_LOG=<file> keeps the workers' logs (at LOG_LEVEL, default warn).
    const logTo = process.env.FAULT_WORKER_LOG;
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), 'worker', '--config', file], { stdio: logTo ? ['ignore', 'pipe', 'pipe'] : 'ignore', env: { ...process.env, LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' } });
    if (logTo) {
      const out = createWriteStream(logTo, { flags: 'a' });
      child.stdout!.pipe(out);
      child.stderr!.pipe(out);
    }
    worker = child;
    return child;
  }

  async function killWorker(): Promise<void> {
    const child = worker;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  before(async () => {
    base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdc-faults-'));
    sourceCluster = new EmbeddedCluster({ dataDir: path.join(base, 'source'), port: await freePort(), settings: { wal_level: 'logical' } });
    targetCluster = new EmbeddedCluster({ dataDir: path.join(base, 'target'), port: await freePort() });
    temporalServer = { port: await freePort(), dbFile: path.join(base, 'temporal.db') };
    await Promise.all([sourceCluster.init(), targetCluster.init()]);
    await Promise.all([sourceCluster.start(), targetCluster.start(), startTemporalServer(true)]);
    client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${temporalServer.port}` }) });
    // Pools: they reconnect after a restart (a failed query is retried by the caller).
    source = new pg.Pool({ connectionString: sourceCluster.url, max: 2 });
    target = new pg.Pool({ connectionString: targetCluster.url, max: 2 });
    source.on('error', () => undefined);
    target.on('error', () => undefined);
    await source.query(`CREATE TABLE orders (id int PRIMARY KEY, qty int NOT NULL, note text);
      INSERT INTO orders SELECT g, g % 10, md5(g::text) FROM generate_series(1, 50000) g;
      CREATE TABLE items (id int PRIMARY KEY, qty int NOT NULL, note text);
      INSERT INTO items SELECT g, g % 7, repeat(md5(g::text), 4) FROM generate_series(1, 300000) g;
      CREATE TABLE ledger (id int PRIMARY KEY, qty int NOT NULL, note text);
      INSERT INTO ledger SELECT g, g % 5, md5(g::text) FROM generate_series(1, 20000) g;
      CREATE TABLE wal_burn (id serial, pad text);`);
    const environment = (port: number) => ({ host: '127.0.0.1', port, database: 'postgres', user: 'postgres', ssl: { mode: 'disable' }, idleTimeoutMs: 1000 });
    taskQueue = uniqueQueue('cdcfaults');
    // A table of the source streamed into the same-named table of the target (a slot of its own when named).
    const cdcPipeline = (table: string, o: { batchRows?: number; slot?: string } = {}) => ({
      source: { profile: 'local', environment: 'source', table },
      target: { profile: 'local', environment: 'target', table },
      mode: 'cdc',
      key: ['id'],
      ...(o.batchRows && { batchRows: o.batchRows }),
      cdc: { ...(o.slot && { slot: o.slot }), batchRows: 2000, batchMs: 200 },
    });
    cdcRaw = {
      temporal: { address: `127.0.0.1:${temporalServer.port}`, taskQueue },
      worker: { opsPort: 0 },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { source: environment(sourceCluster.options.port), target: environment(targetCluster.options.port) } } },
      pipelines: {
        'orders-cdc': cdcPipeline('orders', { batchRows: 10_000 }),
        // Its own slot, invalidated in the max_slot_wal_keep_size scenario (the others' slot must survive it).
        'ledger-cdc': cdcPipeline('ledger', { slot: 'lbw_ledger' }),
        // Joins the running stream of orders-cdc (the same slot) in the snapshot scenario.
        'items-cdc': cdcPipeline('items', { batchRows: 20_000 }),
      },
    };
    cdcConfig = parseConfig(cdcRaw, {});
    file = path.join(base, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(cdcRaw));
    startWorker();
    ({ slot } = await startCdc(client, { config: cdcConfig, pipeline: 'orders-cdc', taskQueue, stream: { runSeconds: 5, heartbeatTimeout: '3 seconds' } }));
    await until('the stream to reach streaming', async () => {
      const { progress } = await cdcProgress(client, cdcConfig, 'orders-cdc').catch(() => ({ progress: null }));
      return progress?.pipelines['orders-cdc'] === 'streaming' && progress.segments >= 1;
    });
  });

  after(async () => {
    // A stop that never returns is a finding (seen: a reader that ignored its stop once the source
    // was quiet); bounded, it fails the suite in 2 minutes instead of its 15-minute timeout.
    const hung: string[] = [];
    const bounded = async (p: Promise<unknown>, what: string) => {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([p.catch(() => undefined), new Promise<void>((r) => (timer = setTimeout(() => (hung.push(what), r()), 120_000)))]);
      clearTimeout(timer);
    };
    if (client && cdcConfig) await bounded(stopCdc(client, { config: cdcConfig, pipeline: 'items-cdc', dropSlot: false }), 'cdc stop items-cdc');
    if (client && cdcConfig) await bounded(stopCdc(client, { config: cdcConfig, pipeline: 'orders-cdc', dropSlot: true }), 'cdc stop orders-cdc');
    await killWorker();
    await source?.end();
    await target?.end();
    await client?.connection.close().catch(() => undefined);
    await stopTemporalServer();
    await sourceCluster?.stop();
    await targetCluster?.stop();
    if (base) await rm(base, { recursive: true, force: true });
    assert.deepEqual(hung, [], 'every cdc stop returned within 2 minutes');
  });

  async function until(what: string, ready: () => Promise<boolean>, timeoutMs = 180_000) {
    const deadline = Date.now() + timeoutMs;
    while (!(await ready().catch(() => false))) {
      if (Date.now() > deadline) throw new Error(`waited ${timeoutMs / 1000} s for ${what}`);
      await sleep(100);
    }
  }

  /** Updates, inserts and deletes on the source until stopped; errors while a server is down are skipped. */
  function load() {
    let on = true;
    let changes = 0;
    const done = (async () => {
      for (let i = 0; on; i++) {
        try {
          const next = Number((await source.query('SELECT coalesce(max(id), 0) + 1 AS n FROM orders')).rows[0].n);
          await source.query(`UPDATE orders SET qty = qty + 1 WHERE id % 97 = $1`, [i % 97]);
          await source.query(`INSERT INTO orders SELECT g, 1, 'new' FROM generate_series($1::int, $1::int + 49) g`, [next]);
          await source.query(`DELETE FROM orders WHERE id IN (SELECT id FROM orders WHERE id % 89 = $1 LIMIT 5)`, [i % 89]);
          changes += 1;
        } catch {
          await sleep(200);
        }
        await sleep(20);
      }
    })();
    return {
      async stop() {
        on = false;
        await done;
        return changes;
      },
    };
  }

  /** The slot's stream workflow as Temporal has it: running (and what it retries), or how it ended. */
  async function streamState(): Promise<string> {
    const handle = client.workflow.getHandle(`cdc:${slot}`);
    const d = await handle.describe().catch(() => null);
    if (!d) return 'not found';
    // FAULT_HISTORY_DIR=<dir> keeps the stream's history (a replay test can be made of it).
    if (process.env.FAULT_HISTORY_DIR) {
      const history = await handle.fetchHistory();
      await writeFile(path.join(process.env.FAULT_HISTORY_DIR, `cdc-${slot}-${Date.now()}.json`), JSON.stringify(temporal.api.history.v1.History.toObject(temporal.api.history.v1.History.fromObject(history), { longs: String, enums: String, bytes: String })));
    }
    if (d.status.name !== 'RUNNING') return `${d.status.name}: ${await handle.result().then(() => 'completed', (err: unknown) => failureText(err))}`;
    const last = await lastActivityFailure(handle).catch(() => null);
    return `RUNNING${last ? `; ${formatActivityFailure(last)}` : ''}`;
  }

  /** Lost and duplicated rows by key across the two servers, and checksum equality. */
  async function compareAcross(table = 'orders') {
    const sums = await Promise.all([source, target].map(async (p) => {
      const c = await p.connect();
      try {
        return await relationChecksum(c, table, CDC_COLS, ['id']);
      } finally {
        c.release();
      }
    }));
    // Keys after the checksums: while the target still catches up, rows read earlier would be missing by now.
    const keys = async (p: pg.Pool) => (await p.query<{ id: number; c: number }>(`SELECT id, count(*)::int AS c FROM ${table} GROUP BY id`)).rows;
    const [s, t] = await Promise.all([keys(source), keys(target)]);
    const inTarget = new Map(t.map((r) => [r.id, r.c]));
    const lost = s.filter((r) => !inTarget.has(r.id)).length;
    const dup = t.reduce((n, r) => n + r.c - 1, 0);
    return { lost, dup, equal: sums[0]!.rows === sums[1]!.rows && sums[0]!.md5 === sums[1]!.md5, rows: sums[0]!.rows };
  }

  async function cdcScenario(name: string, injected: string, expected: string, inject: () => Promise<void>) {
    const l = load();
    await sleep(2_000); // the stream applies the load before the fault
    const at = Date.now();
    await inject();
    await sleep(2_000); // and the load goes on after it
    const changes = await l.stop();
    // Caught up: the target equals the source (polled; a stream that lost a change never gets there).
    let last = { lost: -1, dup: -1, equal: false, rows: 0 };
    await until('the target to catch up', async () => (last = await compareAcross()).equal, 120_000).catch(() => undefined);
    const recovery = (Date.now() - at) / 1000;
    const { progress } = await cdcProgress(client, cdcConfig, 'orders-cdc').catch(() => ({ progress: null }));
    await record({
      scenario: `cdc: ${name}`,
      injected,
      expected,
      observed: `${last.equal ? 'caught up' : 'did NOT catch up within 2 min'}; ${changes} load rounds (updates, 50 inserts, 5 deletes each); ${last.rows} rows; the stream last reported applied LSN ${progress?.appliedLsn ?? '?'}, ${progress?.rowsApplied ?? '?'} rows applied in ${progress?.batches ?? '?'} batches (target keyed by id: a replayed change overwrites, duplicates would show only as a checksum difference); checksum ${last.equal ? 'equal' : 'DIFFERENT'}`,
      rowsLost: last.lost,
      rowsDuplicated: last.dup,
      recoverySeconds: last.equal ? recovery : null,
    });
    assert.deepEqual([last.lost, last.dup, last.equal], [0, 0, true]);
    assert.ok(changes > 0, 'the load ran');
    assert.equal(progress?.slot, slot);
  }

  test('cdc: worker SIGKILLed mid-stream; a second worker resumes from the applied LSN', async () => {
    await cdcScenario('worker killed (SIGKILL) mid-stream', 'SIGKILL of the worker process reading the slot, under load; a second worker started', 'the stream resumes on the second worker after the heartbeat timeout (3 s) from the slot\'s confirmed position; changes replayed since the last applied batch converge by key', async () => {
      await killWorker();
      startWorker();
    });
  });

  test('cdc: target PostgreSQL restarted mid-stream', async () => {
    await cdcScenario('target PostgreSQL restarted mid-stream', 'the target server stopped for 2 s under load and started again', 'the batch in flight rolls back with the server; the stream activity fails, is retried, and re-reads from the last applied LSN', async () => {
      await targetCluster.stop();
      await sleep(2_000);
      await targetCluster.start();
    });
  });

  test('cdc: source PostgreSQL restarted mid-stream (the slot survives)', async () => {
    await cdcScenario('source PostgreSQL restarted mid-stream', 'the source server (with the replication slot) stopped for 2 s under load and started again', 'the replication connection drops; the stream is retried and resumes from the slot, which survives the restart', async () => {
      await sourceCluster.stop();
      await sleep(2_000);
      await sourceCluster.start();
    });
    const { rows } = await source.query(`SELECT count(*)::int AS n FROM pg_replication_slots WHERE slot_name = $1`, [slot]);
    assert.equal(rows[0].n, 1, 'the slot survived the restart');
  });

  test('cdc: Temporal server restarted mid-stream', async () => {
    await cdcScenario('Temporal server restarted mid-stream', 'the Temporal dev server (on a database file) stopped for 2 s under load and started again; the worker keeps running', 'the worker reconnects; the stream workflow and its activity carry on (or the activity is retried) from the last applied LSN', async () => {
      await stopTemporalServer();
      await sleep(2_000);
      await startTemporalServer(false);
    });
  });

  /** The CLI as a user runs it, on the suite's config file. */
  function cli(...args: string[]): Promise<{ code: number | null; out: string }> {
    const child = spawn(process.execPath, [path.join(__dirname, '..', '..', 'bin', 'lakebase-worker.js'), ...args, '--config', file], { env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1' } });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (out += d));
    return new Promise((resolve) => child.on('exit', (code) => resolve({ code, out: `$ lakebase-worker ${args.join(' ')}\n${out}` })));
  }

  const walStatus = async (name: string) => (await source.query<{ w: string | null }>(`SELECT wal_status AS w FROM pg_replication_slots WHERE slot_name = $1`, [name])).rows[0]?.w ?? null;

  // Last: it lowers max_slot_wal_keep_size on the source for its duration.
  test('cdc: a stopped pipeline\'s slot invalidated by max_slot_wal_keep_size under load; the streaming slot survives; the way out re-copies and converges', async () => {
    await source.query(`ALTER SYSTEM SET max_slot_wal_keep_size = '48MB'`);
    await source.query(`SELECT pg_reload_conf()`);
    const l = load();
    try {
      const started = await cli('cdc', 'start', '--pipeline', 'ledger-cdc');
      assert.equal(started.code, 0, started.out);
      await until('ledger to converge', async () => (await compareAcross('ledger')).equal, 120_000);
      const stopped = await cli('cdc', 'stop', '--pipeline', 'ledger-cdc');
      assert.equal(stopped.code, 0, stopped.out);
      // Changes the stopped pipeline will never receive from its slot, then WAL past the limit in
      // small transactions (one huge one would hold back every slot's restart_lsn).
      await source.query(`UPDATE ledger SET qty = qty + 100 WHERE id % 10 = 0; DELETE FROM ledger WHERE id % 17 = 0; INSERT INTO ledger SELECT g, 0, 'after' FROM generate_series(30001, 30500) g`);
      const at = Date.now();
      // Only the stopped slot may fall behind: before each CHECKPOINT the streaming slot's restart_lsn
      // (which trails its confirmed position) is let within 16 MB of the WAL's end.
      const streamingBehind = async () =>
        Number((await source.query<{ b: string }>(`SELECT coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::text AS b FROM pg_replication_slots WHERE slot_name = $1`, [slot])).rows[0]?.b ?? 0);
      await until('the stopped slot to be invalidated', async () => {
        for (let i = 0; i < 20; i++) await source.query(`INSERT INTO wal_burn (pad) SELECT repeat(md5(random()::text), 32) FROM generate_series(1, 1000)`);
        await until('the streaming slot to keep up', async () => (await streamingBehind()) < 16 * 1024 * 1024, 60_000).catch(() => undefined);
        await source.query('CHECKPOINT');
        return (await walStatus('lbw_ledger')) === 'lost';
      }, 300_000);
      const ordersSlot = await walStatus(slot);
      const status = await cli('cdc', 'status', '--pipeline', 'ledger-cdc');
      assert.match(status.out, /invalidated by the source/, status.out);
      const refused = await cli('cdc', 'start', '--pipeline', 'ledger-cdc');
      assert.notEqual(refused.code, 0, refused.out);
      assert.match(refused.out, /invalidated.*cdc stop --drop-slot/s, refused.out);
      const dropped = await cli('cdc', 'stop', '--pipeline', 'ledger-cdc', '--drop-slot');
      assert.equal(dropped.code, 0, dropped.out);
      const again = await cli('cdc', 'start', '--pipeline', 'ledger-cdc');
      assert.equal(again.code, 0, again.out);
      await source.query(`UPDATE ledger SET note = 'after the re-copy' WHERE id % 13 = 0`);
      let ledger = { lost: -1, dup: -1, equal: false, rows: 0 };
      await until('ledger to converge after the re-copy', async () => (ledger = await compareAcross('ledger')).equal, 180_000).catch(() => undefined);
      const changes = await l.stop();
      let orders = { lost: -1, dup: -1, equal: false, rows: 0 };
      await until('orders to catch up', async () => (orders = await compareAcross('orders')).equal, 120_000).catch(() => undefined);
      await record({
        scenario: 'cdc: a stopped pipeline\'s slot invalidated by max_slot_wal_keep_size',
        injected: 'max_slot_wal_keep_size = 48MB on the source; a pipeline on its own slot stopped (slot kept), its table changed, then ~20 MB of WAL per round in 1 MB transactions and CHECKPOINT until the slot is lost; the other slot streams under load throughout',
        expected: 'status says the slot was invalidated with the fix; cdc start refuses it with the fix (no retry loop); cdc stop --drop-slot then cdc start re-copies into the populated target (pruning what the source deleted) and converges; the streaming slot is not lost',
        observed: `status: ${/invalidated by the source/.test(status.out) ? 'invalidated, with the fix' : '?'}; cdc start exit ${refused.code}; after drop and start: ledger ${ledger.rows} rows, checksum ${ledger.equal ? 'equal' : 'DIFFERENT'}; orders slot wal_status ${ordersSlot}, orders ${orders.rows} rows, checksum ${orders.equal ? 'equal' : 'DIFFERENT'} (${changes} load rounds)`,
        rowsLost: ledger.lost + orders.lost,
        rowsDuplicated: ledger.dup + orders.dup,
        recoverySeconds: ledger.equal ? (Date.now() - at) / 1000 : null,
      });
      assert.notEqual(ordersSlot, 'lost', 'the streaming slot was invalidated too');
      assert.deepEqual([ledger.lost, ledger.dup, ledger.equal, orders.lost, orders.dup, orders.equal], [0, 0, true, 0, 0, true]);
    } finally {
      await l.stop();
      await source.query(`ALTER SYSTEM RESET max_slot_wal_keep_size`).catch(() => undefined);
      await source.query(`SELECT pg_reload_conf()`).catch(() => undefined);
      await cli('cdc', 'stop', '--pipeline', 'ledger-cdc', '--drop-slot').catch(() => undefined);
    }
  });

  // Last, and todo: after a worker kill, a join signal that lands in a timed-out workflow task can
  // replay in another order than it ran (nondeterminism; the stream then stops for every pipeline
  // of its slot). Seen in this suite; docs/cdc.md "Known issues". It stays here to catch the fix.
  // Required since patch cdc-join-signal-order (workflows/cdcStream.ts): only histories recorded
  // before it keep the replay todo (test/replayKnownIssues.test.ts).
  test('cdc: worker SIGKILLed while a joining pipeline copies its table and another streams; both converge', async () => {
    const l = load();
    // The joining table changes all along too: before its copy reads a row, after, and during.
    let onItems = true;
    let itemRounds = 0;
    const items = (async () => {
      for (let i = 0; onItems; i++) {
        try {
          await source.query(`UPDATE items SET qty = qty + 1 WHERE id % 101 = $1`, [i % 101]);
          await source.query(`DELETE FROM items WHERE id = $1`, [300000 - i]);
          await source.query(`INSERT INTO items VALUES ($1, 1, 'joined later')`, [400000 + i]);
          itemRounds++;
        } catch {
          await sleep(200);
        }
        await sleep(20);
      }
    })();
    await sleep(1_000);
    await startCdc(client, { config: cdcConfig, pipeline: 'items-cdc', taskQueue, stream: { runSeconds: 5, heartbeatTimeout: '3 seconds' } });
    let copiedAtKill = 0;
    await until('the joining pipeline to be copying', async () => {
      const { progress } = await cdcProgress(client, cdcConfig, 'items-cdc');
      copiedAtKill = progress?.snapshots['items-cdc']?.rowsCopied ?? 0;
      return progress?.pipelines['items-cdc'] === 'snapshot' && copiedAtKill > 0;
    }, 120_000).catch(() => undefined);
    const at = Date.now();
    await killWorker();
    startWorker();
    await sleep(2_000);
    const changes = await l.stop();
    onItems = false;
    await items;
    let o = { lost: -1, dup: -1, equal: false, rows: 0 };
    let it = { lost: -1, dup: -1, equal: false, rows: 0 };
    await until('both targets to catch up', async () => (o = await compareAcross('orders')).equal && (it = await compareAcross('items')).equal, 180_000).catch(() => undefined);
    const recovery = (Date.now() - at) / 1000;
    const { progress } = await cdcProgress(client, cdcConfig, 'items-cdc').catch(() => ({ progress: null }));
    const stream = o.equal && it.equal ? '' : `; the stream: ${await streamState()}`;
    await record({
      scenario: 'cdc: worker killed (SIGKILL) during a joining pipeline\'s snapshot while another streams',
      injected: `a second pipeline (300,000 rows) joins the running stream; SIGKILL of the only worker once its copy had ${copiedAtKill.toLocaleString('en')} rows, under load on both tables; a second worker started`,
      expected: 'the copy resumes from its finished chunks on the second worker and the joined pipeline then streams from its start; the streaming pipeline resumes from its applied LSN; the slot is confirmed no further than the copying pipeline\'s start meanwhile; both targets equal their sources',
      observed: `${o.equal && it.equal ? 'both caught up' : 'did NOT catch up within 3 min'}; ${changes} load rounds on orders, ${itemRounds} on items; orders ${o.rows} rows (checksum ${o.equal ? 'equal' : 'DIFFERENT'}), items ${it.rows} rows (checksum ${it.equal ? 'equal' : 'DIFFERENT'}); items-cdc ${progress?.pipelines['items-cdc'] ?? '?'}${stream}`,
      rowsLost: o.lost + it.lost,
      rowsDuplicated: o.dup + it.dup,
      recoverySeconds: o.equal && it.equal ? recovery : null,
    });
    assert.deepEqual([o.lost, o.dup, o.equal, it.lost, it.dup, it.equal], [0, 0, true, 0, 0, true]);
    assert.ok(copiedAtKill > 0, 'the worker was killed while the copy ran');
    assert.equal(progress?.pipelines['items-cdc'], 'streaming');
  });
});
