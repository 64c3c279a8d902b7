// A newcomer's first hour (issue 26, item 5), through the CLI as a user runs it, on a real Temporal
// dev server and the local PostgreSQL: a sync started before any worker says so within seconds (and
// `status` says so instead of timing out a query); the worker names the config it loaded, and a job
// added to the file afterwards fails naming that copy; a run's retried failure reaches the waiting
// command and `status`; schedule errors are ours; verify names the rows it excused and why.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import YAML from 'yaml';
import { cleanUp } from './helpers/cleanup';
import { CLI, runCli, shown } from './helpers/cli';
import { createTestDatabase, type TestDatabase } from './helpers/db';
import { startTemporal, uniqueQueue } from './helpers/temporal';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A CLI process left running (a waiting command, the worker), its output collected as it comes. */
interface Running {
  proc: ChildProcess;
  out: () => string;
  exited: Promise<number>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}): Running {
  const proc = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, LAKEBASE_WORKER_FROM_SOURCE: '1', LAKEBASE_CONFIG: undefined, ...env } });
  let text = '';
  proc.stdout?.on('data', (d: Buffer) => (text += d));
  proc.stderr?.on('data', (d: Buffer) => (text += d));
  const exited = new Promise<number>((r) => proc.once('exit', (code) => r(code ?? 1)));
  return { proc, out: () => text, exited };
}

/** Waits until `re` shows in the output; the time it took. */
async function waitFor(r: Running, re: RegExp, timeoutMs: number, what: string): Promise<number> {
  const t0 = Date.now();
  while (!re.test(r.out())) {
    assert.ok(Date.now() - t0 < timeoutMs, `${what} within ${timeoutMs} ms; printed:\n${r.out()}`);
    assert.equal(r.proc.exitCode, null, `${what}: the process ended early:\n${r.out()}`);
    await sleep(100);
  }
  return Date.now() - t0;
}

async function stop(r: Running | undefined): Promise<void> {
  if (!r || r.proc.exitCode !== null) return;
  r.proc.kill('SIGTERM');
  const timer = setTimeout(() => r.proc.kill('SIGKILL'), 40_000);
  await r.exited;
  clearTimeout(timer);
}

