// `npm run bench`: our streaming sync against a raw COPY pipe, measured in the same run on the same
// server. Writes bench/results/latest.json. Figures are reported, never asserted.
import { execFile, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import YAML from 'yaml';
import { freshDatabase, provisionPostgres } from '../src/provision/postgres';
import { temporalExecutable } from '../src/provision/temporal';
import type { DataSyncInput, SyncProgress } from '../src/workflows';

const run = promisify(execFile);
const ROOT = path.join(__dirname, '..');
const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const say = (m: string) => console.log(`• ${m}`);

interface Shape {
  name: string;
  ddl: (table: string) => string;
  fill: (table: string, rows: number) => string;
}

const SHAPES: Shape[] = [
  {
    name: 'pgbench_accounts',
    ddl: (t) => `CREATE TABLE ${t} (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84))`,
    fill: (t, n) => `INSERT INTO ${t} SELECT g, 1 + (g - 1) / 100000, 0, '' FROM generate_series(1, ${n}) g`,
  },
  {
    name: 'accounts_jsonb_timestamptz',
    ddl: (t) =>
      `CREATE TABLE ${t} (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84), meta jsonb, updated_at timestamptz NOT NULL)`,
    fill: (t, n) =>
      `INSERT INTO ${t} SELECT g, 1 + (g - 1) / 100000, ((g::bigint * 7919) % 100000)::int - 50000, '', ` +
      `jsonb_build_object('tier', g % 5, 'tags', jsonb_build_array('a', g % 7), 'note', md5(g::text)), ` +
      `'2026-01-01'::timestamptz + g * interval '1.001 seconds' FROM generate_series(1, ${n}) g`,
  },
];

async function has(cmd: string): Promise<boolean> {
  return run('sh', ['-c', `command -v ${cmd}`]).then(() => true, () => false);
}

/** (a) the yardstick: COPY TO STDOUT piped into COPY FROM STDIN of an equal keyed table. */
async function rawCopy(url: string, src: string, dst: string): Promise<{ seconds: number; tool: string }> {
  const t0 = process.hrtime.bigint();
  if (await has('psql')) {
    await run('sh', ['-c', `psql "$U" -qAt -c "COPY ${src} TO STDOUT" | psql "$U" -qAt -v ON_ERROR_STOP=1 -c "COPY ${dst} FROM STDIN"`], {
      env: { ...process.env, U: url },
      maxBuffer: 1 << 20,
    });
    return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tool: 'psql | psql' };
  }
  const a = new pg.Client({ connectionString: url });
  const b = new pg.Client({ connectionString: url });
  await Promise.all([a.connect(), b.connect()]);
  await pipeline(a.query(copyTo(`COPY ${src} TO STDOUT`)), b.query(copyFrom(`COPY ${dst} FROM STDIN`)));
  await Promise.all([a.end(), b.end()]);
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, tool: 'node pg-copy-streams pipe' };
}

/** VmHWM (peak since start) or VmRSS (now) of a process, in MB (Linux). */
async function rssMb(pid: number, field: 'VmHWM' | 'VmRSS'): Promise<number | null> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1];
  return kb ? Math.round(Number(kb) / 1024) : null;
}

/** Samples a process's RSS every 50 ms while `fn` runs; returns the highest sample. */
async function sampledPeak<R>(pid: number, fn: () => Promise<R>): Promise<{ result: R; peakMb: number }> {
  let peak = 0;
  const timer = setInterval(() => void rssMb(pid, 'VmRSS').then((mb) => (peak = Math.max(peak, mb ?? 0))), 50);
  try {
    const result = await fn();
    return { result, peakMb: peak };
  } finally {
    clearInterval(timer);
  }
}

interface Measured {
  seconds: number;
  rowsPerSecond: number;
  workerPeakRssMb: number | null;
  chunks?: number;
}

