// `npm run bench [-- --rows 200000]`: copies pgbench_accounts database to database on the local
// PostgreSQL with every tool in one run — the raw binary COPY pipe (the yardstick), pg_dump | psql,
// pgcopydb when installed, and our syncs through a real Temporal dev server and the real worker in
// child processes — plus a "remote" case through a throttling proxy, two workers sharing one sync
// and CLI start-up, delete detection and verify after 1% of the rows were deleted and 1% changed.
// Writes bench/results/latest.json and latest.md. Figures are reported, never asserted.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import YAML from 'yaml';
import { startSync, startVerify } from '../src/client';
import { parseConfig } from '../src/config/load';
import { pipelineSchema, type Config } from '../src/config/schema';
import { freshDatabase } from '../src/provision/postgres';
import { startTemporal } from '../test/helpers/temporal';
import { ADMIN_URL } from '../test/helpers/db';
import type { DeleteBucketResult, VerifyReport } from '../src/activities/types';
import type { SyncProgress } from '../src/workflows';
import { phaseSeconds, readSyncHistory, timeline, type ActivityRun } from './history';
import { pgcopydbClone, pgDumpPipe, pgloaderCopy, rawPipe, which } from './peers';
import { markdown, type BenchResult, type CaseResult } from './report';
import { startThrottleProxy, type ThrottleProxy } from './throttle-proxy';
import { startWorkerProcess, workerNodeFlags, type WorkerProcess } from './worker-process';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const say = (m: string) => console.log(`• ${m}`);

const GROUPS = ['peers', 'full', 'parallelism', 'upsert', 'merge', 'resync', 'incremental', 'deletes', 'verify', 'remote', 'workers', 'cli'] as const;
type Group = (typeof GROUPS)[number];

const USAGE = `npm run bench -- [options]            (every option also reads an environment variable)
  --rows <n>               rows of pgbench_accounts                     BENCH_ROWS          (default 2000000)
  --remote-rows <n>        rows copied in the remote case               BENCH_REMOTE_ROWS   (default min(rows, 200000))
  --remote-mbps <MB/s>     proxy bandwidth per connection and direction BENCH_REMOTE_MBPS   (default 2)
  --remote-latency-ms <ms> proxy delay each way                         BENCH_REMOTE_LATENCY_MS (default 10)
  --changed-rows <n>       rows changed for the incremental sync        BENCH_CHANGED_ROWS  (default 1000)
  --pgcopydb-jobs <n>      pgcopydb --table-jobs/--index-jobs           BENCH_PGCOPYDB_JOBS (default 4)
  --case-timeout <s>       a sync still running after this fails its case  BENCH_CASE_TIMEOUT (default 600)
  --only <groups>          comma list of ${GROUPS.join(', ')}
                           (default: all; merge and resync need upsert, incremental runs its own first load,
                           deletes and verify share theirs: e.g. --only deletes,verify)
  --out <prefix>           results file prefix                          BENCH_OUT (default bench/results/latest → .json and .md)
Runs the full 2 M-row benchmark under the shared lock: flock /tmp/lbw-heavy.lock npm run bench`;

interface Options {
  rows: number;
  remoteRows: number;
  remoteBytesPerSecond: number;
  remoteLatencyMs: number;
  changedRows: number;
  pgcopydbJobs: number;
  caseTimeoutSeconds: number;
  only: Set<Group>;
  out: string;
}