describe('the first hour without surprises (real CLI, real Temporal dev server, local PostgreSQL)', () => {
  let env: TestWorkflowEnvironment;
  let db: TestDatabase;
  let dir: string;
  let file: string;
  let worker: Running | undefined;
  const taskQueue = uniqueQueue('firsthour');
  const cli = (args: string[], timeoutMs = 120_000) => runCli([...args, '--config', file], { env: { LAKEBASE_CONFIG: undefined }, timeoutMs });

  before(async () => {
    [env, db] = await Promise.all([startTemporal(), createTestDatabase('firsthour')]);
    await db.client.query(`CREATE TABLE src (id int PRIMARY KEY, label text); INSERT INTO src SELECT g, 'row ' || g FROM generate_series(1, 500) g;`);
    dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-firsthour-'));
    file = path.join(dir, 'lakebase.yaml');
    const side = (table: string, profile = 'local') => ({ profile, environment: 'test', table });
    await writeFile(
      file,
      YAML.stringify({
        temporal: { address: env.address, taskQueue },
        profiles: {
          local: { auth: { method: 'none' }, environments: { test: db.environment } },
          // A database the server does not have: every login fails with SQLSTATE 3D000, which the server retries.
          down: { auth: { method: 'none' }, environments: { test: { ...db.environment, database: `${db.name}_missing` } } },
        },
        pipelines: {
          orders: { source: side('public.src'), target: side('public.dst'), key: ['id'], mode: 'upsert', deletes: 'ignore', batchRows: 100 },
          unreachable: { source: side('public.src', 'down'), target: side('public.dst_down'), key: ['id'], mode: 'upsert' },
          feed: { source: side('public.src'), target: side('public.dst_feed'), key: ['id'], mode: 'cdc', cdc: { slot: 'lbw_firsthour_feed' } },
        },
        worker: { opsPort: 0 },
      }),
    );
  });

  after(() =>
    cleanUp(
      () => stop(worker),
      () => env?.teardown(),
      () => db?.close(),
      () => dir && rm(dir, { recursive: true, force: true }),
    ),
  );

  let syncId = '';

  test('no worker: sync start --wait says so within seconds, with the command that starts one; status says so instead of a query timeout', { timeout: 240_000 }, async () => {
    const waiting = start(['sync', 'start', '-p', 'orders', '--wait', '--config', file]);
    try {
      await waitFor(waiting, /^started (\S+)/m, 30_000, 'the start');
      syncId = /^started (\S+)/m.exec(waiting.out())![1]!;
      assert.match(waiting.out(), /Temporal UI: http:\/\/127\.0\.0\.1:\d+\/namespaces\/default\/workflows\/sync%3Aorders%3A/, 'the run\'s UI link after "started"');
      const startedAt = Date.now();
      await waitFor(waiting, new RegExp(`no worker is polling task queue ${taskQueue}`), 15_000, 'the no-worker notice');
      const tookMs = Date.now() - startedAt;
      console.log(`no-worker notice ${tookMs} ms after "started"`);
      assert.ok(waiting.out().includes(`start one with: lakebase-worker worker --config ${file}`), waiting.out());

      const status = await cli(['status', syncId]);
      assert.equal(status.code, 0, shown(status));
      assert.match(status.stdout, new RegExp(`^${syncId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: RUNNING \\(dataSync\\)`, 'm'));
      assert.match(status.stdout, new RegExp(`no worker is polling task queue ${taskQueue}`));
      assert.doesNotMatch(status.stdout + status.stderr, /query timed out/i);

      // A worker comes: the waiting command ends with the sync's result.
      worker = start(['worker', '--config', file], { LOG_LEVEL: 'info' });
      await waitFor(worker, /"msg":"worker started"/, 120_000, 'the worker');
      assert.equal(await waiting.exited, 0, waiting.out());
      assert.match(waiting.out(), /orders: 100% .*— done/);
    } finally {
      await stop(waiting);
    }
  });

  test("the worker's config: path and fingerprint in its startup log and the run's details; a job added to the file later fails naming the worker's copy", { timeout: 240_000 }, async () => {
    assert.ok(worker, 'the worker of the test before');
    const fingerprint = createHash('sha256').update(await readFile(file, 'utf8')).digest('hex').slice(0, 12);
    const started = JSON.parse(worker.out().split('\n').find((l) => l.includes('"msg":"worker started"'))!) as Record<string, unknown>;
    assert.equal(started.config, file);
    assert.equal(started.configFingerprint, fingerprint);
    assert.match(String(started.identity), new RegExp(`^\\d+@\\S+ lakebase\\.yaml@${fingerprint}$`), 'the identity Temporal records on each task it takes');

    const status = await cli(['status', syncId]);
    assert.equal(status.code, 0, shown(status));
    assert.ok(status.stdout.includes(`started with config ${file} (${fingerprint})`), shown(status));

    await appendFile(
      file,
      YAML.stringify({ jobs: { 'count-orders': { profile: 'local', environment: 'test', steps: [{ name: 'count', kind: 'read', sql: 'select count(*) from public.dst' }] } } }),
    );
    const changed = createHash('sha256').update(await readFile(file, 'utf8')).digest('hex').slice(0, 12);
    const r = await cli(['job', 'run', '-j', 'count-orders']);
    assert.equal(r.code, 1, shown(r));
    // Before the run fails, the command says the worker runs another version of the file.
    assert.ok(r.stderr.includes(`the worker(s) polling task queue ${taskQueue} run config ${fingerprint}, not ${changed} (the file this command read): restart them to pick up changes`), shown(r));
    const out = r.stdout + r.stderr;
    assert.ok(out.includes(`the worker loaded ${file} (${fingerprint}) at `), shown(r));
    assert.match(out, /restart it to pick up changes/);
    assert.match(out, /LakebaseConfigError/);
    // The worker's own log line for the failed activity carries the message, not only its fields.
    await waitFor(worker, /"msg":"Activity failed"[^\n]*unknown job \\"count-orders\\"|unknown job \\"count-orders\\"[^\n]*"msg":"Activity failed"/, 10_000, 'the worker\'s log line');
  });

  test("a retried failure reaches the waiting command and status: the activity, its attempt, the type and message", { timeout: 240_000 }, async () => {
    const waiting = start(['sync', 'start', '-p', 'unreachable', '--wait', '--config', file]);
    try {
      await waitFor(waiting, /^started (\S+)/m, 30_000, 'the start');
      const id = /^started (\S+)/m.exec(waiting.out())![1]!;
      await waitFor(waiting, /planSync attempt \d+ failed: LakebaseUnknownError: .*does not exist.*\(retrying\)/, 30_000, 'the retried failure');
      const status = await cli(['status', id]);
      assert.equal(status.code, 0, shown(status));
      assert.match(status.stdout, new RegExp(`last failure: planSync attempt \\d+ failed: LakebaseUnknownError: .*database "${db.name}_missing" does not exist`));
      assert.doesNotMatch(status.stdout, /no worker is polling/);
      await env.client.workflow.getHandle(id).terminate('test over');
      assert.notEqual(await waiting.exited, 0, waiting.out());
    } finally {
      await stop(waiting);
    }
  });

  test('cdc status of a stream no worker runs says so, with the command that starts one, instead of a query timeout', { timeout: 120_000 }, async () => {
    // The stream of the slot runs on a task queue whose worker is gone (here: never came).
    const gone = `${taskQueue}-gone`;
    const h = await env.client.workflow.start('cdcStream', { taskQueue: gone, workflowId: 'cdc:lbw_firsthour_feed', args: [{ slot: 'lbw_firsthour_feed', pipelines: ['feed'] }] });
    try {
      const r = await cli(['cdc', 'status', '-p', 'feed']);
      assert.equal(r.code, 1, shown(r));
      assert.match(r.stdout, /^pipeline feed: a stream of its slot is running, but no worker runs it$/m);
      assert.ok(r.stdout.includes(`no worker is polling task queue ${gone}: nothing will run until one does; start one with: lakebase-worker worker --config ${file}`), shown(r));
      assert.doesNotMatch(r.stdout + r.stderr, /query timed out/i);
    } finally {
      await h.terminate('test over');
    }
  });

  test('schedules: not found, already exists and a bad cron in our words; a human catch-up window', { timeout: 120_000 }, async () => {
    const missing = await cli(['schedule', 'describe', 'orders']);
    assert.equal(missing.code, 1, shown(missing));
    assert.match(missing.stderr, /no schedule "orders"/);
    assert.doesNotMatch(missing.stderr, /temporal-sys-scheduler|workflow not found/);

    const badCron = await cli(['schedule', 'create', '-p', 'orders', '--cron', 'every day', '--paused']);
    assert.equal(badCron.code, 1, shown(badCron));
    assert.match(badCron.stderr, /a cron expression has 5 fields \(minute hour day-of-month month day-of-week\)/);
    assert.doesNotMatch(badCron.stderr, /CronString/);

    // Five fields the server refuses: its words, under the flag, without the SDK's wrapping.
    const outOfRange = await cli(['schedule', 'create', '-p', 'orders', '--cron', '61 * * * *', '--paused']);
    assert.equal(outOfRange.code, 1, shown(outOfRange));
    assert.match(outOfRange.stderr, /^--cron "61 \* \* \* \*": Temporal refused it: Minute is not in range \[0-59\]/m);

    const created = await cli(['schedule', 'create', '-p', 'orders', '--every', '1 hour', '--paused']);
    assert.equal(created.code, 0, shown(created));
    assert.match(created.stdout, /catch-up window: 1 h$/m);
    const again = await cli(['schedule', 'create', '-p', 'orders', '--every', '1 hour', '--paused']);
    assert.equal(again.code, 1, shown(again));
    assert.match(again.stderr, /schedule sync:orders already exists; see it with lakebase-worker schedule describe sync:orders/);

    const near = await cli(['schedule', 'describe', 'orders']);
    assert.match(near.stderr, /did you mean sync:orders\?/);
  });

  test('verify names what it excused and why, in the report of a failing and of a passing run', { timeout: 240_000 }, async () => {
    // Source loses row 1 (deletes: ignore keeps it in the target); the target's row 2 is changed behind the worker.
    await db.client.query(`DELETE FROM src WHERE id = 1; UPDATE dst SET label = 'changed' WHERE id = 2`);
    const failing = await cli(['verify', '-p', 'orders']);
    assert.equal(failing.code, 1, shown(failing));
    assert.match(failing.stdout, /found 1 difference .*differs id=2/);
    assert.match(failing.stdout, /1 difference excused: extra id=1 \(gone from the source, kept by deletes: ignore\)/);

    await db.client.query(`UPDATE dst SET label = 'row 2' WHERE id = 2`);
    const passing = await cli(['verify', '-p', 'orders']);
    assert.equal(passing.code, 0, shown(passing));
    assert.match(passing.stdout, /source and target match .*; 1 difference excused: extra id=1 \(gone from the source, kept by deletes: ignore\)/);
  });
});