async function main() {
  const started = Date.now();
  const executable = await temporalExecutable(say);
  const pgServer = await provisionPostgres(say);
  const env = await TestWorkflowEnvironment.createLocal({ server: { executable, log: { format: 'pretty', level: 'error' } } });
  const url = await freshDatabase(pgServer.url, 'lbw_bench');
  const u = new URL(url);
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  const results: Record<string, unknown>[] = [];
  try {
    for (const rows of [ROWS, Math.round(ROWS / 10)]) {
      for (const shape of SHAPES) {
        const src = `${shape.name}_${rows}`;
        say(`${shape.name}: ${rows.toLocaleString('en')} rows — seeding…`);
        await db.query(shape.ddl(src));
        await db.query(shape.fill(src, rows));
        await db.query(`VACUUM ANALYZE ${src}`);
        for (const t of ['raw', 'full', 'upsert']) await db.query(shape.ddl(`${src}_${t}`));

        const raw = await rawCopy(url, src, `${src}_raw`);
        say(`  (a) raw COPY pipe (${raw.tool}): ${raw.seconds.toFixed(2)} s`);

        // The worker runs as its own process so its peak RSS is its own.
        const taskQueue = `bench-${shape.name}-${rows}`;
        const dir = await mkdtemp(path.join(os.tmpdir(), 'lbw-bench-'));
        const configFile = path.join(dir, 'lakebase.yaml');
        const profile = { profile: 'bench', environment: 'local' };
        await writeFile(
          configFile,
          YAML.stringify({
            temporal: { address: env.address, taskQueue },
            profiles: {
              bench: {
                auth: { method: 'pat', token: decodeURIComponent(u.password) || 'trust' },
                environments: { local: { host: u.hostname, port: Number(u.port || 5432), database: 'lbw_bench', user: decodeURIComponent(u.username) || 'postgres', ssl: { mode: 'disable' } } },
              },
            },
            pipelines: {
              full: { source: { ...profile, table: src }, target: { ...profile, table: `${src}_full` }, key: ['aid'], mode: 'full-refresh' },
              upsert: { source: { ...profile, table: src }, target: { ...profile, table: `${src}_upsert` }, key: ['aid'], mode: 'upsert' },
            },
          }),
        );
        const worker = spawn(process.execPath, [path.join(ROOT, 'bin', 'lakebase-worker.js'), 'worker', '--config', configFile], {
          stdio: ['ignore', 'ignore', 'inherit'],
          env: { ...process.env, LOG_LEVEL: 'warn' },
        });
        // Wait until the worker polls (it bundles workflow code at start), so timings are of syncs only.
        for (;;) {
          const d = await env.client.workflowService.describeTaskQueue({ namespace: 'default', taskQueue: { name: taskQueue }, taskQueueType: 1 });
          if ((d.pollers ?? []).length > 0) break;
          await new Promise((r) => setTimeout(r, 100));
        }
        const measure = async (pipelineName: string): Promise<Measured> => {
          const { result, peakMb } = await sampledPeak(worker.pid!, async () => {
            const t0 = process.hrtime.bigint();
            const h = await env.client.workflow.start('dataSync', { taskQueue, workflowId: `bench:${pipelineName}:${src}:${Date.now()}`, args: [{ pipeline: pipelineName } satisfies DataSyncInput] });
            const r = (await h.result()) as SyncProgress;
            return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, chunks: r.chunks };
          });
          return { seconds: result.seconds, rowsPerSecond: Math.round(rows / result.seconds), workerPeakRssMb: peakMb, chunks: result.chunks };
        };
        const full = await measure('full');
        say(`  (b) full-refresh sync: ${full.seconds.toFixed(2)} s`);
        const upsert = await measure('upsert');
        say(`  (c) upsert sync:       ${upsert.seconds.toFixed(2)} s`);
        const rss = await rssMb(worker.pid!, 'VmHWM');
        worker.kill('SIGTERM');
        await new Promise((r) => worker.once('exit', r));
        for (const [a, b] of [[src, `${src}_full`], [src, `${src}_upsert`], [src, `${src}_raw`]]) {
          const q = (t: string) => db.query(`SELECT count(*)::int AS n, md5(string_agg(md5(x::text), '' ORDER BY aid)) AS h FROM ${t} x`).then((r) => r.rows[0]);
          const [qa, qb] = await Promise.all([q(a!), q(b!)]);
          if (qa.n !== qb.n || qa.h !== qb.h) throw new Error(`${b} differs from ${a}: the benchmark would be meaningless`);
        }
        results.push({
          shape: shape.name,
          rows,
          raw: { seconds: +raw.seconds.toFixed(3), rowsPerSecond: Math.round(rows / raw.seconds), tool: raw.tool },
          fullRefresh: { ...full, seconds: +full.seconds.toFixed(3) },
          upsert: { ...upsert, seconds: +upsert.seconds.toFixed(3) },
          ratios: { fullRefreshVsRaw: +(raw.seconds / full.seconds).toFixed(3), upsertVsRaw: +(raw.seconds / upsert.seconds).toFixed(3) },
          /** Highest RSS sampled while the syncs ran. */
          workerPeakRssMb: Math.max(full.workerPeakRssMb ?? 0, upsert.workerPeakRssMb ?? 0),
          /** VmHWM: the process's peak since it started, including bundling the workflow code at start-up. */
          workerLifetimePeakRssMb: rss,
          targets: { ratio: 0.5, peakRssMb: 300 },
        });
        say(`  ratios (raw time / our time): full-refresh ${(raw.seconds / full.seconds).toFixed(2)}, upsert ${(raw.seconds / upsert.seconds).toFixed(2)}; worker RSS peak during syncs ${Math.max(full.workerPeakRssMb ?? 0, upsert.workerPeakRssMb ?? 0)} MB (lifetime ${rss} MB)`);
        for (const t of ['', '_raw', '_full', '_upsert']) await db.query(`DROP TABLE ${src}${t}`);
      }
    }
  } finally {
    await db.end();
    await env.teardown();
    await pgServer.stop();
  }
  const out = {
    measuredAt: new Date().toISOString(),
    machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model, memoryGb: Math.round(os.totalmem() / 2 ** 30), node: process.version },
    postgres: pgServer.origin,
    note: 'ratio = raw COPY pipe seconds / our seconds (higher is better; 1.0 = as fast as the pipe). Our time includes workflow start, planning, token warm-up, the chunked COPY stream, merges, the full-refresh swap and commit, through a real Temporal dev server; the worker is a separate process with the default batchRows (100,000). workerPeakRssMb: highest RSS sampled every 50 ms during the syncs; workerLifetimePeakRssMb: VmHWM since the worker started.',
    results,
    totalSeconds: Math.round((Date.now() - started) / 1000),
  };
  await mkdir(path.join(ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(path.join(ROOT, 'bench', 'results', 'latest.json'), `${JSON.stringify(out, null, 2)}\n`);
  console.log(`\nwritten bench/results/latest.json (${out.totalSeconds} s)`);
  console.table(
    results.map((r) => {
      const x = r as { shape: string; rows: number; ratios: { fullRefreshVsRaw: number; upsertVsRaw: number }; workerPeakRssMb: number; workerLifetimePeakRssMb: number };
      return { shape: x.shape, rows: x.rows, 'full-refresh/raw': x.ratios.fullRefreshVsRaw, 'upsert/raw': x.ratios.upsertVsRaw, 'RSS during syncs MB': x.workerPeakRssMb, 'lifetime peak MB': x.workerLifetimePeakRssMb };
    }),
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