function options(): Options {
  const { values } = parseArgs({
    options: {
      rows: { type: 'string' },
      'remote-rows': { type: 'string' },
      'remote-mbps': { type: 'string' },
      'remote-latency-ms': { type: 'string' },
      'changed-rows': { type: 'string' },
      'pgcopydb-jobs': { type: 'string' },
      'case-timeout': { type: 'string' },
      only: { type: 'string' },
      out: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (flag: string, value: string | undefined, env: string, fallback: number, integer = true): number => {
    const raw = value ?? process.env[env];
    if (raw === undefined || raw === '') return fallback;
    const n = Number(raw.replace(/_/g, ''));
    if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) throw new Error(`--${flag} (or ${env}): expected a positive ${integer ? 'integer' : 'number'}, got "${raw}"`);
    return n;
  };
  const rows = num('rows', values.rows, 'BENCH_ROWS', 2_000_000);
  const only = new Set<Group>();
  for (const g of (values.only ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(GROUPS as readonly string[]).includes(g)) throw new Error(`--only: unknown group "${g}"; groups: ${GROUPS.join(', ')}`);
    only.add(g as Group);
  }
  const o: Options = {
    rows,
    remoteRows: num('remote-rows', values['remote-rows'], 'BENCH_REMOTE_ROWS', Math.min(rows, 200_000)),
    remoteBytesPerSecond: num('remote-mbps', values['remote-mbps'], 'BENCH_REMOTE_MBPS', 2, false) * 1e6,
    remoteLatencyMs: num('remote-latency-ms', values['remote-latency-ms'], 'BENCH_REMOTE_LATENCY_MS', 10, false),
    changedRows: num('changed-rows', values['changed-rows'], 'BENCH_CHANGED_ROWS', 1000),
    pgcopydbJobs: num('pgcopydb-jobs', values['pgcopydb-jobs'], 'BENCH_PGCOPYDB_JOBS', 4),
    caseTimeoutSeconds: num('case-timeout', values['case-timeout'], 'BENCH_CASE_TIMEOUT', 600, false),
    only: only.size ? only : new Set(GROUPS),
    out: path.resolve(values.out ?? process.env.BENCH_OUT ?? path.join(ROOT, 'bench', 'results', 'latest')),
  };
  if (o.changedRows > rows) throw new Error(`--changed-rows ${o.changedRows} exceeds --rows ${rows}`);
  if (o.remoteRows > rows) throw new Error(`--remote-rows ${o.remoteRows} exceeds --rows ${rows}`);
  return o;
}

/** pgbench's own layout: the key is added after the load. */
const ACCOUNTS_DDL = (t: string) => `CREATE TABLE ${t} (aid int NOT NULL, bid int, abalance int, filler char(84)) WITH (fillfactor = 100)`;
const KEYED_DDL = (t: string) => `CREATE TABLE ${t} (aid int PRIMARY KEY, bid int, abalance int, filler char(84))`;
const INC_DDL = (t: string) => `CREATE TABLE ${t} (aid int PRIMARY KEY, bid int, abalance int, filler char(84), updated_at timestamptz NOT NULL)`;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const round = (n: number, digits = 3) => Number(n.toFixed(digits));

async function gitInfo(): Promise<BenchResult['engine']> {
  const git = (...args: string[]) => run('git', ['-C', ROOT, ...args]).then((r) => r.stdout.trim(), () => '');
  return { commit: await git('rev-parse', 'HEAD'), branch: await git('rev-parse', '--abbrev-ref', 'HEAD'), dirty: (await git('status', '--porcelain', '--untracked-files=no')) !== '' };
}

/**
 * The CLI runs the compiled dist/ only when it is newer than every source file (else the sources
 * through tsx, some 2 s per command): compile first, so end-to-end figures are the user's.
 */
async function freshBuild(): Promise<void> {
  const newest = async (dir: string): Promise<number> => {
    let m = 0;
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      m = Math.max(m, e.isDirectory() ? await newest(p) : (await stat(p)).mtimeMs);
    }
    return m;
  };
  const built = await stat(path.join(ROOT, 'dist', '.built')).then((x) => x.mtimeMs, () => 0);
  if (built >= (await newest(path.join(ROOT, 'src')))) return;
  say('compiling src/ to dist/ so the CLI runs compiled…');
  await run(process.execPath, [path.join(ROOT, 'scripts', 'build.js')]);
}

async function main() {
  const o = options();
  await freshBuild();
  const started = Date.now();
  const loadAverageAtStart = os.loadavg().map((l) => round(l, 2));
  const id = `${process.pid}_${Math.floor(Math.random() * 1e6)}`;
  const srcName = `lbw_bench_src_${id}`;
  const dstName = `lbw_bench_dst_${id}`;
  say(`rows ${o.rows.toLocaleString('en')}; groups: ${[...o.only].join(', ')}; databases ${srcName} → ${dstName}`);

  const env = await startTemporal();
  const client = env.client;
  const srcUrl = await freshDatabase(ADMIN_URL, srcName);
  const dstUrl = await freshDatabase(ADMIN_URL, dstName);
  const src = new pg.Client({ connectionString: srcUrl });
  const dst = new pg.Client({ connectionString: dstUrl });
  await Promise.all([src.connect(), dst.connect()]);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'lbw-bench-'));
  const workers: WorkerProcess[] = [];
  let proxy: ThrottleProxy | undefined;
  const cases: CaseResult[] = [];
  const pipeRuns: number[] = [];
  const failures: string[] = [];
  let pipeCommand = '';
  let remote = null as BenchResult['remote'];
  let twoWorkers = null as BenchResult['twoWorkers'];
  let cliStart = null as BenchResult['cliStart'];
  let compare = null as BenchResult['compare'];
  const defaultParallelism = pipelineSchema.parse({ source: { profile: 'p', environment: 'e', table: 't' }, target: { profile: 'p', environment: 'e', table: 't' }, key: ['k'] }).parallelism;
  const defaultBatchRows = pipelineSchema.parse({ source: { profile: 'p', environment: 'e', table: 't' }, target: { profile: 'p', environment: 'e', table: 't' }, key: ['k'] }).batchRows;
  let postgres = '';
  let checkpoints = 'before each timed case';

  try {
    postgres = (await src.query<{ v: string }>('SELECT version() AS v')).rows[0]!.v;
    // ── seed ────────────────────────────────────────────────────────────────────────────────
    say(`seeding pgbench_accounts (${o.rows.toLocaleString('en')} rows)…`);
    await src.query(ACCOUNTS_DDL('pgbench_accounts'));
    await src.query(`INSERT INTO pgbench_accounts SELECT g, 1 + (g - 1) / 100000, 0, '' FROM generate_series(1, ${o.rows}) g`);
    await src.query('ALTER TABLE pgbench_accounts ADD PRIMARY KEY (aid)');
    if (o.only.has('remote')) {
      await src.query(KEYED_DDL('pgbench_accounts_remote'));
      await src.query(`INSERT INTO pgbench_accounts_remote SELECT * FROM pgbench_accounts WHERE aid <= ${o.remoteRows}`);
    }
    if (o.only.has('incremental')) {
      // The incremental case needs a cursor that moves when a row changes: the same rows plus updated_at (indexed, as a user would).
      await src.query(INC_DDL('pgbench_accounts_inc'));
      await src.query(`INSERT INTO pgbench_accounts_inc SELECT a.*, timestamptz '2026-01-01' + a.aid * interval '1 millisecond' FROM pgbench_accounts a`);
      await src.query('CREATE INDEX ON pgbench_accounts_inc (updated_at, aid)');
    }
    const compareGroups = o.only.has('deletes') || o.only.has('verify');
    if (compareGroups) {
      // Delete detection and verify run after an incremental upsert: the same rows plus updated_at, a table of their own.
      await src.query(INC_DDL('pgbench_accounts_dv'));
      await src.query(`INSERT INTO pgbench_accounts_dv SELECT a.*, timestamptz '2026-01-01' + a.aid * interval '1 millisecond' FROM pgbench_accounts a`);
      await src.query('CREATE INDEX ON pgbench_accounts_dv (updated_at, aid)');
    }
    await src.query('VACUUM ANALYZE');

    const checksum = async (c: pg.Client, table: string) =>
      (await c.query<{ n: string; h: string | null }>(`SELECT count(*) AS n, sum(hashtextextended(t::text, 0))::text AS h FROM ${table} t`)).rows[0]!;
    // Source checksums are computed once per table state (the bench itself is the only writer).
    const sourceSums = new Map<string, ReturnType<typeof checksum>>();
    const sourceChanged = (table: string) => sourceSums.delete(table);
    /** Fails the case when a copy differs from its source: a fast wrong copy is not a result. */
    const verify = async (srcTable: string, dstTable: string) => {
      if (!sourceSums.has(srcTable)) sourceSums.set(srcTable, checksum(src, srcTable));
      const [a, b] = await Promise.all([sourceSums.get(srcTable)!, checksum(dst, dstTable)]);
      if (a.n !== b.n || a.h !== b.h) throw new Error(`${dstName}.${dstTable} (${b.n} rows) differs from ${srcName}.${srcTable} (${a.n} rows): the benchmark would be meaningless`);
    };
    const recreate = async (ddl: (t: string) => string, table: string) => {
      await dst.query(`DROP TABLE IF EXISTS ${table}`);
      await dst.query(ddl(table));
    };

    /**
     * A CHECKPOINT before each timed case, so no case pays for flushing the previous one's writes
     * (a 2 M-row load writes about half of the default max_wal_size). Needs superuser or pg_checkpoint.
     */
    const settle = async () => {
      if (checkpoints !== 'before each timed case') return;
      await src.query('CHECKPOINT').catch((err: Error) => {
        checkpoints = `not possible (${err.message}); cases may pay for each other's writes`;
        say(`CHECKPOINT: ${checkpoints}`);
      });
    };

    // ── the yardstick ───────────────────────────────────────────────────────────────────────
    const pipeOnce = async () => {
      await recreate(KEYED_DDL, 'pipe_accounts');
      await settle();
      const t = await rawPipe(srcUrl, dstUrl, 'pgbench_accounts', 'pipe_accounts');
      await verify('pgbench_accounts', 'pipe_accounts');
      pipeRuns.push(t.seconds);
      pipeCommand = t.command;
      say(`raw binary COPY pipe: ${t.seconds.toFixed(2)} s`);
    };
    await pipeOnce();
    const pipeSeconds = () => pipeRuns.reduce((a, b) => a + b, 0) / pipeRuns.length;
    const pending: CaseResult[] = []; // ratios are filled in at the end, against the mean of the pipe runs
    /**
     * Runs one group of cases; a failure (a sync that fails, times out or copies wrongly) is recorded
     * against `caseId` and the run goes on — a 2 M-row run is too dear to lose to one case.
     */
    const guarded = async (caseId: string, label: string, rows: number, fn: () => Promise<void>, into: CaseResult[] = pending, group?: CaseResult['group']) => {
      try {
        await fn();
      } catch (err) {
        const message = (err as Error).message.split('\n').map((l) => l.trim()).filter(Boolean).join(' ').slice(0, 300);
        say(`${label}: FAILED — ${message}`);
        failures.push(`${caseId}: ${message}`);
        into.push({ id: caseId, label, group: group ?? (into === pending ? 'ours' : 'remote'), rows, seconds: null, rowsPerSecond: null, ratioToPipe: null, failed: message });
      }
    };

    // ── peers ───────────────────────────────────────────────────────────────────────────────
    if (o.only.has('peers')) await guarded('pg_dump', '`pg_dump -t … | psql`', o.rows, async () => {
      await dst.query('DROP TABLE IF EXISTS pgbench_accounts');
      await settle();
      const d = await pgDumpPipe(srcUrl, dstUrl, 'public.pgbench_accounts');
      await verify('pgbench_accounts', 'pgbench_accounts');
      say(`pg_dump | psql: ${d.seconds.toFixed(2)} s`);
      pending.push({ id: 'pg_dump', label: '`pg_dump -t … | psql` (unindexed load, then the key)', group: 'peer', rows: o.rows, seconds: round(d.seconds), rowsPerSecond: null, ratioToPipe: null, command: d.command });
      await dst.query('DROP TABLE pgbench_accounts');
    });
    if (o.only.has('peers')) await guarded('pgcopydb', 'pgcopydb', o.rows, async () => {
      if (await which('pgcopydb')) {
        await settle();
        const c = await pgcopydbClone(srcUrl, dstUrl, 'public', 'pgbench_accounts', o.pgcopydbJobs);
        await verify('pgbench_accounts', 'pgbench_accounts');
        say(`pgcopydb: ${c.seconds.toFixed(2)} s`);
        pending.push({ id: 'pgcopydb', label: `${c.version.replace(/^pgcopydb version /, 'pgcopydb ')} clone (${o.pgcopydbJobs} table/index jobs)`, group: 'peer', rows: o.rows, seconds: round(c.seconds), rowsPerSecond: null, ratioToPipe: null, command: c.command });
        await dst.query('DROP TABLE pgbench_accounts');
      } else {
        pending.push({ id: 'pgcopydb', label: 'pgcopydb', group: 'peer', rows: o.rows, seconds: null, rowsPerSecond: null, ratioToPipe: null, skipped: 'not installed (Debian package pgcopydb)' });
        say('pgcopydb: skipped (not installed; apt-get install pgcopydb)');
      }
    });

    if (o.only.has('peers')) await guarded('pgloader', 'pgloader', o.rows, async () => {
      if (await which('pgloader')) {
        await settle();
        const c = await pgloaderCopy(srcUrl, dstUrl, 'public', 'pgbench_accounts');
        await verify('pgbench_accounts', 'pgbench_accounts');
        say(`pgloader: ${c.seconds.toFixed(2)} s`);
        pending.push({ id: 'pgloader', label: `${c.version.replace(/^pgloader version "?([^"]*)"?.*/, 'pgloader $1')}`, group: 'peer', rows: o.rows, seconds: round(c.seconds), rowsPerSecond: null, ratioToPipe: null, command: c.command });
        await dst.query('DROP TABLE pgbench_accounts');
      } else {
        pending.push({ id: 'pgloader', label: 'pgloader', group: 'peer', rows: o.rows, seconds: null, rowsPerSecond: null, ratioToPipe: null, skipped: 'not installed (Debian package pgloader)' });
        say('pgloader: skipped (not installed; apt-get install pgloader)');
      }
    });

    // ── our syncs: one config, one fresh worker process (or two) per case ───────────────────
    const srcEnv = new URL(srcUrl);
    const endpoint = (database: string, port = Number(srcEnv.port || 5432)) => ({
      host: srcEnv.hostname,
      port,
      database,
      user: decodeURIComponent(srcEnv.username) || 'postgres',
      ssl: { mode: 'disable' },
    });
    if (o.only.has('remote'))
      proxy = await startThrottleProxy({ target: { host: srcEnv.hostname, port: Number(srcEnv.port || 5432) }, bytesPerSecond: o.remoteBytesPerSecond, latencyMs: o.remoteLatencyMs });
    const S = { profile: 'bench', environment: 'src' };
    const D = { profile: 'bench', environment: 'dst' };
    const R = { profile: 'bench', environment: 'remote' };
    const full = (extra: Record<string, unknown> = {}) => ({ source: { ...S, table: 'public.pgbench_accounts' }, target: { ...D, table: 'public.full_accounts' }, key: ['aid'], mode: 'full-refresh', ...extra });
    // The remote table is small: smaller chunks so parallelism has chunks to share even on the chunked (v1) engine.
    const remoteBatch = Math.max(1000, Math.ceil(o.remoteRows / 16));
    const pipelines: Record<string, unknown> = {
      full: full(),
      full_p1: full({ parallelism: 1 }),
      full_p2: full({ parallelism: 2 }),
      full_p4: full({ parallelism: 4 }),
      shared: full({ target: { ...D, table: 'public.shared_accounts' } }),
      upsert: { source: { ...S, table: 'public.pgbench_accounts' }, target: { ...D, table: 'public.upsert_accounts' }, key: ['aid'], mode: 'upsert' },
      // The same target re-synced the old way (every row re-read and merged), beside compare-then-copy.
      upsert_merge: { source: { ...S, table: 'public.pgbench_accounts' }, target: { ...D, table: 'public.upsert_accounts' }, key: ['aid'], mode: 'upsert', resync: 'merge' },
      upsert_cursor: { source: { ...S, table: 'public.pgbench_accounts' }, target: { ...D, table: 'public.upsert_cursor_accounts' }, key: ['aid'], cursor: 'aid', mode: 'upsert' },
      incremental: { source: { ...S, table: 'public.pgbench_accounts_inc' }, target: { ...D, table: 'public.inc_accounts' }, key: ['aid'], cursor: 'updated_at', mode: 'upsert' },
      // verify: none, so the sync's own time is its chunks and delete detection; verify runs as `verifySync` workflows.
      dv: { source: { ...S, table: 'public.pgbench_accounts_dv' }, target: { ...D, table: 'public.dv_accounts' }, key: ['aid'], cursor: 'updated_at', mode: 'upsert', deletes: 'hard' },
    };
    if (proxy) {
      pipelines.remote_p1 = { source: { ...R, table: 'public.pgbench_accounts_remote' }, target: { ...D, table: 'public.remote_accounts' }, key: ['aid'], mode: 'full-refresh', parallelism: 1, batchRows: remoteBatch };
      pipelines.remote_p4 = { source: { ...R, table: 'public.pgbench_accounts_remote' }, target: { ...D, table: 'public.remote_accounts' }, key: ['aid'], mode: 'full-refresh', parallelism: 4, batchRows: remoteBatch };
    }
    const configFor = (taskQueue: string) => ({
      temporal: { address: env.address, taskQueue },
      profiles: {
        bench: {
          auth: { method: 'pat', token: decodeURIComponent(srcEnv.password) || 'trust-auth-ignores-this' },
          environments: { src: endpoint(srcName), dst: endpoint(dstName), ...(proxy && { remote: endpoint(srcName, proxy.port) }) },
        },
      },
      pipelines,
      // No metrics port: two workers on one machine would collide on the default 9464.
      worker: { opsPort: 0 },
    });

    interface OursRun {
      /** The workflow's result. */
      progress?: SyncProgress;
      seconds: number;
      workflowSeconds: number;
      chunks: number;
      rowsWritten: number;
      workers: WorkerProcess[];
      activities: { type: string; identity: string }[];
      activityRuns: ActivityRun[];
    }
    interface WorkflowRun<R> {
      seconds: number;
      workflowSeconds: number;
      /** CPU seconds of the worker process(es) from the start request to the result. */
      workerCpuSeconds: number | null;
      /** The workflow's result, or (expectFailure) undefined when it failed. */
      result: R | undefined;
      /** expectFailure: how the workflow failed. */
      failure?: WorkflowFailedError;
      workers: WorkerProcess[];
      activities: { type: string; identity: string }[];
      activityRuns: ActivityRun[];
    }
    let seq = 0;
    /**
     * Starts `workerCount` fresh workers, runs one workflow through the client API (`start` gets the
     * task queue and a workflow id), stops them. With `expectFailure`, a failed workflow is a result.
     */
    const runOurs = async <R>(
      name: string,
      start: (taskQueue: string, config: Config, workflowId: string, configFile: string) => Promise<{ readonly workflowId: string; terminate(reason?: string): Promise<unknown>; result(): Promise<R> }>,
      workerCount = 1,
      expectFailure = false,
    ): Promise<WorkflowRun<R>> => {
      const taskQueue = `bench-${name}-${id}-${++seq}`;
      const raw = configFor(taskQueue);
      const configFile = path.join(workDir, `${taskQueue}.yaml`);
      await writeFile(configFile, YAML.stringify(raw));
      const config: Config = parseConfig(raw);
      const mine: WorkerProcess[] = [];
      try {
        for (let i = 0; i < workerCount; i++) {
          const w = await startWorkerProcess(client, configFile, taskQueue);
          mine.push(w);
          workers.push(w);
        }
        await settle();
        const cpu0 = await Promise.all(mine.map((w) => w.cpuSeconds()));
        const t0 = performance.now();
        const handle = await start(taskQueue, config, `bench:${name}:${id}:${seq}`, configFile);
        let timer: NodeJS.Timeout | undefined;
        const timedOut = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`${name}: no result within ${o.caseTimeoutSeconds} s (--case-timeout); the workflow was terminated`)), o.caseTimeoutSeconds * 1000);
        });
        let failure: WorkflowFailedError | undefined;
        const result: R | undefined = await Promise.race([handle.result(), timedOut])
          .catch(async (err: unknown) => {
            if (expectFailure && err instanceof WorkflowFailedError) {
              failure = err;
              return undefined;
            }
            await handle.terminate('bench case timed out or failed').catch(() => undefined);
            throw err;
          })
          .finally(() => clearTimeout(timer));
        const seconds = (performance.now() - t0) / 1000;
        const cpu1 = await Promise.all(mine.map((w) => w.cpuSeconds()));
        const workerCpuSeconds = cpu0.every((x) => x !== null) && cpu1.every((x) => x !== null) ? cpu1.reduce((a, x, i) => a! + x! - cpu0[i]!, 0)! : null;
        for (const w of mine) await w.stop();
        const h = await readSyncHistory(client as Client, handle.workflowId);
        if (process.env.BENCH_TIMELINE === '1') say(`  ${name} ${timeline(h)}`);
        return { seconds, workflowSeconds: h.workflowSeconds, workerCpuSeconds, result, failure, workers: mine, activities: h.activities, activityRuns: h.activityRuns };
      } finally {
        for (const w of mine) await w.stop();
      }
    };
    /**
     * The user's command, end to end: `lakebase-worker sync start --wait` in a process of its own
     * (the compiled CLI, see freshBuild), timed from spawn to exit; the progress is the workflow's result.
     */
    const viaCli = (pipeline: string) => async (_taskQueue: string, _config: Config, _workflowId: string, configFile: string) => {
      const child = spawn(process.execPath, [path.join(ROOT, 'bin', 'lakebase-worker.js'), 'sync', 'start', '--pipeline', pipeline, '--config', configFile, '--wait'], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: { ...process.env, LOG_LEVEL: 'warn' },
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
      const workflowId = () => /started (\S+)/.exec(out)?.[1] ?? '';
      return {
        get workflowId() {
          return workflowId();
        },
        async terminate(reason?: string) {
          child.kill('SIGTERM');
          if (workflowId()) await client.workflow.getHandle(workflowId()).terminate(reason);
        },
        async result(): Promise<SyncProgress> {
          const code = await exited;
          if (code !== 0) throw new Error(`sync start --wait exited with ${code}: ${(err || out).trim().split('\n').slice(-3).join(' | ')}`);
          return (await client.workflow.getHandle(workflowId()).result()) as SyncProgress;
        },
      };
    };
    /** One sync of `pipeline` through the CLI (see runOurs, viaCli). */
    const sync = async (pipeline: string, workerCount = 1): Promise<OursRun & WorkflowRun<SyncProgress> & { progress: SyncProgress }> => {
      const r = await runOurs<SyncProgress>(pipeline, viaCli(pipeline), workerCount);
      const progress = r.result!;
      return { ...r, chunks: progress.chunks, rowsWritten: progress.rowsWritten, progress };
    };
    const ours = async (
      caseId: string,
      label: string,
      pipeline: string,
      rows: number,
      check: [string, string],
      extra: Partial<CaseResult> = {},
    ): Promise<CaseResult & { run: OursRun }> => {
      const r = await sync(pipeline);
      await verify(...check);
      const w = r.workers[0]!;
      const cpu = r.workerCpuSeconds === null ? null : round((r.workerCpuSeconds * 1e6) / Math.max(1, rows), 2);
      say(`${label}: ${r.seconds.toFixed(2)} s end to end (workflow ${r.workflowSeconds.toFixed(2)} s, ${r.chunks} chunks), worker CPU ${cpu} s per M rows, peak RSS ${w.peakRssMb()} MB`);
      return {
        id: caseId,
        label,
        group: 'ours',
        rows,
        seconds: round(r.seconds),
        workflowSeconds: round(r.workflowSeconds),
        rowsPerSecond: null,
        ratioToPipe: null,
        chunks: r.chunks,
        rowsWritten: r.rowsWritten,
        workerPeakRssMb: w.peakRssMb(),
        workerStartupRssMb: w.startupPeakRssMb,
        workerCpuSecondsPerMillionRows: cpu,
        ...extra,
        run: r,
      };
    };
    const keep = (c: CaseResult & { run?: OursRun }) => {
      const { run: _run, ...rest } = c;
      pending.push(rest);
      return c;
    };

    /** One sync of `pipeline` into an emptied `target` (made by `ddl`), checked against `source`. */
    const oursCase = (caseId: string, label: string, pipeline: string, target: string, extra: Partial<CaseResult> = {}, source = 'pgbench_accounts', ddl = KEYED_DDL) =>
      guarded(caseId, label, o.rows, async () => {
        await recreate(ddl, target);
        keep(await ours(caseId, label, pipeline, o.rows, [source, target], extra));
      });
    if (o.only.has('full')) await oursCase('full-refresh', `lakebase-worker full-refresh (default parallelism ${defaultParallelism})`, 'full', 'full_accounts', { parallelism: defaultParallelism });
    if (o.only.has('parallelism'))
      for (const p of [1, 2, 4]) await oursCase(`full-refresh-p${p}`, `lakebase-worker full-refresh, parallelism ${p}`, `full_p${p}`, 'full_accounts', { parallelism: p });
    if (o.only.has('upsert') || o.only.has('merge')) await oursCase('upsert-first-load', 'lakebase-worker upsert, first load into an empty keyed target', 'upsert', 'upsert_accounts');
    if (o.only.has('upsert')) await oursCase('upsert-first-load-cursor', 'lakebase-worker upsert, first load, `cursor: aid`', 'upsert_cursor', 'upsert_cursor_accounts');
    if (o.only.has('workers')) await guarded('two-workers', 'lakebase-worker full-refresh, two workers on one task queue', o.rows, async () => {
      await recreate(KEYED_DDL, 'shared_accounts');
      const r = await sync('shared', 2);
      await verify('pgbench_accounts', 'shared_accounts');
      const byWorker: Record<string, number> = Object.fromEntries(r.workers.map((w) => [w.identity, 0]));
      const types: Record<string, number> = {};
      for (const a of r.activities) {
        types[a.type] = (types[a.type] ?? 0) + 1;
        // History records the full identity, `<pid>@<host> <config>@<fingerprint>`.
        const w = r.workers.find((x) => a.identity === x.identity || a.identity.startsWith(`${x.identity} `))?.identity ?? a.identity;
        if (/chunk/i.test(a.type)) byWorker[w] = (byWorker[w] ?? 0) + 1;
      }
      const both = r.workers.every((w) => (byWorker[w.identity] ?? 0) > 0);
      twoWorkers = { workers: r.workers.map((w) => w.identity), chunkActivitiesByWorker: byWorker, activityTypes: types, chunkActivities: r.activities.filter((a) => /chunk/i.test(a.type)), bothRanPartitions: both, seconds: round(r.seconds) };
      say(`two workers, one full-refresh: ${r.seconds.toFixed(2)} s; chunk activities per worker ${JSON.stringify(byWorker)} → ${both ? 'both ran partitions' : 'NOT both'}`);
      pending.push({
        id: 'two-workers',
        label: `lakebase-worker full-refresh, two workers on one task queue`,
        group: 'ours',
        rows: o.rows,
        seconds: round(r.seconds),
        workflowSeconds: round(r.workflowSeconds),
        rowsPerSecond: null,
        ratioToPipe: null,
        chunks: r.chunks,
        parallelism: defaultParallelism,
        workerPeakRssMb: Math.max(...r.workers.map((w) => w.peakRssMb() ?? 0)),
        note: `chunk activities per worker: ${Object.values(byWorker).join(' + ')}`,
      });
    });
    const merged = 'lakebase-worker upsert re-sync of the populated target, 10% of rows changed, `resync: merge` (every row re-read and merged)';
    if (o.only.has('merge') && !pending.some((c) => c.id === 'upsert-first-load' && !c.failed)) {
      pending.push({ id: 'merge-resync', label: merged, group: 'ours', rows: o.rows, seconds: null, rowsPerSecond: null, ratioToPipe: null, skipped: 'the first load it re-syncs failed' });
    } else if (o.only.has('merge')) await guarded('merge-resync', merged, o.rows, async () => {
      // 10% of the rows change; the re-sync re-reads everything and writes what differs.
      const changed = await src.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 10 = 0`);
      await src.query('VACUUM ANALYZE pgbench_accounts');
      sourceChanged('pgbench_accounts');
      keep(await ours('merge-resync', merged, 'upsert_merge', o.rows, ['pgbench_accounts', 'upsert_accounts'], { note: `${changed.rowCount} rows changed` }));
    });
    // ── re-syncs of the populated target without a cursor: nothing, 1% and 10% changed ──────
    if (o.only.has('resync')) {
      const cases: [string, string, string | null][] = [
        ['resync-0', 'nothing changed', null],
        ['resync-1-spread', '1% changed, spread', 'aid % 100 = 41'],
        ['resync-1-clustered', '1% changed, clustered', `aid > ${Math.floor(o.rows * 0.3)} AND aid <= ${Math.floor(o.rows * 0.3) + Math.floor(o.rows / 100)}`],
        ['resync-10-spread', '10% changed, spread', 'aid % 10 = 7'],
        ['resync-10-clustered', '10% changed, clustered', `aid > ${Math.floor(o.rows * 0.55)} AND aid <= ${Math.floor(o.rows * 0.55) + Math.floor(o.rows / 10)}`],
      ];
      const loaded = pending.some((c) => c.id === 'upsert-first-load' && !c.failed);
      for (const [caseId, what, where] of cases) {
        const label = `lakebase-worker upsert re-sync of the populated target (no cursor), ${what}`;
        if (!loaded) {
          pending.push({ id: caseId, label, group: 'ours', rows: o.rows, seconds: null, rowsPerSecond: null, ratioToPipe: null, skipped: 'the first load it re-syncs failed or did not run (--only upsert,resync)' });
          continue;
        }
        await guarded(caseId, label, o.rows, async () => {
          let changed = 0;
          if (where) {
            changed = (await src.query(`UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE ${where}`)).rowCount ?? 0;
            await src.query('VACUUM ANALYZE pgbench_accounts');
            sourceChanged('pgbench_accounts');
          }
          const c = await ours(caseId, label, 'upsert', o.rows, ['pgbench_accounts', 'upsert_accounts'], { note: `${changed.toLocaleString('en')} rows changed` });
          const choice = c.run.progress?.resync;
          if (choice) c.note = `${c.note}; ${choice.method === 'compare' ? 'compare-then-copy' : 'merged every row'}: ${choice.probe.changedRows.toLocaleString('en')} of ${choice.probe.rows.toLocaleString('en')} sampled rows differed`;
          keep(c);
        });
      }
    }

    if (o.only.has('incremental')) await guarded('incremental', `lakebase-worker incremental upsert of ${o.changedRows.toLocaleString('en')} changed rows`, o.changedRows, async () => {
      await recreate(INC_DDL, 'inc_accounts');
      keep(await ours('incremental-first-load', 'lakebase-worker upsert, first load, `cursor: updated_at` (set-up of the next case)', 'incremental', o.rows, ['pgbench_accounts_inc', 'inc_accounts']));
      const step = Math.floor(o.rows / o.changedRows);
      const changed = await src.query(`UPDATE pgbench_accounts_inc SET abalance = abalance + 1, updated_at = clock_timestamp() WHERE aid % ${step} = 0 AND aid <= ${step * o.changedRows}`);
      sourceChanged('pgbench_accounts_inc');
      const c = await ours('incremental', `lakebase-worker incremental upsert of ${changed.rowCount?.toLocaleString('en')} changed rows`, 'incremental', changed.rowCount ?? 0, ['pgbench_accounts_inc', 'inc_accounts'], {
        note: `in a ${o.rows.toLocaleString('en')}-row table; the figure that counts is the workflow's own duration (history start → close)`,
      });
      keep(c);
    });

    // ── delete detection and verify: 1% of the source deleted and 1% changed ───────────────
    // Timed by the workflow's own history: from the first planDeletes/planVerify scheduled to the
    // last deleteBucket/verifyBucket closed (the phase itself, not the worker's start-up or the
    // sync's chunks). Their ratio is to the raw pipe of the same table, measured in this group.
    if (compareGroups) await guarded('compare', 'delete detection and verify', o.rows, async () => {
      const table = 'pgbench_accounts_dv';
      const dvPipe: number[] = [];
      let dvPipeCommand = '';
      const pipeDv = async () => {
        await recreate(INC_DDL, 'dv_pipe_accounts');
        await settle();
        const t = await rawPipe(srcUrl, dstUrl, table, 'dv_pipe_accounts');
        await verify(table, 'dv_pipe_accounts');
        dvPipe.push(t.seconds);
        dvPipeCommand = t.command;
        say(`${table}: raw binary COPY pipe ${t.seconds.toFixed(2)} s`);
      };
      await pipeDv();
      const compareCases: CaseResult[] = [];
      const one = (caseId: string, label: string, fn: () => Promise<void>) => guarded(caseId, label, o.rows, fn, compareCases, 'compare');
      /** A case timed by a phase of its workflow's history. */
      const phaseCase = (caseId: string, label: string, r: WorkflowRun<unknown>, types: string[], extra: Partial<CaseResult>) => {
        const phase = phaseSeconds(r.activityRuns, types);
        if (phase === null) throw new Error(`${label}: the history has no finished ${types.join('/')} activity`);
        const buckets = r.activityRuns.filter((a) => a.type === types[1]);
        const bucketSeconds = buckets.map((a) => (a.closedMs! - a.scheduledMs) / 1000);
        const slowest = Math.max(...bucketSeconds);
        const planSeconds = phaseSeconds(r.activityRuns, [types[0]!]);
        const w = r.workers[0]!;
        say(`${label}: phase ${phase.toFixed(2)} s (workflow ${r.workflowSeconds.toFixed(2)} s; ${types[0]} ${planSeconds?.toFixed(2)} s, ${buckets.length} ${types[1]}, median ${median(bucketSeconds).toFixed(2)} s, slowest ${slowest.toFixed(2)} s)`);
        compareCases.push({
          id: caseId,
          label,
          group: 'compare',
          rows: o.rows,
          seconds: round(phase),
          workflowSeconds: round(r.workflowSeconds),
          rowsPerSecond: null,
          ratioToPipe: null,
          workerPeakRssMb: w.peakRssMb(),
          workerStartupRssMb: w.startupPeakRssMb,
          ...extra,
          breakdown: {
            planSeconds: planSeconds === null ? null : round(planSeconds),
            buckets: buckets.length,
            medianBucketSeconds: round(median(bucketSeconds)),
            slowestBucketSeconds: round(slowest),
            /** Bucket seconds added up: over the phase's seconds, how many buckets ran at once on average. */
            bucketSecondsSum: round(bucketSeconds.reduce((a, b) => a + b, 0)),
            ...extra.breakdown,
          },
        });
      };
      const verifyRun = (mode: 'checksums' | 'counts', expectFailure = false) =>
        runOurs<VerifyReport>(`verify-${mode}`, (taskQueue, config) => startVerify(client, { pipeline: 'dv', taskQueue, config, mode }), 1, expectFailure);

      // Set-up: the first load (no deletes to find in an empty target).
      await recreate(INC_DDL, 'dv_accounts');
      const first = await sync('dv');
      await verify(table, 'dv_accounts');
      say(`${table}: first load ${first.seconds.toFixed(2)} s`);

      // verify on a target equal to its source: what `verify:` adds to every sync.
      if (o.only.has('verify'))
        for (const mode of ['checksums', 'counts'] as const)
          await one(`verify-${mode}`, `verify: ${mode}, target equal to its source`, async () => {
            const r = await verifyRun(mode);
            const report = r.result!;
            if (!report.ok || report.sourceRows !== o.rows || report.targetRows !== o.rows)
              throw new Error(`verify ${mode} of an equal target: ok ${report.ok}, ${report.sourceRows}/${report.targetRows} rows (expected ${o.rows})`);
            phaseCase(`verify-${mode}`, `verify: ${mode}, target equal to its source`, r, ['planVerify', 'verifyBucket'], { note: `${report.buckets} buckets, no difference` });
          });

      // 1% of the source deleted and 1% changed, spread evenly over the key range (the worst case
      // for a bucketed compare: every sub-bucket differs).
      const deleted = (await src.query(`DELETE FROM ${table} WHERE aid % 100 = 3`)).rowCount ?? 0;
      const changed = (await src.query(`UPDATE ${table} SET abalance = abalance + 1, updated_at = clock_timestamp() WHERE aid % 100 = 5`)).rowCount ?? 0;
      await src.query(`VACUUM ANALYZE ${table}`);
      sourceChanged(table);
      const spread = `${deleted.toLocaleString('en')} rows deleted (aid % 100 = 3) and ${changed.toLocaleString('en')} changed (aid % 100 = 5)`;

      // verify before the next sync: it fails, naming the deleted keys; the changed rows are after the last sync's cursor, so tolerated.
      if (o.only.has('verify'))
        await one('verify-checksums-behind', 'verify: checksums, target 1% deleted + 1% changed behind (fails)', async () => {
          const r = await verifyRun('checksums', true);
          const cause = r.failure?.cause;
          const report = cause instanceof ApplicationFailure ? (cause.details?.[0] as VerifyReport | undefined) : undefined;
          if (!(cause instanceof ApplicationFailure) || cause.type !== 'LakebaseVerifyFailed' || !report)
            throw new Error(`verify of a stale target should fail as LakebaseVerifyFailed; got ${r.failure ? String(r.failure.cause) : 'a pass'}`);
          if (report.mismatches !== deleted || report.tolerated !== changed)
            throw new Error(`verify of a stale target: ${report.mismatches} mismatches and ${report.tolerated} tolerated; expected ${deleted} (deleted) and ${changed} (changed after the cursor)`);
          phaseCase('verify-checksums-behind', 'verify: checksums, target 1% deleted + 1% changed behind (fails)', r, ['planVerify', 'verifyBucket'], {
            note: `${spread}: LakebaseVerifyFailed, ${report.mismatches.toLocaleString('en')} extra rows found (the first ${report.differences.length} named), ${report.tolerated.toLocaleString('en')} changed rows tolerated (after the last sync's cursor)`,
          });
        });

      // The next sync: its chunks merge the changed rows, then delete detection removes the deleted ones.
      if (o.only.has('deletes'))
        await one('deletes-hard', 'delete detection, `deletes: hard` (in the next sync)', async () => {
          const r = await sync('dv');
          await verify(table, 'dv_accounts');
          const found = r.progress.deletes;
          if (!found || found.rowsDeleted !== deleted || r.progress.rowsCopied !== changed)
            throw new Error(`the sync after ${spread} copied ${r.progress.rowsCopied} and deleted ${found?.rowsDeleted ?? 'nothing'}; expected ${changed} and ${deleted}`);
          const results = r.activityRuns.filter((a) => a.type === 'deleteBucket').map((a) => a.result as DeleteBucketResult | undefined);
          const keys = results.reduce((n, x) => n + (x?.keysCompared ?? 0), 0);
          const ranges = results.reduce((n, x) => n + (x?.rangesChecked ?? 0), 0);
          phaseCase('deletes-hard', 'delete detection, `deletes: hard` (in the next sync)', r, ['planDeletes', 'deleteBucket'], {
            note: `${spread}; ${found.rowsDeleted.toLocaleString('en')} deleted; ${ranges.toLocaleString('en')} differing sub-ranges, whose ${keys.toLocaleString('en')} source keys went to the target; workflow time includes the chunks that merged the changed rows`,
            rowsWritten: r.progress.rowsWritten,
            chunks: r.progress.chunks,
            breakdown: { keysStreamed: keys, subRangesDiffering: ranges, rowsDeleted: found.rowsDeleted },
          });
        });
      await pipeDv();
      const yardDv = dvPipe.reduce((a, b) => a + b, 0) / dvPipe.length;
      compare = { table, rows: o.rows, deleted, changed, pipeSeconds: dvPipe.map((x) => round(x)), meanPipeSeconds: round(yardDv), firstLoadSeconds: round(first.seconds) };
      cases.push(
        { id: 'compare-pipe', label: `raw binary COPY pipe of \`${table}\` (the same rows + \`updated_at\`; yardstick of the next rows)`, group: 'compare', rows: o.rows, seconds: round(yardDv), rowsPerSecond: Math.round(o.rows / yardDv), ratioToPipe: 1, command: dvPipeCommand },
        ...compareCases.map((c) => (c.seconds === null ? c : { ...c, rowsPerSecond: Math.round(c.rows / c.seconds), ratioToPipe: round(yardDv / c.seconds) })),
      );
    }, cases, 'compare');
    const remoteProxy = proxy;
    if (o.only.has('remote') && remoteProxy) await guarded('remote', 'remote: lakebase-worker full-refresh', o.remoteRows, async () => {
      const viaProxy = new URL(srcUrl);
      viaProxy.port = String(remoteProxy.port);
      await recreate(KEYED_DDL, 'remote_pipe_accounts');
      await settle();
      const p = await rawPipe(viaProxy.toString(), dstUrl, 'pgbench_accounts_remote', 'remote_pipe_accounts');
      await verify('pgbench_accounts_remote', 'remote_pipe_accounts');
      say(`remote pipe (through the proxy): ${p.seconds.toFixed(2)} s`);
      const remoteCases: CaseResult[] = [
        { id: 'remote-pipe', label: 'remote: raw binary COPY pipe through the proxy', group: 'remote', rows: o.remoteRows, seconds: round(p.seconds), rowsPerSecond: Math.round(o.remoteRows / p.seconds), ratioToPipe: 1, command: p.command },
      ];
      for (const par of [1, 4]) {
        await recreate(KEYED_DDL, 'remote_accounts');
        const c = await ours(`remote-p${par}`, `remote: lakebase-worker full-refresh, parallelism ${par}`, `remote_p${par}`, o.remoteRows, ['pgbench_accounts_remote', 'remote_accounts'], {
          group: 'remote',
          parallelism: par,
          note: `batchRows ${remoteBatch}`,
        });
        const { run: _run, ...rest } = c;
        remoteCases.push({ ...rest, rowsPerSecond: Math.round(o.remoteRows / c.run.seconds), ratioToPipe: round(p.seconds / c.run.seconds) });
      }
      const rps = (caseId: string) => remoteCases.find((c) => c.id === caseId)?.rowsPerSecond ?? null;
      const p1 = rps('remote-p1');
      const p4 = rps('remote-p4');
      remote = { pipeSeconds: round(p.seconds), p1RowsPerSecond: p1, p4RowsPerSecond: p4, speedup: p1 && p4 ? round(p4 / p1, 2) : null };
      say(`remote: parallelism 4 / parallelism 1 = ${remote.speedup}× rows/s`);
      cases.push(...remoteCases);
    }, cases);
    if (o.only.has('cli')) {
      const runs: number[] = [];
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        await run(process.execPath, [path.join(ROOT, 'bin', 'lakebase-worker.js'), '--help']);
        runs.push(round((performance.now() - t0) / 1000));
      }
      cliStart = { runsSeconds: runs, medianSeconds: median(runs) };
      say(`CLI --help: median ${cliStart.medianSeconds.toFixed(3)} s of ${runs.join(', ')}`);
    }

    // The pipe once more at the end: the machine is shared, so the yardstick is the mean of both runs.
    await pipeOnce();
    const yard = pipeSeconds();
    cases.unshift(
      { id: 'pipe', label: 'raw binary COPY pipe `psql | psql` (the yardstick)', group: 'yardstick', rows: o.rows, seconds: round(yard), rowsPerSecond: Math.round(o.rows / yard), ratioToPipe: 1, command: pipeCommand },
      ...pending.map((c) =>
        c.seconds === null
          ? c
          : {
              ...c,
              rowsPerSecond: Math.round(c.rows / c.seconds),
              ratioToPipe: c.id === 'incremental' ? null : round(yard / c.seconds),
              ...(c.workflowSeconds !== undefined && c.id !== 'incremental' && { workflowRatioToPipe: round(yard / c.workflowSeconds) }),
            },
      ),
    );
  } finally {
    for (const w of workers) await w.stop().catch(() => undefined);
    await proxy?.close();
    await Promise.all([src.end(), dst.end()]).catch(() => undefined);
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    for (const db of [srcName, dstName]) await admin.query(`DROP DATABASE IF EXISTS "${db}" WITH (FORCE)`);
    await admin.end();
    await env.teardown();
    await rm(workDir, { recursive: true, force: true });
  }

  const byId = (caseId: string) => cases.find((c) => c.id === caseId);
  const ratioTarget = (name: string, caseId: string, min: number) => {
    const c = byId(caseId);
    return { name, target: `ratio ≥ ${min}`, measured: c?.ratioToPipe != null ? c.ratioToPipe.toFixed(2) : '—', met: c?.ratioToPipe != null ? c.ratioToPipe >= min : null };
  };
  const rssValues = cases.map((c) => c.workerPeakRssMb).filter((v): v is number => typeof v === 'number');
  const inc = byId('incremental');
  const result: BenchResult = {
    measuredAt: new Date(started).toISOString(),
    engine: await gitInfo(),
    machine: {
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGb: Math.round(os.totalmem() / 2 ** 30),
      node: process.version,
      os: `${os.type()} ${os.release()}`,
      loadAverageAtStart,
      loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
    },
    postgres,
    settings: {
      rows: o.rows,
      remoteRows: o.remoteRows,
      changedRows: o.changedRows,
      remote: { bytesPerSecondPerConnection: o.remoteBytesPerSecond, latencyMsEachWay: o.remoteLatencyMs },
      batchRows: defaultBatchRows,
      defaultParallelism,
      pgcopydbJobs: o.pgcopydbJobs,
      checkpoints,
    },
    pipe: { seconds: pipeRuns.map((s) => round(s)), meanSeconds: round(pipeRuns.reduce((a, b) => a + b, 0) / pipeRuns.length), rowsPerSecond: Math.round(o.rows / (pipeRuns.reduce((a, b) => a + b, 0) / pipeRuns.length)), command: pipeCommand },
    cases,
    remote,
    twoWorkers,
    cliStart,
    compare,
    targets: [
      // Issue 28's targets: end to end, ratios of this run.
      ratioTarget('full-refresh', 'full-refresh', 1.2),
      (() => {
        const ours = byId('full-refresh')?.seconds;
        const dump = byId('pg_dump')?.seconds;
        const met = ours != null && dump != null ? ours <= dump : null;
        return { name: 'full-refresh never slower than pg_dump in the same run', target: 'seconds ≤ pg_dump\'s', measured: ours != null && dump != null ? `${ours.toFixed(2)} s vs ${dump.toFixed(2)} s` : '—', met };
      })(),
      ratioTarget('upsert first load, no cursor', 'upsert-first-load', 1.1),
      ratioTarget('upsert first load, with cursor', 'upsert-first-load-cursor', 1.1),
      ratioTarget('merge re-sync, 10% changed', 'merge-resync', 0.6),
      ratioTarget('re-sync, nothing changed', 'resync-0', 3.0),
      ratioTarget('re-sync, 1% changed (spread)', 'resync-1-spread', 2.0),
      ratioTarget('re-sync, 1% changed (clustered)', 'resync-1-clustered', 2.0),
      ratioTarget('re-sync, 10% changed (spread)', 'resync-10-spread', 1.2),
      ratioTarget('re-sync, 10% changed (clustered)', 'resync-10-clustered', 1.2),
      ratioTarget('verify checksums, target equal', 'verify-checksums', 2.0),
      (() => {
        // What the CLI adds: end to end minus the workflow's own time, median over our sync cases.
        const extra = cases.filter((c) => c.group === 'ours' && c.seconds !== null && c.workflowSeconds !== undefined).map((c) => c.seconds! - c.workflowSeconds!);
        const m = extra.length ? median(extra) : null;
        return { name: 'CLI overhead (`sync start --wait` minus the workflow)', target: '≤ 0.3 s', measured: m === null ? '—' : `${m.toFixed(2)} s (median of ${extra.length})`, met: m === null ? null : m <= 0.3 };
      })(),
      { name: 'remote: parallelism 4 vs 1', target: '≥ 3× rows/s', measured: remote?.speedup != null ? `${remote.speedup.toFixed(2)}×` : '—', met: remote?.speedup != null ? remote.speedup >= 3 : null },
      { name: 'two workers share one sync', target: 'both run partitions', measured: twoWorkers ? Object.values(twoWorkers.chunkActivitiesByWorker).join(' + ') + ' chunks' : '—', met: twoWorkers?.bothRanPartitions ?? null },
      { name: 'worker peak RSS, any case', target: '≤ 250 MB', measured: rssValues.length ? `${Math.max(...rssValues)} MB` : '—', met: rssValues.length ? Math.max(...rssValues) <= 250 : null },
      { name: `incremental sync of ${o.changedRows.toLocaleString('en')} changed rows`, target: '≤ 1 s workflow time', measured: inc?.workflowSeconds !== undefined ? `${inc.workflowSeconds.toFixed(2)} s` : '—', met: inc?.workflowSeconds !== undefined ? inc.workflowSeconds <= 1 : null },
      { name: 'CLI start (`--help`)', target: '< 0.5 s', measured: cliStart ? `${cliStart.medianSeconds.toFixed(3)} s` : '—', met: cliStart ? cliStart.medianSeconds < 0.5 : null },
    ],
    note:
      'ratio = seconds of the raw binary COPY pipe (psql | psql into a keyed table; mean of a run at the start and one at the end) / the case\'s seconds; higher is better. ' +
      'Ours: end to end, the user\'s `lakebase-worker sync start --wait` (compiled CLI, a process of its own) from spawn to exit, through a real Temporal dev server, beside the workflow\'s own start-to-close time from its history; ' +
      'worker CPU is the worker process\'s user + system seconds during the case per million rows of the table; ' +
      `each case gets a fresh worker process (\`node ${[...workerNodeFlags(), ''].join(' ')}bin/lakebase-worker.js worker\`: the image's node flags), whose VmHWM is its peak RSS. ` +
      'Every copy is checked against its source (count and hash) before it counts. ' +
      'Full-refresh cases start from an empty keyed target. ' +
      'Delete detection and verify (group compare): the time of the phase itself from the workflow history (first planDeletes/planVerify scheduled to the last deleteBucket/verifyBucket closed), ' +
      'its ratio to the raw pipe of its own table (pgbench_accounts plus updated_at), measured before and after its cases. The remote cases go through bench/throttle-proxy.ts (latency each way, a token bucket per connection and direction); their ratio is to the pipe through the same proxy.',
    failures,
    totalSeconds: Math.round((Date.now() - started) / 1000),
  };
  await mkdir(path.dirname(o.out), { recursive: true });
  await writeFile(`${o.out}.json`, `${JSON.stringify(result, null, 2)}\n`);
  await writeFile(`${o.out}.md`, markdown(result));
  console.log(`\n${markdown(result)}`);
  console.log(`written ${path.relative(process.cwd(), o.out)}.json and .md (${result.totalSeconds} s)`);
  if (failures.length) {
    console.error(`${failures.length} case(s) failed:\n  ${failures.join('\n  ')}`);
    process.exitCode = 1;
  }
}

// `--only cdc`: the cdc benchmark needs its own server (wal_level=logical), so it lives in cdc-bench.ts.
const onlyCdc = process.argv.slice(2).some((a, i, all) => a === '--only=cdc' || (a === 'cdc' && all[i - 1] === '--only'));
// The cdc engine runs in the bench's own process: that process runs with the worker's node flags.
const cdcFlags = workerNodeFlags().filter((f) => !process.execArgv.includes(f));
const entry = (): Promise<void> => {
  if (!onlyCdc) return main();
  if (!cdcFlags.length) return (require('./cdc-bench') as typeof import('./cdc-bench')).cdcBench(process.argv.slice(2));
  const child = spawn(process.execPath, [...cdcFlags, ...process.execArgv, __filename, ...process.argv.slice(2)], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('exit', (code) => resolve(void (process.exitCode = code ?? 1))));
};
entry().then(
  () => process.exit(process.exitCode ?? 0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
