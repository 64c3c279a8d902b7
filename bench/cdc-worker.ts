// `node --import tsx bench/cdc-worker.ts [rows]`: the worker's memory while it streams, as it ships: a
// real `lakebase-worker worker` process (the image's node flags, or BENCH_WORKER_NODE_FLAGS) on a
// Temporal dev server streams one cdc pipeline of an embedded PostgreSQL (wal_level=logical); its
// peak RSS (VmHWM) at start, after the initial load, after a burst updating half the rows in one
// transaction, and after a mixed burst. Figures are printed, never asserted (bench/cdc-bench.ts runs
// the engine in-process, beside native replication, for speed).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import YAML from 'yaml';
import { cdcProgress, startCdc, stopCdc } from '../src/client/cdc';
import { parseConfig } from '../src/config/load';
import { EmbeddedCluster } from '../src/provision/embeddedPostgres';
import { freePort } from '../src/provision/postgres';
import { startTemporal, uniqueQueue } from '../test/helpers/temporal';
import { startWorkerProcess, workerNodeFlags } from './worker-process';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
export interface WorkerStreamRss {
  /** The worker's node flags. */
  flags: string[];
  rows: number;
  startupMb: number | null;
  afterLoadMb: number | null;
  /** After a burst updating half the rows in one transaction. */
  burstMb: number | null;
  /** Commit to the target's sum matching (checked every 200 ms). */
  burstSeconds: number;
  /** After a mixed burst (a tenth of the rows inserted and as many deleted, in one transaction). */
  mixedMb: number | null;
}

/** A real worker process streaming one cdc pipeline of `rows` rows: its peak RSS at each step. */
export async function workerStreamRss(rows: number, say: (m: string) => void = console.log): Promise<WorkerStreamRss> {
  const base = await mkdtemp(path.join(os.tmpdir(), 'lbw-cdcw-'));
  const cluster = new EmbeddedCluster({ dataDir: path.join(base, 'data'), port: await freePort(), settings: { wal_level: 'logical' } });
  await cluster.init();
  const [env] = await Promise.all([startTemporal(), cluster.start()]);
  const admin = new pg.Client({ connectionString: cluster.url });
  const dst = new pg.Client({ connectionString: cluster.url.replace(/\/postgres$/, '/dst') });
  try {
    await admin.connect();
    await admin.query('CREATE DATABASE dst');
    await admin.query(`CREATE TABLE accounts (aid int PRIMARY KEY, bid int NOT NULL, abalance int NOT NULL, filler char(84)); INSERT INTO accounts SELECT g, g % 10, 0, '' FROM generate_series(1, ${rows}) g`);
    await dst.connect();
    const taskQueue = uniqueQueue('cdcw');
    const e = (database: string) => ({ host: '127.0.0.1', port: cluster.options.port, database, user: 'postgres', ssl: { mode: 'disable' } });
    const raw = {
      temporal: { address: env.address, taskQueue },
      worker: { opsPort: 0 },
      profiles: { local: { auth: { method: 'password', password: 'trust' }, environments: { src: e('postgres'), dst: e('dst') } } },
      pipelines: { acc: { source: { profile: 'local', environment: 'src', table: 'accounts' }, target: { profile: 'local', environment: 'dst', table: 'accounts' }, mode: 'cdc', key: ['aid'], parallelism: 4, cdc: { batchRows: 20000, batchMs: 500 } } },
    };
    const file = path.join(base, 'lakebase.yaml');
    await writeFile(file, YAML.stringify(raw));
    const config = parseConfig(raw);
    const w = await startWorkerProcess(env.client, file, taskQueue);
    try {
      const flags = workerNodeFlags();
      await startCdc(env.client, { config, pipeline: 'acc', taskQueue });
      for (let p = (await cdcProgress(env.client, config, 'acc')).progress; !p || p.pipelines.acc !== 'streaming'; p = (await cdcProgress(env.client, config, 'acc')).progress) await sleep(200);
      await sleep(3000);
      const afterLoadMb = w.peakRssMb();
      const sum = async (c: pg.Client) => (await c.query('SELECT sum(abalance)::bigint AS s FROM accounts')).rows[0].s as string;
      const t0 = Date.now();
      await admin.query('UPDATE accounts SET abalance = abalance + 1 WHERE aid % 2 = 0');
      const want = await sum(admin);
      while ((await sum(dst)) !== want) await sleep(200);
      const burstSeconds = (Date.now() - t0) / 1000;
      const burstMb = w.peakRssMb();
      const tenth = Math.max(1, Math.round(rows / 10));
      await admin.query(`BEGIN; INSERT INTO accounts SELECT g, 1, 0, '' FROM generate_series(${rows + 1}, ${rows + tenth}) g; DELETE FROM accounts WHERE aid <= ${tenth}; COMMIT`);
      const count = async (c: pg.Client) => (await c.query('SELECT count(*)::int AS n FROM accounts')).rows[0].n as number;
      const wantCount = await count(admin);
      while ((await count(dst)) !== wantCount) await sleep(200);
      const r: WorkerStreamRss = { flags, rows, startupMb: w.startupPeakRssMb, afterLoadMb, burstMb, burstSeconds, mixedMb: w.peakRssMb() };
      say(`a worker process (node ${flags.join(' ') || "with Node's defaults"}) streaming ${rows.toLocaleString('en')} rows: peak RSS ${r.startupMb} MB at start, ${r.afterLoadMb} MB after the initial load, ${r.burstMb} MB after ${Math.floor(rows / 2).toLocaleString('en')} updates in one transaction (applied in ${burstSeconds.toFixed(2)} s), ${r.mixedMb} MB after the mixed burst`);
      await stopCdc(env.client, { config, pipeline: 'acc', dropSlot: true });
      return r;
    } finally {
      await w.stop();
    }
  } finally {
    await Promise.all([admin.end().catch(() => undefined), dst.end().catch(() => undefined)]);
    await env.teardown();
    await cluster.stop();
    await rm(base, { recursive: true, force: true });
  }
}

if (require.main === module)
  workerStreamRss(Number(process.argv[2] ?? 1_000_000)).then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
